"""Siemens mosaics: fMRI and DWI series store all slices of a volume tiled into one image.

A mosaic of ``count`` slices of ``r × c`` pixels is an ``R × C`` image of ``tiles × tiles``
tiles, ``tiles = ceil(sqrt(count))``, filled row-major from the top left; unused tiles at the
end are blank. ``count`` is Siemens' NumberOfImagesInMosaic (CSA image header or
(0019,100A)), kept in ``InstanceHeader.mosaic_count``.

The header geometry describes the whole tiled image: ImagePositionPatient is the position
the first pixel *would* have if the ``R × C`` image were one slice of the mosaic's pixel
spacing, centred on the slice stack. :func:`mosaic_geometry` moves it to the first pixel of
the first slice (the formula of dcm2niix and nibabel's ``MosaicWrapper``) and takes the slice
order from the CSA SliceNormalVector, the direction Siemens really stepped in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from medview.dicom.errors import SeriesError
from medview.dicom.scan.header import InstanceHeader

__all__ = ["MosaicGeometry", "mosaic_geometry", "mosaic_shape", "untile"]


class MosaicGeometry(NamedTuple):
    """Where the un-tiled slices of a mosaic lie, in LPS millimetres.

    The centre of pixel (row ``i``, column ``j``) of slice ``k`` of :func:`untile`'s output is
    ``origin + j * spacing[0] * row_dir + i * spacing[1] * col_dir + k * spacing[2] * normal``.
    """

    origin: np.ndarray
    """(3,) LPS position of the first pixel of the first slice."""
    row_dir: np.ndarray
    """(3,) unit vector along a row (increasing column index, x)."""
    col_dir: np.ndarray
    """(3,) unit vector along a column (increasing row index, y)."""
    normal: np.ndarray
    """(3,) unit vector from one slice to the next (increasing slice index, z)."""
    spacing: tuple[float, float, float]
    """(x, y, z) in mm: column spacing, row spacing, slice spacing."""


def _tiles(count: int) -> int:
    tiles = math.isqrt(count)
    return tiles if tiles * tiles == count else tiles + 1


def mosaic_shape(h: InstanceHeader) -> tuple[int, int, int]:
    """Return ``(count, rows, cols)`` of the slices tiled in the mosaic `h` describes.

    Raises
    ------
    ValueError
        `h` is not a mosaic, or its Rows/Columns are not a multiple of the tiles per side.
    """
    if not h.is_mosaic:
        raise ValueError(f"h: {h.path} is not a Siemens mosaic (mosaic_count {h.mosaic_count})")
    return (h.mosaic_count, *_slice_size(h.rows, h.columns, h.mosaic_count, what="h"))


def _slice_size(rows: int, cols: int, count: int, *, what: str) -> tuple[int, int]:
    tiles = _tiles(count)
    if rows % tiles or cols % tiles:
        raise ValueError(
            f"{what}: a mosaic of {count} slices has {tiles}×{tiles} tiles, but the image is "
            f"{rows}×{cols}, not a multiple of {tiles}"
        )
    return rows // tiles, cols // tiles


def untile(frame: np.ndarray, count: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Cut a mosaic image into its slices.

    Parameters
    ----------
    frame : ndarray, shape (R, C) or (R, C, ...)
        The tiled image (one frame of the file).
    count : int
        Number of slices in the mosaic (NumberOfImagesInMosaic), ``1 <= count <= tiles²``.
    out : ndarray, shape (count, R // tiles, C // tiles, ...), optional
        Where to write the slices, e.g. a view into a preallocated volume; its dtype must
        hold `frame`'s values.

    Returns
    -------
    ndarray, shape (count, R // tiles, C // tiles, ...)
        Slice ``k`` is tile ``(k // tiles, k % tiles)`` (tile row, tile column), with
        ``tiles = ceil(sqrt(count))``. A new C-contiguous array, or `out`.

    Raises
    ------
    ValueError
        `count` is not positive, or R or C is not a multiple of ``tiles``, or `out` has the
        wrong shape.
    """
    frame = np.asarray(frame)
    if frame.ndim < 2:
        raise ValueError(f"frame: expected a 2D image, got shape {frame.shape}")
    if count < 1:
        raise ValueError(f"count: expected a positive number of slices, got {count}")
    rows, cols = frame.shape[:2]
    tiles = _tiles(count)
    r, c = _slice_size(rows, cols, count, what="frame")
    rest = frame.shape[2:]
    blocks = frame.reshape(tiles, r, tiles, c, *rest).swapaxes(1, 2)
    slices = blocks.reshape(tiles * tiles, r, c, *rest)[:count]
    if out is None:
        return np.ascontiguousarray(slices)
    if out.shape != slices.shape:
        raise ValueError(f"out: expected shape {slices.shape}, got {out.shape}")
    out[...] = slices
    return out


def _unit(v, what: str, path: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-6:
        raise SeriesError(f"{path}: {what} {tuple(v)} is not a direction")
    return v / norm


def mosaic_geometry(h: InstanceHeader) -> MosaicGeometry:
    """Return the patient geometry of the slices :func:`untile` cuts from the mosaic `h`.

    Parameters
    ----------
    h : InstanceHeader
        A mosaic (``h.is_mosaic``) with ImagePositionPatient, ImageOrientationPatient and
        PixelSpacing.

    Returns
    -------
    MosaicGeometry
        ``origin``: ImagePositionPatient shifted by ``(C - c) / 2`` column spacings along the
        row direction and ``(R - r) / 2`` row spacings along the column direction (``R × C``
        the mosaic, ``r × c`` a slice), i.e. the first pixel of the first slice.
        ``normal``: ``cross(row_dir, col_dir)``, reversed when the CSA SliceNormalVector
        (``h.csa_slice_normal``) points the other way: Siemens steps the mosaic's slices
        along that vector, and the cross product keeps the axes exactly orthogonal. Without
        a CSA normal the cross product is used as is.
        ``spacing``: (column spacing, row spacing, SpacingBetweenSlices), falling back to
        SliceThickness when SpacingBetweenSlices is missing or zero.

    Raises
    ------
    ValueError
        `h` is not a mosaic.
    SeriesError
        Position, orientation, pixel spacing or slice spacing is missing or unusable.
    """
    _, r, c = mosaic_shape(h)
    missing = [
        name
        for name, value in (
            ("ImagePositionPatient", h.image_position),
            ("ImageOrientationPatient", h.image_orientation),
            ("PixelSpacing", h.pixel_spacing),
        )
        if value is None
    ]
    if missing:
        raise SeriesError(f"{h.path}: mosaic without {', '.join(missing)}: cannot place slices")
    row_dir = _unit(h.image_orientation[:3], "row direction", h.path)
    col_dir = _unit(h.image_orientation[3:], "column direction", h.path)
    row_spacing, col_spacing = (float(s) for s in h.pixel_spacing)
    if not (row_spacing > 0 and col_spacing > 0):
        raise SeriesError(f"{h.path}: PixelSpacing {h.pixel_spacing} is not positive")
    origin = (
        np.asarray(h.image_position, dtype=np.float64)
        + row_dir * col_spacing * (h.columns - c) / 2
        + col_dir * row_spacing * (h.rows - r) / 2
    )
    normal = _unit(np.cross(row_dir, col_dir), "slice normal", h.path)
    if h.csa_slice_normal is not None:
        csa = np.asarray(h.csa_slice_normal, dtype=np.float64)
        if np.all(np.isfinite(csa)) and float(np.dot(csa, normal)) < 0:
            normal = -normal
    dz = None
    for value in (h.spacing_between_slices, h.slice_thickness):
        if value is not None and np.isfinite(value) and abs(value) > 0:
            dz = abs(float(value))
            break
    if dz is None:
        raise SeriesError(
            f"{h.path}: mosaic without SpacingBetweenSlices or SliceThickness: "
            "cannot space its slices"
        )
    return MosaicGeometry(origin, row_dir, col_dir, normal, (col_spacing, row_spacing, dz))
