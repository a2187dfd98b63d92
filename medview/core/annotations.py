"""Annotations a reader draws on a series: what they are and what they measure.

An :class:`Annotation` is a shape in patient space (LPS, millimetres) with a label, the image
it was drawn on and its measured values with units. Kinds and their points:

=============  ===============================================================================
``distance``   2 points: the ends of the line; measures ``length`` (mm)
``angle``      3 points: first arm's end, the vertex, second arm's end; ``angle`` (deg)
``ellipse``    4 points: the ends of the major axis, then of the minor axis (DICOM ELLIPSE);
               ``area`` (mm²) and, on a volume, ``mean``/``sd``/``min``/``max`` of its voxels
``rectangle``  4 corners in drawing order; measured as an ellipse is
``polygon``    3 or more vertices of a closed freehand outline (not repeated at the end)
``arrow``      2 points: the tail, then the head (the point shown)
``text``       1 point: where the text is anchored; the label is the text
=============  ===============================================================================

Points are kept at the precision DICOM stores them with (SCOORD3D graphic data are 32-bit
floats), so what is saved is exactly what is read back. Units are UCUM codes (``mm``,
``deg``, ``mm2``, ``[hnsf'U]`` for Hounsfield units, ``1`` for values without a unit), as
DICOM SR writes them. No files, no DICOM objects here: :mod:`medview.dicom.documents.sr_write`
writes and reads these as a TID 1500 measurement report.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from medview.core.volume import Volume

__all__ = [
    "KINDS",
    "ROI_KINDS",
    "Annotation",
    "Measured",
    "ellipse_outline",
    "make_annotation",
    "measure_annotation",
    "new_uid",
    "slice_sources",
    "unit_of_values",
]

KINDS = ("distance", "angle", "ellipse", "rectangle", "polygon", "arrow", "text")
ROI_KINDS = ("ellipse", "rectangle", "polygon")
#: the number of points of each kind (polygon: at least 3)
POINT_COUNTS = {"distance": 2, "angle": 3, "ellipse": 4, "rectangle": 4, "arrow": 2, "text": 1}
#: the measured values and their units, by name
MEASURE_NAMES = ("length", "angle", "area", "mean", "sd", "min", "max")
_STATISTICS = ("mean", "sd", "min", "max")
#: Volume.metadata["Units"] → UCUM unit code of the voxel values
_UCUM_OF_UNITS = {"HU": "[hnsf'U]", "BQML": "Bq/mL", "CNTS": "{counts}", "GML": "g/mL",
                  "PCNT": "%", "MGML": "mg/mL", "US": "1", "": "1"}


def new_uid() -> str:
    """A new UID under the UUID-derived root ``2.25`` (PS3.5 B.2): unique without a registry."""
    return f"2.25.{uuid.uuid4().int}"


def unit_of_values(volume: Volume) -> str:
    """The UCUM unit of ``volume``'s voxel values (``1`` when the series names none)."""
    units = str(volume.metadata.get("Units") or "").upper()
    if not units and volume.metadata.get("Modality") == "CT":
        units = "HU"
    return _UCUM_OF_UNITS.get(units, units.lower() if units else "1")


@dataclass(frozen=True, slots=True)
class Measured:
    """One measured value: ``name`` (one of :data:`MEASURE_NAMES`), ``value``, UCUM ``unit``."""

    name: str
    value: float
    unit: str

    def __post_init__(self) -> None:
        if self.name not in MEASURE_NAMES:
            raise ValueError(f"name: expected one of {MEASURE_NAMES}, got {self.name!r}")
        object.__setattr__(self, "value", float(self.value))


def _as_points(points: Iterable[Sequence[float]]) -> tuple[tuple[float, float, float], ...]:
    arr = np.asarray(list(points), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"points: expected (n, 3) LPS millimetres, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("points: every coordinate must be finite")
    # the precision of DICOM SCOORD3D (FL): what is saved is what is read back
    arr32 = arr.astype(np.float32).astype(np.float64)
    return tuple((float(x), float(y), float(z)) for x, y, z in arr32)


@dataclass(frozen=True, slots=True)
class Annotation:
    """A shape drawn on a series, in patient space.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    points_mm : tuple of (x, y, z)
        LPS positions in mm, as many as the kind needs (see the module notes); stored as
        32-bit floats.
    label : str
        What the annotation is called (the text itself for ``text``); default: the kind.
    frame_of_reference_uid : str
        The Frame of Reference the points are in (the series').
    sop_instance_uid : str
        The image it was drawn on ("" when unknown).
    frame_number : int, optional
        The frame of a multi-frame image (1 = first, as DICOM counts).
    measurements : tuple of Measured
        What was measured (see :func:`measure_annotation`).
    uid : str
        Identifies the annotation across saves (DICOM Tracking UID); default: a new UID.
    """

    kind: str
    points_mm: tuple[tuple[float, float, float], ...]
    label: str = ""
    frame_of_reference_uid: str = ""
    sop_instance_uid: str = ""
    frame_number: int | None = None
    measurements: tuple[Measured, ...] = ()
    uid: str = field(default="")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        pts = _as_points(self.points_mm)
        need = POINT_COUNTS.get(self.kind)
        if need is not None and len(pts) != need:
            raise ValueError(f"points_mm: a {self.kind} has {need} point(s), got {len(pts)}")
        if self.kind == "polygon" and len(pts) < 3:
            raise ValueError(f"points_mm: a polygon has at least 3 points, got {len(pts)}")
        if self.kind == "ellipse":
            a, b = np.subtract(pts[1], pts[0]), np.subtract(pts[3], pts[2])
            if a @ a < b @ b:  # DICOM ELLIPSE: the major axis first (the same ellipse)
                pts = (pts[2], pts[3], pts[0], pts[1])
        object.__setattr__(self, "points_mm", pts)
        object.__setattr__(self, "label", str(self.label) or self.kind)
        object.__setattr__(self, "measurements", tuple(self.measurements))
        object.__setattr__(self, "uid", self.uid or new_uid())
        if self.frame_number is not None and int(self.frame_number) < 1:
            raise ValueError(f"frame_number: frames count from 1, got {self.frame_number}")

    @property
    def points(self) -> np.ndarray:
        """The points as an ``(n, 3)`` float64 array (LPS mm)."""
        return np.asarray(self.points_mm, dtype=np.float64)

    @property
    def is_roi(self) -> bool:
        return self.kind in ROI_KINDS

    def value(self, name: str) -> Measured | None:
        """The measured value called ``name``, or None."""
        return next((m for m in self.measurements if m.name == name), None)


def slice_sources(volume: Volume) -> list[int | None]:
    """For each z of ``volume``, the index of its source image in the ``source_*`` metadata
    lists, or None for a slice made up at load (interpolated between acquired slices).

    The lists hold one entry per slice, or, when the series was resampled onto a regular
    grid (slices made up between the acquired ones), one per acquired image, matched to the
    slice at its position; a slice is never matched to another's image."""
    meta = volume.metadata
    nz = volume.shape[0]
    n = len(meta.get("source_sop_instance_uids") or meta.get("source_files") or ())
    made_up = {int(z) for z, _ in meta.get("made_up_slices", ())}
    if n == nz:
        return [None if z in made_up else z for z in range(nz)]
    out: list[int | None] = [None] * nz
    acquired = [z for z in range(nz) if z not in made_up]
    positions = meta.get("acquired_positions_mm") or ()
    if len(positions) == n:
        # resampled onto a regular grid: slice z shows the image acquired at its position
        # (positions along the normal, from slice 0's)
        step = float(volume.spacing[2])
        for i, pos in enumerate(positions):
            z = int(round(float(pos) / step))
            if 0 <= z < nz and z not in made_up and abs(z * step - float(pos)) <= 0.01 * step:
                out[z] = i
        return out
    if len(acquired) == n:
        for i, z in enumerate(acquired):
            out[z] = i
    return out  # else: no way to tell which image each slice shows


def make_annotation(kind: str, points_mm, *, label: str = "", volume: Volume | None = None,
                    slice_index: int | None = None, **fields) -> Annotation:
    """An annotation with its measurements, drawn on ``volume`` (optional).

    Parameters
    ----------
    kind, points_mm, label
        As :class:`Annotation`.
    volume : Volume, optional
        The series it was drawn on: gives the Frame of Reference, the source image of
        ``slice_index`` and, for ROIs, the voxel statistics.
    slice_index : int, optional
        The z index of the slice drawn on (its SOP Instance UID is recorded).
    **fields
        Other :class:`Annotation` fields.
    """
    if volume is not None:
        meta = volume.metadata
        fields.setdefault("frame_of_reference_uid", str(meta.get("FrameOfReferenceUID") or ""))
        uids = meta.get("source_sop_instance_uids") or ()
        # the image acquired at this slice (not the lists' z-th entry: a series resampled
        # onto a regular grid lists its acquired images only; a made-up slice has none)
        source = (slice_sources(volume)[slice_index]
                  if slice_index is not None and 0 <= slice_index < volume.shape[0] else None)
        if source is not None and source < len(uids):
            fields.setdefault("sop_instance_uid", uids[source])
            frames = meta.get("source_frames") or ()
            files = meta.get("source_files") or ()
            if frames and files and files.count(files[source]) > 1:
                fields.setdefault("frame_number", int(frames[source]) + 1)
    ann = Annotation(kind, points_mm, label, **fields)
    return measure_annotation(ann, volume)


# --------------------------------------------------------------------------- measuring


def ellipse_outline(points: np.ndarray, n: int = 256) -> np.ndarray:
    """``n`` points on the ellipse given by its axis ends (DICOM ELLIPSE order), ``(n, 3)``."""
    p = np.asarray(points, dtype=np.float64)
    centre = (p[0] + p[1]) / 2
    a, b = (p[1] - p[0]) / 2, (p[3] - p[2]) / 2
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)[:, None]
    return centre + np.cos(t) * a + np.sin(t) * b


def _polygon_area(p: np.ndarray) -> float:
    """Area of a planar polygon in 3D (half the norm of the summed cross products)."""
    return float(np.linalg.norm(np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0)) / 2)


def _geometry(ann: Annotation) -> list[Measured]:
    p = ann.points
    if ann.kind == "distance":
        return [Measured("length", float(np.linalg.norm(p[1] - p[0])), "mm")]
    if ann.kind == "angle":
        u, v = p[0] - p[1], p[2] - p[1]
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if nu == 0 or nv == 0:
            raise ValueError("points_mm: an angle's arms must have a length (the vertex is "
                             "the middle point)")
        cos = float(np.clip(u @ v / (nu * nv), -1.0, 1.0))
        return [Measured("angle", math.degrees(math.acos(cos)), "deg")]
    if ann.kind == "ellipse":
        a = np.linalg.norm(p[1] - p[0]) / 2
        b = np.linalg.norm(p[3] - p[2]) / 2
        return [Measured("area", float(math.pi * a * b), "mm2")]
    if ann.is_roi:
        return [Measured("area", _polygon_area(p), "mm2")]
    return []


def _roi_mask(volume: Volume, ann: Annotation) -> tuple[np.ndarray, np.ndarray] | None:
    """The plane of ``volume`` the ROI lies in and the mask of the voxels whose centre is
    inside it or on its outline, or None when the ROI is not in one of the grid's planes (an
    oblique reformat)."""
    idx = volume.lps_to_index(ann.points)  # (n, 3) as x, y, z
    spread = idx.max(axis=0) - idx.min(axis=0)
    axis = int(np.argmin(spread))
    if spread[axis] > 0.05:
        return None
    k = int(round(float(idx[:, axis].mean())))
    nz, ny, nx = volume.shape
    if not 0 <= k < (nx, ny, nz)[axis]:
        return None
    arr = volume.array
    if axis == 2:
        plane, rows, cols = arr[k], idx[:, 1], idx[:, 0]
    elif axis == 1:
        plane, rows, cols = arr[:, k, :], idx[:, 2], idx[:, 0]
    else:
        plane, rows, cols = arr[:, :, k], idx[:, 2], idx[:, 1]
    mask = np.zeros(plane.shape, dtype=bool)
    if ann.kind == "ellipse":
        _fill_ellipse(mask, rows, cols)
    else:
        from skimage.draw import polygon

        rr, cc = polygon(rows, cols, shape=plane.shape)
        mask[rr, cc] = True
        _add_edges(mask, rows, cols)
    return plane, mask


def _fill_ellipse(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Mark the voxels whose centre is inside the ellipse given by its axis ends (in plane
    index coordinates): exact, not a polygon's approximation."""
    p = np.stack([rows, cols], axis=1)
    centre = (p[0] + p[1]) / 2
    m = np.stack([(p[1] - p[0]) / 2, (p[3] - p[2]) / 2], axis=1)  # columns: the semi-axes
    if abs(np.linalg.det(m)) < 1e-12:
        return  # a flat ellipse holds no voxel centre
    reach = np.abs(m).sum(axis=1) + 1e-4  # an axis end on a voxel centre is on the rim
    lo = np.maximum(np.ceil(centre - reach), 0).astype(int)
    hi = np.minimum(np.floor(centre + reach), np.array(mask.shape) - 1).astype(int)
    if np.any(lo > hi):
        return
    rr, cc = np.mgrid[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1]
    q = np.stack([rr.ravel() - centre[0], cc.ravel() - centre[1]])
    s, t = np.linalg.solve(m, q)
    # on the rim counts as inside; the tolerance covers the 32-bit points (~1e-5 voxel)
    inside = (s * s + t * t <= 1 + 1e-5).reshape(rr.shape)
    mask[rr[inside], cc[inside]] = True


def _add_edges(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Add the voxels whose centre lies on the outline: scikit-image's fill leaves some edges
    out (half-open), and a rectangle drawn from voxel centre to voxel centre must hold the
    voxels it was drawn through, on every side."""
    ny, nx = mask.shape
    n = len(rows)
    for i in range(n):
        r0, c0, r1, c1 = rows[i], cols[i], rows[(i + 1) % n], cols[(i + 1) % n]
        lo_r, hi_r = max(int(np.ceil(min(r0, r1) - 1e-6)), 0), min(int(max(r0, r1) + 1e-6), ny - 1)
        lo_c, hi_c = max(int(np.ceil(min(c0, c1) - 1e-6)), 0), min(int(max(c0, c1) + 1e-6), nx - 1)
        if lo_r > hi_r or lo_c > hi_c:
            continue
        rr, cc = np.mgrid[lo_r:hi_r + 1, lo_c:hi_c + 1]
        dr, dc = r1 - r0, c1 - c0
        length2 = dr * dr + dc * dc
        t = np.clip(((rr - r0) * dr + (cc - c0) * dc) / length2, 0, 1) if length2 else 0.0
        dist2 = (rr - (r0 + t * dr)) ** 2 + (cc - (c0 + t * dc)) ** 2
        mask[rr[dist2 < 1e-8], cc[dist2 < 1e-8]] = True


def measure_annotation(ann: Annotation, volume: Volume | None = None) -> Annotation:
    """``ann`` with its measurements computed afresh.

    Lengths, angles and areas come from the points. For ROIs on ``volume``, the mean,
    standard deviation (of the population), minimum and maximum of the voxels whose centres
    lie inside the outline or on it are added in the series' unit (:func:`unit_of_values`), when the
    outline lies in one of the volume's grid planes (axial, coronal or sagittal for an axial
    stack) and holds at least one voxel centre; else only the area.

    Raises
    ------
    ValueError
        If an angle's arm has no length, or ``volume`` is RGB.
    """
    measured = _geometry(ann)
    if volume is not None and ann.is_roi:
        if volume.is_rgb:
            raise ValueError("volume: ROI statistics need a scalar volume, got RGB")
        found = _roi_mask(volume, ann)
        if found is not None and found[1].any():
            values = found[0][found[1]].astype(np.float64)
            unit = unit_of_values(volume)
            measured += [Measured("mean", float(values.mean()), unit),
                         Measured("sd", float(values.std()), unit),
                         Measured("min", float(values.min()), unit),
                         Measured("max", float(values.max()), unit)]
    return replace(ann, measurements=tuple(measured))
