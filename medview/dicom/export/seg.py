"""Label map → DICOM Segmentation (SEG), referencing the series it was drawn on (highdicom).

Two encodings (``encoding=``):

- ``"labelmap"``: a Label Map Segmentation (DICOM 2024, highdicom ≥ 0.24): one frame per
  source slice holding every segment's number, like the label map itself. A 100-segment atlas
  on 300 slices is 300 frames, not up to 30,000, and writes and reads about as fast as the
  label map.
- ``"binary"``: the classic BINARY segmentation every SEG reader knows: one 1-bit frame per
  segment and per source slice that holds it (empty frames omitted). Older readers (PACS
  viewers, and dicom3tools' validator on Debian 12, which does not know the Label Map IOD)
  need it.

Without ``encoding=`` (:func:`choose_encoding`): BINARY for up to
:data:`BINARY_MAX_SEGMENTS` segments — a reader of any age shows them, and the file is small
anyway — and the label map encoding above that (an atlas), where BINARY grows with the count.

Each frame references its source image. Segment labels, display colours (CIELab) and the
segmented property category and type codes come from the label map's segment table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medview.atomic import atomic_file
from medview.core.labelmap import LabelMap, Segment
from medview.core.made_up import describe
from medview.core.volume import Volume
from medview.dicom.export._common import (
    ExportError,
    check_same_grid,
    nearest_source_planes,
    quiet_highdicom,
    software_version,
    source_series,
)

__all__ = ["BINARY_MAX_SEGMENTS", "ENCODINGS", "choose_encoding", "default_encoding",
           "segment_numbering", "write_seg"]

ENCODINGS = ("labelmap", "binary")
#: up to this many segments a SEG is written BINARY unless told otherwise
BINARY_MAX_SEGMENTS = 16


def default_encoding() -> str:
    """``"labelmap"`` when the installed highdicom writes Label Map SEGs, else ``"binary"``."""
    import highdicom as hd

    return "labelmap" if hasattr(hd.seg.SegmentationTypeValues, "LABELMAP") else "binary"

def choose_encoding(labels: LabelMap) -> str:
    """The encoding a SEG of ``labels`` gets when none is asked for: ``"binary"`` up to
    :data:`BINARY_MAX_SEGMENTS` segments (every reader), else :func:`default_encoding`."""
    if len(segment_numbering(labels)) <= BINARY_MAX_SEGMENTS:
        return "binary"
    return default_encoding()


_ALGORITHM_TYPES = ("AUTOMATIC", "SEMIAUTOMATIC", "MANUAL")


def segment_numbering(labels: LabelMap) -> list[tuple[int, Segment]]:
    """``(label value, segment)`` for every segment of the table and every label present.

    A label value without a table entry gets a default segment. SEG segment numbers are the
    positions in this list, 1 upwards, so they equal the label values when those run 1..n.
    """
    present = np.unique(labels.array)
    table = {s.number: s for s in labels.segments}
    numbers = sorted(set(table) | {int(v) for v in present if v > 0})
    out = []
    for n in numbers:
        seg = table.get(n)
        if seg is None:
            from medview.core.labelmap import default_segments

            seg = default_segments([n])[0]
        out.append((n, seg))
    return out


def _description(number: int, seg: Segment, algorithm_type: str, algorithm_name: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = None
    if algorithm_type != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name=algorithm_name[:64], version=software_version(),
            family=codes.cid7162.ArtificialIntelligence
            if "classif" in algorithm_name.lower() else codes.cid7162.HistogramAnalysis,
        )
    r, g, b = (int(np.clip(c, 0, 255)) for c in seg.color)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=(seg.name or f"Segment {number}")[:64],
        segmented_property_category=hd.sr.CodedConcept(*seg.category),
        segmented_property_type=hd.sr.CodedConcept(*seg.type),
        algorithm_type=algorithm_type,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(r, g, b),
    )


def write_seg(
    labels: LabelMap,
    path: str | os.PathLike,
    *,
    source: Volume | None = None,
    overwrite: bool = False,
    series_description: str = "medview segmentation",
    series_number: int | None = None,
    algorithm_type: str = "AUTOMATIC",
    algorithm_name: str = "medview",
    content_label: str = "SEGMENTATION",
    nearest_slices: bool = False,
    encoding: str | None = None,
) -> Path:
    """Write ``labels`` as a DICOM SEG referencing its source series.

    Parameters
    ----------
    labels : LabelMap, shape (nz, ny, nx)
        Labels on the source series' grid (0 = background).
    path : path
        The SEG file to write.
    source : Volume, optional
        The volume loaded from the source series; default ``labels`` itself (a label map made
        from a loaded volume carries its source instances).
    overwrite : bool
        Replace an existing file.
    series_description, series_number
        Of the new SEG series; the number defaults to the source series number + 1000.
    algorithm_type : {"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"}
    algorithm_name : str
        Recorded in each segment's Algorithm Identification (with medview's version).
    content_label : str
        The SEG's Content Label (a DICOM CS: upper case, no spaces).
    nearest_slices : bool
        When the label map's slices are not the source slices but run along the same stack
        (a series with missing slices or varying spacing, resampled onto a uniform grid at
        load), give each source slice the labels of the nearest grid slice instead of
        refusing. Exact where a source slice lies on a grid plane, nearest neighbour between.
    encoding : {"labelmap", "binary"}, optional
        How the segments are stored (see the module notes); default
        :func:`choose_encoding`.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ExportError
        If there is no source series, a source file is missing, or the label map's grid is not
        the source series' grid (resampled, cropped).
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If ``algorithm_type`` is not one of the three, or ``encoding`` unknown or not
        supported by the installed highdicom.
    """
    import highdicom as hd

    if not isinstance(labels, LabelMap):
        raise TypeError(f"labels: expected a LabelMap, got {type(labels).__name__}")
    encoding = choose_encoding(labels) if encoding is None else encoding
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding: expected one of {ENCODINGS}, got {encoding!r}")
    if encoding == "labelmap" and default_encoding() != "labelmap":
        raise ValueError(f"encoding 'labelmap' needs highdicom >= 0.24 (installed: "
                         f"{hd.__version__}); use 'binary'")
    if not isinstance(labels, LabelMap):
        raise TypeError(f"labels: expected a LabelMap, got {type(labels).__name__}")
    if algorithm_type not in _ALGORITHM_TYPES:
        raise ValueError(f"algorithm_type: expected one of {_ALGORITHM_TYPES}, "
                         f"got {algorithm_type!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    ref = source if source is not None else labels
    if source is not None and not labels.same_grid(source, atol=1e-3):
        raise ExportError(f"SEG {path}: the label map's grid {labels.shape} is not the "
                          f"source volume's grid {source.shape}")
    src = source_series(ref, what=f"SEG {path}")
    planes = None
    try:
        check_same_grid(labels, src, what=f"SEG {path}")
    except ExportError:
        if not nearest_slices:
            raise
        planes = nearest_source_planes(labels, src, what=f"SEG {path}")

    numbering = segment_numbering(labels)
    if not numbering:
        raise ExportError(f"SEG {path}: the label map has no segments (every voxel is 0)")
    arr = labels.array
    n_seg = len(numbering)
    out_dtype = np.uint8 if n_seg < 256 else np.uint16
    if [n for n, _ in numbering] == list(range(1, n_seg + 1)):
        pixels = arr.astype(out_dtype, copy=False)
    else:
        lut = np.zeros(int(arr.max()) + 1, dtype=out_dtype)
        for k, (n, _) in enumerate(numbering, start=1):
            if n < lut.size:
                lut[n] = k
        pixels = lut[arr]
    if planes is not None:
        pixels = pixels[planes]
    # slices made up at load (interpolated, stand-ins) under the labels: said in the name
    made_up = labels.metadata if "made_up_slices" in labels.metadata or source is None \
        else source.metadata
    series_description = describe(series_description, made_up, labels.shape[0])
    descriptions = [_description(k, seg, algorithm_type, algorithm_name)
                    for k, (_, seg) in enumerate(numbering, start=1)]

    if src.is_multiframe:
        if len(set(src.files)) != 1:
            raise ExportError(f"SEG {path}: the source slices come from several multi-frame "
                              "files; medview writes SEGs of one multi-frame source only")
        n_frames = int(src.first.NumberOfFrames)
        if sorted(src.frames) != list(range(n_frames)):
            raise ExportError(f"SEG {path}: the volume holds {len(src.frames)} of the "
                              f"{n_frames} frames of {src.files[0]}; a SEG must cover them all")
        order = np.argsort(src.frames)
        pixels = pixels[order]
        source_images = [src.first]
    else:
        source_images = src.datasets

    first = src.first
    number = series_number if series_number is not None else (
        int(first.get("SeriesNumber") or 0) + 1000)
    with quiet_highdicom():
        seg = hd.seg.Segmentation(
            source_images=source_images,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues[encoding.upper()],
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="medview",
            manufacturer_model_name="medview",
            software_versions=software_version(),
            device_serial_number="0",
            content_label=content_label,
            content_description=series_description[:64],
            omit_empty_frames=True,
        )
    seg.SeriesDescription = series_description[:64]
    with atomic_file(path, overwrite=overwrite) as tmp:
        seg.save_as(tmp)
    return path
