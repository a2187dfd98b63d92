"""Derived volume → a new DICOM series in the source study (one CT/MR image per slice).

The new series keeps the study (StudyInstanceUID, patient and study modules copied from the
source) and the frame of reference, gets new Series/SOP Instance UIDs, ImageType
``DERIVED\\SECONDARY``, and each slice references the source image it was derived from
(Source Image Sequence; the nearest source slice when the grid was resampled). Each slice's
ImagePositionPatient comes from :meth:`Volume.index_to_lps`, so the series re-imports at the
same patient position, gantry-tilted stacks included.

Values are stored as 16-bit integers: integer data that fits as it is, anything else with a
Rescale Slope/Intercept chosen from the volume's range (the precision is ``slope / 2``).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from medview.atomic import atomic_folder
from medview.core.made_up import describe, made_up_note, made_up_slices
from medview.core.volume import Volume
from medview.dicom.export._common import (
    ExportError,
    SourceSeries,
    copy_patient_study,
    software_version,
    source_series,
)

__all__ = ["choose_rescale", "write_derived_series"]

_CT, _MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
#: MR Image module attributes copied from the source (type 1 and 2 ones the IOD needs)
_MR_ACQUISITION = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
                   "RepetitionTime", "EchoTime", "EchoTrainLength", "InversionTime",
                   "SequenceName", "MagneticFieldStrength", "ImagingFrequency", "ImagedNucleus",
                   "FlipAngle")
_CT_ACQUISITION = ("KVP", "ConvolutionKernel", "XRayTubeCurrent", "ExposureTime")
_SOURCE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")


def _all_integral(array: np.ndarray) -> bool:
    """Whether every float value is a whole number; a strided sample first (early exit)."""
    flat = array.reshape(-1)
    sample = flat[:: max(1, flat.size // 65536)]
    if not np.array_equal(sample, np.rint(sample)):
        return False
    return all(np.array_equal(plane, np.rint(plane)) for plane in array)


def choose_rescale(array: np.ndarray) -> tuple[np.dtype, float, float]:
    """Stored dtype, slope and intercept that hold ``array`` in 16 bits.

    Integer values that fit int16 (or uint16 when none is negative) are stored as they are
    (slope 1, intercept 0); anything else is mapped linearly onto the int16 range.

    Returns
    -------
    dtype, slope, intercept
        ``physical = stored * slope + intercept``.
    """
    if array.size == 0:
        return np.dtype(np.int16), 1.0, 0.0
    lo, hi = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("volume: holds NaN or infinite values, which DICOM cannot store")
    integral = array.dtype.kind in "iub" or _all_integral(array)
    if integral and lo >= -32768 and hi <= 32767:
        return np.dtype(np.int16), 1.0, 0.0
    if integral and lo >= 0 and hi <= 65535:
        return np.dtype(np.uint16), 1.0, 0.0
    if hi == lo:
        return np.dtype(np.int16), 1.0, lo
    slope = (hi - lo) / 65535.0
    intercept = lo + 32768.0 * slope
    # DS holds 16 characters: round slope up so that the range still fits after rounding
    slope = float(f"{slope * (1 + 1e-9):.10g}")
    intercept = float(f"{intercept:.10g}")
    return np.dtype(np.int16), slope, intercept


def _ds_str(value: float) -> str:
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.8g}"


def _nearest_source(volume: Volume, src: SourceSeries) -> list[int]:
    """For each slice of ``volume``, the source slice whose plane is nearest its centre."""
    nz, ny, nx = volume.shape
    centres = volume.index_to_lps(
        np.stack([np.full(nz, (nx - 1) / 2), np.full(nz, (ny - 1) / 2), np.arange(nz)], 1))
    planes = []
    for k in range(len(src.files)):
        ipp, iop, _ = src.frame_geometry(k)
        normal = np.cross(iop[:3], iop[3:])
        planes.append((ipp, normal))
    out = []
    for c in centres:
        dist = [abs(float((c - p) @ n)) for p, n in planes]
        out.append(int(np.argmin(dist)))
    return out


def _template(volume: Volume, src: SourceSeries, *, series_uid: str, series_number: int,
              series_description: str, sop_class: str, slope: float, intercept: float,
              stored: np.dtype):
    from pydicom.dataset import Dataset

    first = src.first
    now = _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    copy_patient_study(first, ds)
    ds.Modality = first.Modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description[:64]
    ds.SeriesDate, ds.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in ("BodyPartExamined", "PatientPosition", "Laterality"):
        if keyword in first:
            ds[keyword] = first[keyword]
    if "PatientPosition" not in ds:
        ds.PatientPosition = ""
    if "Laterality" not in ds and not ds.get("BodyPartExamined"):
        # type 2C: empty when the body part (paired or not) is unknown, absent otherwise
        ds.Laterality = ""
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    ds.Manufacturer = "medview"
    ds.ManufacturerModelName = "medview"
    ds.SoftwareVersions = software_version()
    ds.ContentDate, ds.ContentTime = ds.SeriesDate, ds.SeriesTime
    if sop_class == _CT:
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    else:  # MR: value 3 is required; OTHER is the defined term for a processed image
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    note = made_up_note(volume.metadata, volume.shape[0])
    ds.DerivationDescription = (str(volume.metadata.get("derivation")
                                    or "processed with medview")
                                + (f"; {note}" if note else ""))[:1024]
    ds.AcquisitionNumber = first.get("AcquisitionNumber", "")
    sx, sy, sz = volume.spacing
    ds.PixelSpacing = [_ds_str(sy), _ds_str(sx)]
    d = volume.direction
    ds.ImageOrientationPatient = [_ds_str(round(float(v), 8)) for v in (*d[:, 0], *d[:, 1])]
    ds.SliceThickness = first.get("SliceThickness", "") or _ds_str(sz)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.kind == "i" else 0
    if sop_class == _CT or (slope, intercept) != (1.0, 0.0):
        # the MR IOD has no Modality LUT: only where values need it (dciodvfy warns then)
        ds.RescaleIntercept = _ds_str(intercept)
        ds.RescaleSlope = _ds_str(slope)
    if sop_class == _CT:
        ds.RescaleType = "HU" if volume.metadata.get("Units", "HU") == "HU" else "US"
        for keyword in _CT_ACQUISITION:
            if keyword in first:
                ds[keyword] = first[keyword]
        if "KVP" not in ds:
            ds.KVP = ""
    else:
        for keyword in _MR_ACQUISITION:
            if keyword in first:
                ds[keyword] = first[keyword]
        for keyword in ("ScanningSequence", "SequenceVariant"):
            if keyword not in ds:
                ds[keyword] = ("RM" if keyword == "ScanningSequence" else "NONE")
        for keyword in ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength"):
            if keyword not in ds:
                setattr(ds, keyword, "")
    return ds


def _window(array: np.ndarray) -> tuple[float, float]:
    sample = array[:: max(1, array.shape[0] // 16), ::4, ::4]
    lo, hi = np.percentile(sample, (1.0, 99.0))
    width = max(float(hi - lo), 1.0)
    return float(lo + hi) / 2, width


def write_derived_series(
    volume: Volume,
    folder: str | os.PathLike,
    *,
    source: Volume | None = None,
    overwrite: bool = False,
    series_description: str | None = None,
    series_number: int | None = None,
    file_names: str = "IM{:04d}.dcm",
) -> list[Path]:
    """Write ``volume`` as a new derived DICOM series in the source study.

    Parameters
    ----------
    volume : Volume, shape (nz, ny, nx)
        Scalar values (RGB volumes go to
        :func:`medview.dicom.export.secondary_capture.write_rgb_capture`).
    folder : path
        The folder to create for the series (one file per slice).
    source : Volume, optional
        The volume loaded from the source series; default ``volume`` itself (a derived volume
        keeps its source instances in its metadata).
    overwrite : bool
        Replace an existing folder (moved aside, deleted once the new one is in place).
    series_description, series_number
        Of the new series; defaults: "<source description> (medview)", source number + 1000.
    file_names : str
        ``str.format`` pattern of the slice files, given the 1-based slice number.

    Returns
    -------
    list of Path
        The files written (inside ``folder``).

    Raises
    ------
    ExportError
        If there is no source series, a source file is missing, the volume is RGB, or the
        source modality is not CT or MR.
    FileExistsError
        If ``folder`` exists and ``overwrite`` is False.
    ValueError
        If the volume holds NaN or infinite values.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and not overwrite:
        raise FileExistsError(f"{folder} exists; pass overwrite=True (--force) to replace it")
    if volume.is_rgb:
        raise ExportError(f"derived series {folder}: the volume is RGB; write it as a "
                          "Secondary Capture (write_rgb_capture)")
    what = f"derived series {folder}"
    src = source_series(source if source is not None else volume, what=what)
    modality = str(src.first.get("Modality", ""))
    sop_class = {"CT": _CT, "MR": _MR}.get(modality)
    if sop_class is None:
        raise ExportError(f"{what}: derived {modality or 'unknown-modality'} series are not "
                          "supported (CT and MR are); export NIfTI/NRRD instead")
    stored, slope, intercept = choose_rescale(volume.array)
    number = series_number if series_number is not None else (
        int(src.first.get("SeriesNumber") or 0) + 1000)
    description = series_description or f"{src.first.get('SeriesDescription', '')} (medview)"
    # slices medview made up at load (interpolated, stand-ins) are said in the description
    description = describe(description, volume.metadata, volume.shape[0])
    made_up = dict(made_up_slices(volume.metadata))
    template = _template(volume, src, series_uid=generate_uid(), series_number=number,
                         series_description=description, sop_class=sop_class,
                         slope=slope, intercept=intercept, stored=stored)
    template.WindowCenter, template.WindowWidth = (_ds_str(v) for v in _window(volume.array))
    nearest = _nearest_source(volume, src)
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = _SOURCE_PURPOSE

    written = []
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        for z in range(volume.shape[0]):
            ds = Dataset()
            ds.update(template)
            uid = generate_uid()
            ds.SOPInstanceUID = uid
            ds.InstanceNumber = z + 1
            ipp = volume.index_to_lps((0.0, 0.0, float(z)))
            ds.ImagePositionPatient = [_ds_str(round(float(v), 6)) for v in ipp]
            ref = src.reference_item(nearest[z])
            ref.PurposeOfReferenceCodeSequence = [purpose]
            ds.SourceImageSequence = [ref]
            if z in made_up:
                ds.ImageComments = f"made up by medview: {made_up[z]}"[:10240]
            plane = volume.array[z]
            if slope == 1.0 and intercept == 0.0:
                values = plane.astype(stored)
            else:
                values = np.clip(np.rint((plane - intercept) / slope), -32768, 32767)
                values = values.astype(stored)
            ds.PixelData = values.tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = sop_class
            meta.MediaStorageSOPInstanceUID = uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            out = tmp / file_names.format(z + 1)
            pydicom.dcmwrite(out, ds, enforce_file_format=True)
            written.append(folder / out.name)
    return written
