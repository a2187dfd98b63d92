"""RGB volume (a fused view) → one Multi-frame True Color Secondary Capture object.

Secondary Capture carries no patient geometry in its IOD (no Image Plane module, no functional
groups), so a viewer shows it as a stack of pictures. The object stays in the base study,
references the base series' images (Source Image Sequence), and keeps what geometry the IOD
allows: Pixel Spacing and each frame's position along the slice normal (Slice Location
Vector, the Frame Increment Pointer).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from medview.atomic import atomic_file
from medview.core.made_up import describe
from medview.core.volume import Volume
from medview.dicom.export._common import (
    ExportError,
    copy_patient_study,
    software_version,
    source_series,
)

__all__ = ["write_rgb_capture"]

MULTIFRAME_TRUE_COLOR_SC = "1.2.840.10008.5.1.4.1.1.7.4"
_SOURCE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")


def write_rgb_capture(
    volume: Volume,
    path: str | os.PathLike,
    *,
    source: Volume | None = None,
    overwrite: bool = False,
    series_description: str = "medview fusion",
    series_number: int | None = None,
) -> Path:
    """Write an RGB volume as a Multi-frame True Color Secondary Capture in the base study.

    Parameters
    ----------
    volume : Volume, shape (nz, ny, nx, 3), uint8
        The fused (or otherwise coloured) volume; frame ``k`` is slice ``k``.
    path : path
        The file to write.
    source : Volume, optional
        The base series the volume was made on; default ``volume`` itself (a fused volume
        keeps the base volume's metadata).
    overwrite : bool
        Replace an existing file.
    series_description, series_number
        Of the new series; the number defaults to the base series number + 1000.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ExportError
        If the volume is not RGB uint8, or the base series' files are not available.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    if not volume.is_rgb or volume.array.shape[3] != 3 or volume.array.dtype != np.uint8:
        raise ExportError(f"Secondary Capture {path}: expected an RGB uint8 volume "
                          f"(z, y, x, 3), got {volume.array.shape} {volume.array.dtype}")
    src = source_series(source if source is not None else volume,
                        what=f"Secondary Capture {path}")
    first = src.first
    now = _dt.datetime.now()
    nz, ny, nx = volume.shape

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = MULTIFRAME_TRUE_COLOR_SC
    ds.SOPInstanceUID = generate_uid()
    copy_patient_study(first, ds)
    # General Series
    ds.Modality = "OT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number if series_number is not None else (
        int(first.get("SeriesNumber") or 0) + 1000)
    ds.SeriesDescription = describe(series_description, volume.metadata, nz)
    ds.SeriesDate, ds.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    if not first.get("BodyPartExamined"):
        ds.Laterality = ""
    else:
        ds.BodyPartExamined = first.BodyPartExamined
    # General Equipment and SC Equipment
    ds.Manufacturer = "medview"
    ds.ManufacturerModelName = "medview"
    ds.SoftwareVersions = software_version()
    ds.ConversionType = "WSD"  # workstation
    # General Image, SC Image, SC Multi-frame Image
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ContentDate, ds.ContentTime = ds.SeriesDate, ds.SeriesTime
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = str(volume.metadata.get("derivation")
                                   or "fused with medview")[:1024]
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    ds.PixelSpacing = [f"{volume.spacing[1]:.10g}", f"{volume.spacing[0]:.10g}"]
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = _SOURCE_PURPOSE
    refs = []
    for k in range(len(src.files)):
        item = src.reference_item(k)
        item.PurposeOfReferenceCodeSequence = [purpose]
        refs.append(item)
    ds.SourceImageSequence = refs
    # Image Pixel and Multi-frame
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = ny, nx
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = nz
    # slice positions along the slice normal, in mm, one per frame
    d = volume.direction
    normal = np.cross(d[:, 0], d[:, 1])
    positions = volume.index_to_lps(np.stack([np.zeros(nz), np.zeros(nz), np.arange(nz)], 1))
    ds.SliceLocationVector = [round(float(p @ normal), 4) for p in positions]
    ds.FrameIncrementPointer = pydicom.tag.Tag("SliceLocationVector")
    ds.PixelData = np.ascontiguousarray(volume.array).tobytes()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MULTIFRAME_TRUE_COLOR_SC
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    with atomic_file(path, overwrite=overwrite) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return path
