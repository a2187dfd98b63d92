"""DICOM SEG → LabelMap, on the grid of the series it was drawn on (or on its own grid).

Each SEG frame is placed by its own Plane Position (patient coordinates), not by its
references, so SEGs from any tool land where they belong: BINARY, FRACTIONAL (a voxel belongs
to a segment from a fraction of 0.5 up) and LABELMAP segmentations; sparse SEGs that cover a
few slices only. Overlapping segments cannot live in one label map: by default that is an
error naming them; ``overlap="last"`` lets the higher segment number win.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from medview.core.labelmap import LabelMap, Segment
from medview.core.volume import Volume
from medview.dicom.errors import DicomError

__all__ = ["SegReadError", "read_seg", "seg_segments"]


class SegReadError(DicomError):
    """A SEG that cannot be turned into a label map as asked (names the file and reason)."""


def _code(seq) -> tuple[str, str, str]:
    item = seq[0]
    return (str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning))


def seg_segments(ds) -> tuple[Segment, ...]:
    """The segment table of a SEG dataset as medview Segments (colours from CIELab)."""
    import highdicom as hd

    from medview.core.labelmap import default_segments

    out = []
    for item in ds.SegmentSequence:
        number = int(item.SegmentNumber)
        if number <= 0:  # a LABELMAP SEG may describe its background as segment 0
            continue
        default = default_segments([number])[0]
        color = default.color
        if "RecommendedDisplayCIELabValue" in item:
            lab = hd.color.CIELabColor.from_dicom_value(item.RecommendedDisplayCIELabValue)
            color = tuple(int(c) for c in lab.to_rgb(clip=True))
        category = (_code(item.SegmentedPropertyCategoryCodeSequence)
                    if "SegmentedPropertyCategoryCodeSequence" in item else default.category)
        kind = (_code(item.SegmentedPropertyTypeCodeSequence)
                if "SegmentedPropertyTypeCodeSequence" in item else default.type)
        out.append(Segment(number, str(item.get("SegmentLabel", "") or default.name), color,
                           category, kind))
    return tuple(out)


def _functional(ds, frame: int, sequence: str):
    """An item of ``sequence`` for ``frame`` from the per-frame or the shared groups."""
    groups = []
    if "PerFrameFunctionalGroupsSequence" in ds:
        groups.append(ds.PerFrameFunctionalGroupsSequence[frame])
    if "SharedFunctionalGroupsSequence" in ds:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for g in groups:
        if sequence in g:
            return g[sequence][0]
    return None


def _own_grid(path: Path) -> Volume:
    """An empty Volume on the SEG's own regular grid (highdicom's reconstruction)."""
    import highdicom as hd

    try:
        vol = hd.seg.segread(str(path)).get_volume(combine_segments=False)
    except (ValueError, RuntimeError) as exc:
        raise SegReadError(
            f"{path}: its frames do not form a regular 3D grid ({exc}); give the source series "
            "(source=...) to place them on") from exc
    # highdicom: LPS = affine @ (i, j, k, 1) with i, j, k the array's axes 0, 1, 2;
    # medview: array [z, y, x] and LPS = origin + direction · spacing · (x, y, z)
    m = vol.affine[:3, :3][:, [2, 1, 0]]
    spacing = np.linalg.norm(m, axis=0)
    direction = m / spacing
    origin = vol.affine[:3, 3].copy()
    shape = tuple(int(s) for s in vol.spatial_shape)
    if np.cross(direction[:, 0], direction[:, 1]) @ direction[:, 2] < 0:
        # medview's slices run along the slice normal, as medview.load orders them
        origin += direction[:, 2] * spacing[2] * (shape[0] - 1)
        direction[:, 2] *= -1
    return Volume(np.zeros((1, 1, 1), np.uint8), tuple(spacing), tuple(origin), direction,
                  {"shape": shape})


def _pixels(path: Path, ds) -> np.ndarray:
    """The SEG's frames: compressed ones decoded the checked way (sizes against the file,
    GDCM only in the decoder process), so a SEG that crashes a decoder is refused, not fatal.
    Native frames (bit-packed binary, 8-bit fractional, label maps — palette indices as they
    are) are plain bytes pydicom unpacks without a codec."""
    if ds.file_meta.TransferSyntaxUID.is_compressed and \
            ds.get("PhotometricInterpretation") != "PALETTE COLOR":
        from medview.dicom.errors import PixelDataError
        from medview.dicom.pixels.decoding import decode_file

        try:
            return decode_file(path)
        except PixelDataError as exc:
            raise SegReadError(str(exc)) from None
    try:
        return ds.pixel_array
    except Exception as exc:  # pydicom raises many kinds on inconsistent sizes
        raise SegReadError(f"{path}: cannot read the segmentation frames: "
                           f"{type(exc).__name__}: {exc}") from None


def read_seg(
    path: str | os.PathLike,
    *,
    source: Volume | None = None,
    overlap: Literal["error", "last"] = "error",
) -> LabelMap:
    """Read a DICOM SEG as a LabelMap.

    Parameters
    ----------
    path : path
        The SEG file.
    source : Volume, optional
        The series the SEG was drawn on, loaded with :func:`medview.load`: the label map gets
        its grid, identity and source instances (so it can be exported again). Without it the
        SEG's own grid is used (its frames must form a regular 3D grid).
    overlap : {"error", "last"}
        What to do where segments overlap: raise, or keep the higher segment number.

    Returns
    -------
    LabelMap
        Label values are the SEG's segment numbers; the segment table holds their labels,
        colours and codes.

    Raises
    ------
    SegReadError
        If the file is not a SEG, is in another frame of reference than ``source``, has
        frames of another size or orientation than the grid or outside it, or has
        overlapping segments with ``overlap="error"``.
    FileNotFoundError
        If ``path`` does not exist.
    """
    import pydicom

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if overlap not in ("error", "last"):
        raise ValueError(f"overlap: expected 'error' or 'last', got {overlap!r}")
    ds = pydicom.dcmread(path)
    if ds.get("Modality") != "SEG" or "SegmentSequence" not in ds:
        raise SegReadError(f"{path}: not a DICOM Segmentation (Modality "
                           f"{ds.get('Modality')!r}, SOP class {ds.get('SOPClassUID')})")
    seg_type = str(ds.get("SegmentationType", "BINARY"))
    if source is not None:
        src_for = source.metadata.get("FrameOfReferenceUID")
        if src_for and ds.get("FrameOfReferenceUID") and ds.FrameOfReferenceUID != src_for:
            raise SegReadError(
                f"{path}: the SEG is in frame of reference {ds.FrameOfReferenceUID}, the "
                f"source series in {src_for}: it was drawn on another series (its source is "
                "missing?)")
        grid = source
        shape = source.shape
    else:
        grid = _own_grid(path)
        shape = grid.metadata["shape"]
    nz, ny, nx = shape
    if (int(ds.Rows), int(ds.Columns)) != (ny, nx):
        raise SegReadError(f"{path}: frames of {ds.Columns}×{ds.Rows} pixels, the grid has "
                           f"{nx}×{ny}")

    frames = _pixels(path, ds)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    frames = frames.reshape(n_frames, ny, nx)
    max_fraction = float(ds.get("MaximumFractionalValue", 1) or 1)
    d = grid.direction
    labels = np.zeros(shape, dtype=np.uint8 if len(ds.SegmentSequence) < 256 else np.uint16)
    overlaps: set[tuple[int, int]] = set()
    order = []
    for f in range(n_frames):
        ident = _functional(ds, f, "SegmentIdentificationSequence")
        number = int(ident.ReferencedSegmentNumber) if ident is not None else 0
        order.append((number, f))
    for number, f in sorted(order):  # ascending segment numbers: "last" = highest wins
        pos = _functional(ds, f, "PlanePositionSequence")
        ori = _functional(ds, f, "PlaneOrientationSequence")
        if pos is None or ori is None:
            raise SegReadError(f"{path}: frame {f + 1} has no plane position/orientation")
        iop = np.asarray(ori.ImageOrientationPatient, float)
        if not np.allclose(iop, np.r_[d[:, 0], d[:, 1]], atol=1e-3):
            raise SegReadError(f"{path}: frame {f + 1} has orientation "
                               f"{iop.round(4).tolist()}, the grid "
                               f"{np.r_[d[:, 0], d[:, 1]].round(4).tolist()}")
        idx = grid.lps_to_index(np.asarray(pos.ImagePositionPatient, float))
        k = round(float(idx[2]))
        off = np.abs(idx - (0, 0, k)) * np.asarray(grid.spacing)
        if off.max() > 0.05 or not 0 <= k < nz:
            raise SegReadError(
                f"{path}: frame {f + 1} at {np.round(pos.ImagePositionPatient, 3).tolist()} "
                f"is not on a slice of the grid (index {np.round(idx, 3).tolist()})")
        frame = frames[f]
        plane = labels[k]
        if seg_type == "LABELMAP":  # the pixel values are the segment numbers
            mask = frame > 0
            new = frame.astype(labels.dtype)
        else:
            mask = frame >= 0.5 * max_fraction if seg_type == "FRACTIONAL" else frame > 0
            new = np.full(frame.shape, number, labels.dtype)
        clash = mask & (plane > 0) & (plane != new)
        if clash.any():
            overlaps.update((int(a), int(b)) for a, b in
                            {(a, b) for a, b in zip(plane[clash], new[clash], strict=True)})
        plane[mask] = new[mask]
    if overlaps and overlap == "error":
        pairs = ", ".join(f"{a} and {b}" for a, b in sorted(overlaps))
        raise SegReadError(f"{path}: segments overlap ({pairs}) and a label map holds one "
                           "label per voxel; read with overlap='last' to let the higher "
                           "segment number win")
    segments = seg_segments(ds)
    meta = {"SeriesDescription": str(ds.get("SeriesDescription", "")), "seg_file": str(path),
            "SegmentationType": seg_type}
    if source is not None:
        return LabelMap.like(source, labels, segments=segments, **meta)
    meta.update({"StudyInstanceUID": ds.get("StudyInstanceUID"),
                 "FrameOfReferenceUID": ds.get("FrameOfReferenceUID"),
                 "PatientID": ds.get("PatientID"), "Modality": "SEG"})
    return LabelMap(labels, grid.spacing, grid.origin, grid.direction, meta, (), segments)
