"""Slices: each 2D image of a series (a file, a frame of a multi-frame file, a mosaic tile)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medview.dicom.scan.header import InstanceHeader

__all__ = ["SliceRef", "expand_slices"]

# ---------------------------------------------------------------------------------------------
# slices
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class SliceRef:
    """One 2D image of a series: a file, a frame of a multi-frame file or a mosaic tile."""

    header: InstanceHeader
    frame: int  # frame index in the file; for a mosaic, the tile index
    position: np.ndarray | None  # LPS of the first pixel's centre
    orientation: np.ndarray | None  # 6 floats: row (x) direction, column (y) direction
    pixel_spacing: tuple[float, float] | None  # (row, column) = (y, x) mm
    slope: float
    intercept: float
    key: tuple  # what separates stacks
    order: tuple  # acquisition order among slices at the same position
    rows: int
    columns: int

    @property
    def normal(self) -> np.ndarray:
        o = self.orientation
        return np.cross(o[:3], o[3:])  # type: ignore[index]


def _vec(v) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=np.float64)


def _orientation_key(o: np.ndarray | None) -> tuple:
    return () if o is None else tuple(np.round(o, 3).tolist())


# the slices of a series share their orientation: one read-only array and key per value
# (NumPy's per-call cost, paid 2,000 times, was a good part of planning a long series)
_ORIENTATIONS: dict = {}


def _orientation(o) -> tuple[np.ndarray | None, tuple]:
    """(array, key) of an ImageOrientationPatient tuple (None: (None, ()))."""
    if o is None:
        return None, ()
    try:
        hit = _ORIENTATIONS.get(o)
    except TypeError:  # not hashable (a list): not shared
        arr = _vec(o)
        return arr, _orientation_key(arr)
    if hit is None:
        arr = _vec(o)
        arr.flags.writeable = False
        hit = (arr, _orientation_key(arr))
        if len(_ORIENTATIONS) >= 1024:
            _ORIENTATIONS.clear()
        _ORIENTATIONS[o] = hit
    return hit


def _order(h: InstanceHeader, frame: int) -> tuple:
    return (
        h.acquisition_number if h.acquisition_number is not None else -1,
        h.trigger_time if h.trigger_time is not None else -1.0,
        h.acquisition_time or "",
        h.instance_number if h.instance_number is not None else -1,
        frame,
        h.path,
    )


def expand_slices(h: InstanceHeader) -> list[SliceRef]:
    """The slices of one file: 1 for a plain image, one per frame or per mosaic tile."""
    base_key = (
        h.echo_number,
        None if h.echo_time is None else round(h.echo_time, 3),
        h.temporal_position,
    )
    if h.is_mosaic:
        from medview.dicom.series.mosaic import mosaic_geometry

        origin, row_dir, col_dir, normal, spacing_xyz = mosaic_geometry(h)
        count = int(h.mosaic_count)  # type: ignore[arg-type]
        tiles = math.ceil(math.sqrt(count))
        orient = np.concatenate([row_dir, col_dir])
        refs = []
        for k in range(count):
            refs.append(
                SliceRef(
                    h, k, np.asarray(origin) + k * spacing_xyz[2] * np.asarray(normal), orient,
                    (spacing_xyz[1], spacing_xyz[0]), h.rescale_slope, h.rescale_intercept,
                    (*base_key, _orientation_key(orient), h.rows // tiles, h.columns // tiles,
                     "mosaic"),
                    _order(h, k), h.rows // tiles, h.columns // tiles,
                )
            )
        return refs
    if h.frames:
        refs = []
        for k, f in enumerate(h.frames):
            orient = _vec(f.image_orientation if f.image_orientation is not None
                          else h.image_orientation)
            key = (
                h.echo_number,
                None if f.echo_time is None else round(f.echo_time, 3),
                f.temporal_position,
                f.stack_id,
                _orientation_key(orient), h.rows, h.columns,
            )
            refs.append(
                SliceRef(
                    h, k,
                    _vec(f.image_position if f.image_position is not None else h.image_position),
                    orient,
                    f.pixel_spacing or h.pixel_spacing,
                    h.rescale_slope if f.rescale_slope is None else f.rescale_slope,
                    h.rescale_intercept if f.rescale_intercept is None else f.rescale_intercept,
                    key, _order(h, k), h.rows, h.columns,
                )
            )
        return refs
    orient, orient_key = _orientation(h.image_orientation)
    pos = _vec(h.image_position)
    n = max(int(h.number_of_frames or 1), 1)
    if n == 1:
        positions = [pos]
    else:
        # legacy multi-frame without per-frame geometry: frames step along the normal
        step = h.spacing_between_slices or h.slice_thickness or 1.0
        if pos is not None and orient is not None:
            normal = np.cross(orient[:3], orient[3:])
            positions = [pos + k * step * normal for k in range(n)]
        else:
            positions = [None] * n
    key = (*base_key, orient_key, h.rows, h.columns)
    return [
        SliceRef(h, k, positions[k], orient, h.pixel_spacing, h.rescale_slope,
                 h.rescale_intercept, key, _order(h, k), h.rows, h.columns)
        for k in range(n)
    ]
