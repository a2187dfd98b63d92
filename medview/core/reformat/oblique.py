"""Oblique MPR: three mutually orthogonal planes through a crosshair, rotated by the user.

An :class:`MprFrame` holds the crosshair's centre (LPS mm) and, for each of the three views
(``"axial"``, ``"coronal"``, ``"sagittal"``), the LPS unit vectors of the screen's right and
down; each view's normal is ``right × down``. The three normals are mutually orthogonal and
stay so under every rotation:

- :meth:`MprFrame.acquisition` (the reset) lines the views up with the acquired planes: the
  acquired slice and the two planes perpendicular to it along its rows and columns, on the
  screen the way :mod:`medview.app.planes` shows them (acquired plane as stored; reformats
  with the patient's right on the left and superior at the top). On a gantry-tilted stack
  these are perpendicular to the tilted slices (not the sheared voxel planes).
- :meth:`MprFrame.rotated_in_view` is the crosshair drag: in view ``V`` the user turns the
  crosshair's axes by an angle, which turns the two *other* planes about ``V``'s normal; ``V``
  itself does not move or spin.
- :meth:`MprFrame.rotated` turns all three about any axis through the centre.

:func:`mpr_plane` gives a view's :class:`~medview.core.reformat.plane.ImagePlane` (square pixels
of the smallest in-plane spacing by default, covering the volume's projection, with the pixel
grid through the crosshair, hence on voxel centres when the plane is an acquisition plane
through a voxel) and :func:`sample_plane` its
pixels by trilinear interpolation (``scipy.ndimage.map_coordinates``, order 1) of the voxels.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass

import numpy as np

from medview.core.reformat.plane import ImagePlane
from medview.core.volume import Volume

__all__ = ["VIEWS", "MprFrame", "mpr_plane", "sample_plane"]

VIEWS = ("axial", "coronal", "sagittal")
#: LPS component normal to each view, and the one running horizontally on screen
_NORMAL_COMPONENT = {"sagittal": 0, "coronal": 1, "axial": 2}
_HORIZONTAL_COMPONENT = {"axial": 0, "coronal": 0, "sagittal": 1}


def _rotation(axis, angle_rad: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    a = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(a)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"axis: expected a non-zero LPS vector, got {axis!r}")
    if not np.isfinite(angle_rad):
        raise ValueError(f"angle_rad: expected a finite angle, got {angle_rad!r}")
    return Rotation.from_rotvec(a / norm * float(angle_rad)).as_matrix()


def _acquisition_axes(volume: Volume) -> np.ndarray:
    """Orthonormal columns: row direction, column direction, true slice normal."""
    d = volume.direction
    u = d[:, 0] / np.linalg.norm(d[:, 0])
    v = d[:, 1] - (d[:, 1] @ u) * u
    v /= np.linalg.norm(v)
    w = np.cross(u, v)
    if w @ d[:, 2] < 0:  # keep the slice order's sense
        w = -w
    return np.column_stack([u, v, w])


def _view_axes(axes: np.ndarray) -> dict[str, np.ndarray]:
    """Right/down/normal of each view on orthonormal ``axes``, as gui.planes chooses them."""
    a = np.abs(axes)
    best = max(itertools.permutations(range(3)),
               key=lambda perm: sum(a[perm[k], k] for k in range(3)))
    axis_of = {comp: k for k, comp in enumerate(best)}
    views = {}
    for name in VIEWS:
        k = axis_of[_NORMAL_COMPONENT[name]]
        if k == 2:  # the acquired plane, as stored
            right, down = axes[:, 0], axes[:, 1]
        else:
            in_plane = [j for j in range(3) if j != k]
            want = _HORIZONTAL_COMPONENT[name]
            h = max(in_plane, key=lambda j: abs(axes[want, j]))
            v = in_plane[0] if in_plane[1] == h else in_plane[1]
            right = axes[:, h] * (-1.0 if axes[want, h] < 0 else 1.0)
            if name == "axial":
                down = axes[:, v] * (-1.0 if axes[1, v] < 0 else 1.0)  # posterior down
            else:
                down = axes[:, v] * (-1.0 if axes[2, v] > 0 else 1.0)  # superior up
        views[name] = np.column_stack([right, down, np.cross(right, down)])
    return views


@dataclass(frozen=True, eq=False)
class MprFrame:
    """The crosshair centre and the three views' orientations.

    Attributes
    ----------
    centre : ndarray, shape (3,)
        LPS position (mm) of the crosshair; every plane passes through it.
    views : dict of str to ndarray, shape (3, 3)
        Per view, columns = LPS unit vectors of the screen's right, down and the normal.
    """

    centre: np.ndarray
    views: dict[str, np.ndarray]

    @classmethod
    def acquisition(cls, volume: Volume, centre=None) -> MprFrame:
        """The reset: views on the acquired planes through ``centre`` (default: the
        volume's centre)."""
        if centre is None:
            nz, ny, nx = volume.shape
            centre = volume.index_to_lps([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2])
        return cls(np.asarray(centre, dtype=np.float64).reshape(3),
                   _view_axes(_acquisition_axes(volume)))

    def normal(self, name: str) -> np.ndarray:
        return self._view(name)[:, 2]

    def _view(self, name: str) -> np.ndarray:
        if name not in VIEWS:
            raise ValueError(f"name: expected one of {VIEWS}, got {name!r}")
        return self.views[name]

    def moved(self, centre) -> MprFrame:
        """The same orientations through another crosshair centre (LPS mm)."""
        return MprFrame(np.asarray(centre, dtype=np.float64).reshape(3), dict(self.views))

    def rotated(self, axis, angle_rad: float) -> MprFrame:
        """All three views turned by ``angle_rad`` about LPS ``axis`` through the centre."""
        r = _rotation(axis, angle_rad)
        return MprFrame(self.centre, {n: r @ m for n, m in self.views.items()})

    def rotated_in_view(self, name: str, angle_rad: float) -> MprFrame:
        """The crosshair drag in view ``name``: the other two views turn about its normal.

        A positive angle turns the crosshair's axes clockwise on ``name``'s screen (from
        right towards down).
        """
        r = _rotation(self.normal(name), angle_rad)
        return MprFrame(self.centre,
                        {n: (m if n == name else r @ m) for n, m in self.views.items()})


def mpr_plane(volume: Volume, frame: MprFrame, name: str, *,
              pixel_mm: float | tuple[float, float] | None = None) -> ImagePlane:
    """The image plane of view ``name``: through the centre, covering the volume.

    Parameters
    ----------
    volume : Volume
        The volume sampled (its 8 corner voxel centres set the extent).
    frame : MprFrame
    name : {"axial", "coronal", "sagittal"}
    pixel_mm : float or (float, float), optional
        Pixel width and height in mm; default square pixels of the smallest in-plane
        spacing ``min(spacing[0], spacing[1])``.
    """
    if pixel_mm is None:
        pixel_mm = min(volume.spacing[0], volume.spacing[1])
    pw, ph = (pixel_mm, pixel_mm) if np.isscalar(pixel_mm) else pixel_mm
    if not (pw > 0 and ph > 0):
        raise ValueError(f"pixel_mm: expected positive sizes, got {pixel_mm!r}")
    m = frame._view(name)
    right, down = m[:, 0], m[:, 1]
    nz, ny, nx = volume.shape
    corners = volume.index_to_lps(np.array(list(itertools.product(
        (0, nx - 1), (0, ny - 1), (0, nz - 1))), dtype=np.float64)) - frame.centre
    along_r, along_d = corners @ right, corners @ down
    # the pixel grid runs through the crosshair (a pixel centre), out to the volume's
    # projection: on an acquisition plane through a voxel centre, pixels are voxels
    c0, r0 = np.floor(along_r.min() / pw + 1e-6), np.floor(along_d.min() / ph + 1e-6)
    c1, r1 = np.ceil(along_r.max() / pw - 1e-6), np.ceil(along_d.max() / ph - 1e-6)
    columns, rows = int(c1 - c0) + 1, int(r1 - r0) + 1
    origin = frame.centre + c0 * pw * right + r0 * ph * down
    return ImagePlane(origin, right * pw, down * ph, rows, columns)


_MINIMA: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fill(volume: Volume) -> float:
    """The volume's minimum (air for CT), computed once per volume."""
    value = _MINIMA.get(volume)
    if value is None:
        value = _MINIMA[volume] = float(volume.array.min())
    return value


def sample_plane(volume: Volume, plane: ImagePlane, *, fill_value: float | None = None,
                 order: int = 1) -> np.ndarray:
    """The pixels of ``plane`` sampled from ``volume`` (trilinear by default).

    A voxel's value holds up to half a voxel around its centre (SimpleITK's rule), so the
    volume covers indices ``-0.5 .. n - 0.5`` on each axis; pixels outside get
    ``fill_value`` (default: the volume's minimum, air for CT).

    Parameters
    ----------
    volume : Volume
        Scalar volume; ``direction`` may be sheared.
    plane : ImagePlane
    fill_value : float, optional
    order : int
        Spline order of ``scipy.ndimage.map_coordinates`` (1 = linear).

    Returns
    -------
    ndarray, shape (plane.rows, plane.columns), float32
    """
    from scipy.ndimage import map_coordinates

    if volume.is_rgb:
        raise ValueError("volume: oblique sampling needs a scalar volume, got an RGB one")
    if fill_value is None:
        fill_value = _fill(volume)
    inv = np.linalg.inv(volume.direction * np.asarray(volume.spacing)[np.newaxis, :])
    i0 = inv @ (plane.origin - np.asarray(volume.origin))
    di, dj = inv @ plane.col_step, inv @ plane.row_step  # index steps per column / row
    rows, cols = plane.rows, plane.columns
    out = np.full((rows, cols), fill_value, np.float32)
    # per row, the interval of columns whose index lies within -0.5 .. n - 0.5 on every
    # axis; only those are interpolated (a rotated plane is often half outside the volume)
    r = np.arange(rows, dtype=np.float64)
    lo, hi = np.zeros(rows), np.full(rows, cols - 1.0)
    for k, n in enumerate(volume.shape[::-1]):
        base = i0[k] + r * dj[k]
        if abs(di[k]) < 1e-12:
            bad = (base < -0.5) | (base > n - 0.5)
            hi[bad] = -1.0
            continue
        a, b = (-0.5 - base) / di[k], (n - 0.5 - base) / di[k]
        np.maximum(lo, np.minimum(a, b), out=lo)
        np.minimum(hi, np.maximum(a, b), out=hi)
    first = np.ceil(lo).astype(np.int64)
    counts = np.maximum(np.floor(hi).astype(np.int64) - first + 1, 0)
    total = int(counts.sum())
    if total == 0:
        return out
    rr = np.repeat(np.arange(rows), counts)
    starts = np.cumsum(counts) - counts
    cc = np.arange(total) - np.repeat(starts - first, counts)
    coords = np.empty((3, total))
    for k in range(3):  # index axis k (x, y, z) is array axis 2 - k
        np.add(i0[k] + rr * dj[k], cc * di[k], out=coords[2 - k])
    out[rr, cc] = map_coordinates(volume.array, coords, order=order, mode="nearest",
                                  output=np.float32, prefilter=order > 1)
    return out
