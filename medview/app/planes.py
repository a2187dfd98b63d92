"""Which voxel axes an axial, coronal or sagittal view shows, and how, without Qt.

A volume is stored ``[z, y, x]`` in whatever orientation it was acquired. Each view shows the
plane through the crosshair perpendicular to one voxel axis. The anatomical name of a view
comes from its normal: the voxel axis closest to S–I is the axial normal, A–P the coronal
and L–R the sagittal one (a permutation: each voxel axis gets exactly one name, even for
oblique stacks).

The acquired plane (normal = voxel z) is shown as stored: row 0 at the top, column 0 on the
left, as every DICOM viewer shows the images it was given. The two reformats are shown the
way radiologists read them: the patient's right on the screen's left (coronal, axial),
anterior on the left (sagittal), superior at the top (coronal, sagittal), anterior at the
top (axial) — by choosing which in-plane axis runs horizontally and flipping, never by
resampling, so every displayed pixel is one voxel.

Display coordinates: ``(u, v)`` = (column, row) of the displayed image, continuous, with
the centre of pixel ``(c, r)`` at ``(c + 0.5, r + 0.5)``. A view draws them in millimetres
through :attr:`PlaneGeometry.affine` (:mod:`medview.app.display_transform`): a scale for
ordinary stacks, a shear that puts a gantry-tilted reformat in patient geometry.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from medview.app.display_transform import view_affine

__all__ = ["PLANES", "PlaneGeometry", "anatomical_axes", "plane_geometry"]

#: The three views, in the order of the 2×2 layout.
PLANES = ("axial", "coronal", "sagittal")

#: LPS component (0 = L–R, 1 = A–P, 2 = S–I) that is the normal of each plane.
_NORMAL_COMPONENT = {"sagittal": 0, "coronal": 1, "axial": 2}
#: LPS component that runs horizontally on screen in a reformat.
_HORIZONTAL_COMPONENT = {"axial": 0, "coronal": 0, "sagittal": 1}


def anatomical_axes(direction: np.ndarray) -> dict[str, int]:
    """Voxel axis (0 = x, 1 = y, 2 = z) normal to each anatomical plane.

    The assignment maximises how well the three voxel axes line up with the patient's
    L–R, A–P and S–I axes, so oblique stacks still get three distinct planes.
    """
    d = np.abs(np.asarray(direction, dtype=float))
    best, best_score = (0, 1, 2), -1.0
    # perm[k] = LPS component assigned to voxel axis k
    for perm in itertools.permutations(range(3)):
        score = sum(d[perm[k], k] for k in range(3))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    by_component = {c: k for k, c in enumerate(best)}
    return {plane: by_component[comp] for plane, comp in _NORMAL_COMPONENT.items()}


@dataclass(frozen=True)
class PlaneGeometry:
    """How one view maps display pixels to voxels.

    Attributes
    ----------
    name : str
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    normal : int
        Voxel axis (0 = x, 1 = y, 2 = z) perpendicular to the view; the slice index of the
        view is the crosshair's index on this axis.
    horizontal, vertical : int
        Voxel axes shown along the screen's columns and rows.
    flip_h, flip_v : bool
        Whether the index on that axis decreases to the right / downwards.
    shape : tuple of int
        Voxel counts ``(nx, ny, nz)`` of the volume.
    spacing : tuple of float
        Voxel spacing ``(x, y, z)`` in mm.
    native : bool
        True for the acquired plane (normal = voxel z).
    affine : tuple, optional
        2×3 matrix from display ``(u, v, 1)`` to view mm ``(X, Y)``; default
        ``diag(pw, ph)`` (see :func:`~medview.app.display_transform.view_affine`).
    """

    name: str
    normal: int
    horizontal: int
    vertical: int
    flip_h: bool
    flip_v: bool
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    native: bool
    affine: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_slices(self) -> int:
        return self.shape[self.normal]

    @property
    def width(self) -> int:
        """Displayed columns."""
        return self.shape[self.horizontal]

    @property
    def height(self) -> int:
        """Displayed rows."""
        return self.shape[self.vertical]

    @property
    def pixel_mm(self) -> tuple[float, float]:
        """Width and height of one displayed pixel (mm): the aspect ratio of the view."""
        return float(self.spacing[self.horizontal]), float(self.spacing[self.vertical])

    @property
    def size_mm(self) -> tuple[float, float]:
        w, h = self.pixel_mm
        return self.width * w, self.height * h

    # -- view millimetres -------------------------------------------------------------
    @property
    def view_matrix(self) -> np.ndarray:
        """The 2×3 affine matrix display ``(u, v, 1)`` → view mm ``(X, Y)``."""
        if self.affine is None:
            pw, ph = self.pixel_mm
            return np.array([[pw, 0.0, 0.0], [0.0, ph, 0.0]])
        return np.asarray(self.affine, dtype=float)

    @property
    def sheared(self) -> bool:
        """True when the view draws its pixels as a parallelogram (a tilted reformat)."""
        m = self.view_matrix
        return bool(m[0, 1] != 0.0 or m[1, 0] != 0.0)

    def to_view(self, u: float, v: float) -> tuple[float, float]:
        """View millimetres of display point ``(u, v)``."""
        m = self.view_matrix
        return (float(m[0, 0] * u + m[0, 1] * v + m[0, 2]),
                float(m[1, 0] * u + m[1, 1] * v + m[1, 2]))

    def from_view(self, x: float, y: float) -> tuple[float, float]:
        """Display point ``(u, v)`` of view millimetres ``(x, y)``."""
        m = self.view_matrix
        u, v = np.linalg.solve(m[:, :2], np.array([x - m[0, 2], y - m[1, 2]]))
        return float(u), float(v)

    @property
    def metric(self) -> np.ndarray:
        """2×2 metric: squared mm of a display step ``(du, dv)`` is ``d·G·d``."""
        a = self.view_matrix[:, :2]
        return a.T @ a

    @property
    def view_size_mm(self) -> tuple[float, float]:
        """Width and height (mm) of the image's bounding box in the view."""
        corners = self.view_matrix[:, :2] @ np.array([[0.0, self.width, 0.0, self.width],
                                                      [0.0, 0.0, self.height, self.height]])
        extent = corners.max(axis=1) - corners.min(axis=1)
        return float(extent[0]), float(extent[1])

    # -- pixels ------------------------------------------------------------------------
    def image(self, array: np.ndarray, index: int) -> np.ndarray:
        """The displayed image of slice ``index``: ``[row, column]`` (``[..., 3]`` for RGB).

        A view into ``array`` (``[z, y, x]`` or ``[z, y, x, 3]``), no copy.
        """
        sel: list = [slice(None)] * 3
        sel[2 - self.normal] = int(index)
        plane = array[tuple(sel)]
        # remaining numpy axes, in order; numpy axis a is voxel axis 2 - a
        remaining = [2 - a for a in range(3) if a != 2 - self.normal]
        if remaining[0] != self.vertical:
            plane = np.swapaxes(plane, 0, 1)
        if self.flip_v:
            plane = plane[::-1]
        if self.flip_h:
            plane = plane[:, ::-1]
        return plane

    # -- coordinates -------------------------------------------------------------------
    def _to_index(self, coord: float, n: int, flip: bool) -> float:
        return (n - 0.5 - coord) if flip else (coord - 0.5)

    def _to_display(self, index: float, n: int, flip: bool) -> float:
        return (n - 0.5 - index) if flip else (index + 0.5)

    def display_to_index(self, u: float, v: float, slice_index: float) -> np.ndarray:
        """Continuous voxel index ``(x, y, z)`` of display point ``(u, v)`` on a slice."""
        ijk = np.zeros(3)
        ijk[self.normal] = slice_index
        ijk[self.horizontal] = self._to_index(u, self.width, self.flip_h)
        ijk[self.vertical] = self._to_index(v, self.height, self.flip_v)
        return ijk

    def index_to_display(self, ijk) -> tuple[float, float]:
        """Display point ``(u, v)`` of continuous voxel index ``(x, y, z)``."""
        return (self._to_display(float(ijk[self.horizontal]), self.width, self.flip_h),
                self._to_display(float(ijk[self.vertical]), self.height, self.flip_v))

    def pixel_to_index(self, column: int, row: int, slice_index: int) -> tuple[int, int, int]:
        """Integer voxel index of displayed pixel ``(column, row)``."""
        ijk = self.display_to_index(column + 0.5, row + 0.5, slice_index)
        return tuple(int(round(c)) for c in ijk)  # type: ignore[return-value]

    def screen_axes(self, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LPS directions of the screen's right and down on this view."""
        d = np.asarray(direction, dtype=float)
        step_u = d[:, self.horizontal] * self.spacing[self.horizontal]
        step_v = d[:, self.vertical] * self.spacing[self.vertical]
        step_u = step_u * (-1.0 if self.flip_h else 1.0)
        step_v = step_v * (-1.0 if self.flip_v else 1.0)
        # LPS per view mm: the display steps mapped back through the view's affine
        per_mm = np.column_stack([step_u, step_v]) @ np.linalg.inv(self.view_matrix[:, :2])
        right, down = per_mm[:, 0], per_mm[:, 1]
        return right / np.linalg.norm(right), down / np.linalg.norm(down)


def plane_geometry(name: str, shape_zyx, spacing, direction) -> PlaneGeometry:
    """The :class:`PlaneGeometry` of view ``name`` for a volume.

    Parameters
    ----------
    name : {"axial", "coronal", "sagittal"}
    shape_zyx : tuple
        ``Volume.shape`` (``[z, y, x]``, a trailing colour axis is ignored).
    spacing : tuple of float
        ``(x, y, z)`` mm.
    direction : (3, 3) array
        Columns: LPS directions of the x, y, z index axes.
    """
    if name not in PLANES:
        raise ValueError(f"name: expected one of {PLANES}, got {name!r}")
    d = np.asarray(direction, dtype=float)
    nz, ny, nx = (int(n) for n in shape_zyx[:3])
    shape = (nx, ny, nz)
    normal = anatomical_axes(d)[name]
    spacing = tuple(float(s) for s in spacing)
    if normal == 2:
        # the acquired plane: as stored (rows and columns are always perpendicular)
        return PlaneGeometry(name, 2, 0, 1, False, False, shape, spacing, True)
    in_plane = [k for k in range(3) if k != normal]
    comps = {k: int(np.argmax(np.abs(d[:, k]))) for k in in_plane}
    # the in-plane axis closest to the wanted horizontal patient axis runs horizontally
    want = _HORIZONTAL_COMPONENT[name]
    horizontal = max(in_plane, key=lambda k: (abs(d[want, k]), comps[k] == want))
    vertical = in_plane[0] if in_plane[1] == horizontal else in_plane[1]
    flip_h = bool(d[want, horizontal] < 0)  # +L (axial, coronal) / +P (sagittal) to the right
    if name == "axial":
        flip_v = bool(d[1, vertical] < 0)  # posterior downwards
    else:
        flip_v = bool(d[2, vertical] > 0)  # superior upwards
    affine = None
    m = view_affine(name, horizontal, vertical, flip_h, flip_v, shape, spacing, d)
    if m[0, 1] != 0.0 or m[1, 0] != 0.0:  # a sheared (gantry-tilted) reformat
        affine = tuple(tuple(float(c) for c in row) for row in m)
    return PlaneGeometry(name, normal, horizontal, vertical, flip_h, flip_v, shape, spacing,
                         False, affine)
