"""A rectangle of pixels in patient space, as DICOM places an image.

An :class:`ImagePlane` is what ImagePositionPatient, ImageOrientationPatient, Rows, Columns
and PixelSpacing say about one image: the LPS position (mm) of the centre of its first pixel,
the LPS step from one column to the next and from one row to the next, and its size. It
describes equally a localizer's image, a slice of a Volume as a view shows it, and an
oblique (MPR) plane. On a gantry-tilted volume a reformatted slice has steps that are not
perpendicular (a sheared view); every method here allows that.

Display coordinates are the views' own (``medview.app.planes``): ``(u, v)`` = (column,
row), continuous, the centre of pixel ``(c, r)`` at ``(c + 0.5, r + 0.5)``, so the image
covers ``[0, columns] × [0, rows]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medview.core.volume import Volume

__all__ = ["ImagePlane"]


def _vec3(value, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: expected 3 finite numbers, got {value!r}")
    v.setflags(write=False)
    return v


@dataclass(frozen=True, eq=False)
class ImagePlane:
    """Where the pixels of one image lie in patient space (LPS, mm).

    Parameters
    ----------
    origin : array-like, shape (3,)
        LPS position of the centre of pixel (row 0, column 0).
    col_step : array-like, shape (3,)
        LPS vector (mm) from one column to the next (to the right on screen).
    row_step : array-like, shape (3,)
        LPS vector (mm) from one row to the next (downwards on screen).
    rows, columns : int
        Image size in pixels.

    Raises
    ------
    ValueError
        For non-finite vectors, steps that are zero or parallel, or a size below 1.
    """

    origin: np.ndarray
    col_step: np.ndarray
    row_step: np.ndarray
    rows: int
    columns: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin", _vec3(self.origin, "origin"))
        object.__setattr__(self, "col_step", _vec3(self.col_step, "col_step"))
        object.__setattr__(self, "row_step", _vec3(self.row_step, "row_step"))
        if np.linalg.norm(np.cross(self.col_step, self.row_step)) < 1e-9:
            raise ValueError(f"col_step, row_step: zero or parallel steps "
                             f"{self.col_step.tolist()}, {self.row_step.tolist()}")
        for name in ("rows", "columns"):
            n = getattr(self, name)
            if int(n) != n or n < 1:
                raise ValueError(f"{name}: expected a whole number ≥ 1, got {n!r}")
            object.__setattr__(self, name, int(n))

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_dicom(cls, position: Sequence[float], orientation: Sequence[float], rows: int,
                   columns: int, pixel_spacing: Sequence[float]) -> ImagePlane:
        """From ImagePositionPatient, ImageOrientationPatient, Rows, Columns, PixelSpacing.

        ``orientation`` is the six direction cosines: along a row (increasing column),
        then down a column (increasing row); ``pixel_spacing`` is (between rows, between
        columns) in mm, in DICOM's order.
        """
        iop = np.asarray(orientation, dtype=np.float64).reshape(-1)
        ps = np.asarray(pixel_spacing, dtype=np.float64).reshape(-1)
        if iop.shape != (6,):
            raise ValueError(f"orientation: expected 6 direction cosines, got {orientation!r}")
        if ps.shape != (2,) or not np.all(ps > 0):
            raise ValueError(f"pixel_spacing: expected 2 positive values, got {pixel_spacing!r}")
        return cls(position, iop[:3] * ps[1], iop[3:] * ps[0], rows, columns)

    @classmethod
    def from_volume_slice(cls, volume: Volume, *, axis: int, index: float, horizontal: int,
                          vertical: int, flip_h: bool = False,
                          flip_v: bool = False) -> ImagePlane:
        """The plane of slice ``index`` on voxel ``axis`` as a view shows it.

        The arguments are a view's ``PlaneGeometry`` fields (``normal`` is ``axis``):
        voxel axes (0 = x, 1 = y, 2 = z) shown along the columns and rows, and whether the
        index decreases to the right / downwards.
        """
        if sorted((axis, horizontal, vertical)) != [0, 1, 2]:
            raise ValueError(f"axis, horizontal, vertical: expected a permutation of 0, 1, 2, "
                             f"got {(axis, horizontal, vertical)}")
        shape = volume.shape[::-1]  # (nx, ny, nz)
        steps = volume.direction * np.asarray(volume.spacing)[np.newaxis, :]
        first = np.zeros(3)
        first[axis] = float(index)
        first[horizontal] = shape[horizontal] - 1 if flip_h else 0
        first[vertical] = shape[vertical] - 1 if flip_v else 0
        return cls(volume.index_to_lps(first),
                   steps[:, horizontal] * (-1.0 if flip_h else 1.0),
                   steps[:, vertical] * (-1.0 if flip_v else 1.0),
                   shape[vertical], shape[horizontal])

    # -- geometry ----------------------------------------------------------------------
    @property
    def normal(self) -> np.ndarray:
        """Unit LPS normal, ``col_step × row_step`` normalised."""
        n = np.cross(self.col_step, self.row_step)
        return n / np.linalg.norm(n)

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """Width and height of a pixel (mm): ``|col_step|``, ``|row_step|``."""
        return float(np.linalg.norm(self.col_step)), float(np.linalg.norm(self.row_step))

    def display_to_lps(self, u, v) -> np.ndarray:
        """LPS positions (mm) of display points; ``u``, ``v`` broadcast, result ``(..., 3)``."""
        u = np.asarray(u, dtype=np.float64)[..., np.newaxis]
        v = np.asarray(v, dtype=np.float64)[..., np.newaxis]
        return self.origin + (u - 0.5) * self.col_step + (v - 0.5) * self.row_step

    def lps_to_display(self, lps) -> tuple[np.ndarray, np.ndarray]:
        """Display ``(u, v)`` of the foot of each LPS point on the plane (``(..., 3)`` in)."""
        p = np.asarray(lps, dtype=np.float64) - self.origin
        m = np.column_stack([self.col_step, self.row_step])
        uv = p @ np.linalg.pinv(m).T
        return uv[..., 0] + 0.5, uv[..., 1] + 0.5

    def distance(self, lps) -> np.ndarray:
        """Signed distance (mm) of LPS points from the plane, along :attr:`normal`."""
        return (np.asarray(lps, dtype=np.float64) - self.origin) @ self.normal

    @property
    def corners(self) -> np.ndarray:
        """LPS positions of the image's four outer corners, shape (4, 3)."""
        u = np.array([0.0, self.columns, self.columns, 0.0])
        v = np.array([0.0, 0.0, self.rows, self.rows])
        return self.display_to_lps(u, v)

    def __repr__(self) -> str:
        return (f"ImagePlane({self.columns}×{self.rows}, "
                f"origin={np.round(self.origin, 3).tolist()}, "
                f"pixel_mm={tuple(round(p, 4) for p in self.pixel_mm)}, "
                f"normal={np.round(self.normal, 4).tolist()})")
