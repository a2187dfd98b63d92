"""The viewer state's crosshair and slices: where each view cuts the volume.

A mixin of :class:`~medview.app.state.ViewerState`, kept apart so that the state proper stays
short. The crosshair lives in the ``camera`` model (``camera.cursor``, a voxel index
``(x, y, z)``); each view shows the slice through it perpendicular to its normal. The
"slice" of the single-view API (``slice_index``, ``set_slice``…) is the acquired plane's:
voxel z. Plain Python, no Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medview.app.planes import PlaneGeometry
from medview.core.volume import Volume

if TYPE_CHECKING:
    from medview.app.state import ViewerState

__all__ = ["CrosshairAndSlices"]


class CrosshairAndSlices:
    """The crosshair and the slices of each view (mixed into :class:`ViewerState`)."""

    @property
    def cursor(self: ViewerState) -> tuple[int, int, int]:
        """The crosshair: voxel index ``(x, y, z)`` every view passes through."""
        return self.camera.cursor

    def set_cursor(self: ViewerState, x: int, y: int, z: int) -> None:
        """Move the crosshair to voxel ``(x, y, z)`` (clamped to the volume)."""
        if self.volume is None:
            return
        nz, ny, nx = self.volume.shape[:3]
        self.camera.cursor = tuple(int(min(max(int(v), 0), n - 1))
                                   for v, n in zip((x, y, z), (nx, ny, nz), strict=True))

    def _on_cursor(self: ViewerState, new, old) -> None:
        if new[2] != old[2]:
            self.slice_changed.emit(new[2])

    def set_cursor_lps(self: ViewerState, lps) -> None:
        """Move the crosshair to the voxel nearest to patient position ``lps`` (mm)."""
        if self.volume is None:
            return
        ijk = self.volume.lps_to_index(np.asarray(lps, dtype=float))
        self.set_cursor(*(int(round(float(c))) for c in ijk))

    def cursor_lps(self: ViewerState) -> np.ndarray | None:
        """Patient position (LPS, mm) of the crosshair's voxel."""
        if self.volume is None:
            return None
        return np.asarray(self.volume.index_to_lps(tuple(float(c) for c in self.cursor)))

    def geometry(self: ViewerState, plane: str) -> PlaneGeometry | None:
        """How view ``plane`` shows the open volume (None without a volume)."""
        return self._geometries.get(plane)

    @property
    def native_plane(self: ViewerState) -> str:
        """The view showing the acquired plane (voxel z), e.g. "sagittal" for a sagittal MR."""
        return next((n for n, g in self._geometries.items() if g.native), "axial")

    def plane_slice(self: ViewerState, plane: str) -> int:
        """Slice index of view ``plane``: the crosshair's index on its normal."""
        g = self._geometries.get(plane)
        return 0 if g is None else self.cursor[g.normal]

    def plane_n_slices(self: ViewerState, plane: str) -> int:
        g = self._geometries.get(plane)
        return 0 if g is None else g.n_slices

    def set_plane_slice(self: ViewerState, plane: str, index: int) -> None:
        """Show slice ``index`` in view ``plane`` (the crosshair moves along its normal)."""
        g = self._geometries.get(plane)
        if g is None:
            return
        cursor = list(self.cursor)
        cursor[g.normal] = int(index)
        self.set_cursor(*cursor)

    def step_plane_slice(self: ViewerState, plane: str, steps: int) -> None:
        self.set_plane_slice(plane, self.plane_slice(plane) + int(steps))

    def _plane_of(self: ViewerState, plane: str, volume: Volume | None) -> np.ndarray | None:
        """View ``plane``'s slice through the crosshair of ``volume`` (no copy)."""
        g = self._geometries.get(plane)
        if g is None or volume is None:
            return None
        return g.image(volume.array, self.cursor[g.normal])

    def plane_image(self: ViewerState, plane: str) -> np.ndarray | None:
        """The displayed image of view ``plane`` (a view into the volume, no copy)."""
        return self._plane_of(plane, self.volume)

    def plane_position_mm(self: ViewerState, plane: str) -> float | None:
        """Position of view ``plane``'s slice along its normal (mm), as SliceLocation does."""
        g = self._geometries.get(plane)
        if g is None or self.volume is None:
            return None
        d = np.asarray(self.volume.direction, dtype=float)
        a, b = (k for k in range(3) if k != g.normal)
        normal = np.cross(d[:, a], d[:, b])
        normal /= np.linalg.norm(normal)
        # the positive direction along the normal follows the patient axis it is closest to
        if normal[int(np.argmax(np.abs(normal)))] < 0:
            normal = -normal
        ijk = [0.0, 0.0, 0.0]
        ijk[g.normal] = float(self.cursor[g.normal])
        return float(np.asarray(self.volume.index_to_lps(tuple(ijk))) @ normal)

    # the acquired plane (voxel z): the single-view API
    @property
    def slice_index(self: ViewerState) -> int:
        return self.cursor[2]

    def set_slice(self: ViewerState, index: int) -> None:
        """Go to slice ``index`` (z), clamped to the volume."""
        x, y, _ = self.cursor
        self.set_cursor(x, y, int(index))

    def step_slice(self: ViewerState, steps: int) -> None:
        """Move ``steps`` slices (negative: towards slice 0)."""
        self.set_slice(self.cursor[2] + int(steps))

    def first_slice(self: ViewerState) -> None:
        self.set_slice(0)

    def last_slice(self: ViewerState) -> None:
        self.set_slice(self.n_slices - 1)

    def slice_image(self: ViewerState) -> np.ndarray | None:
        """The current slice, ``[y, x]`` (or ``[y, x, 3]``), a view into the volume."""
        return None if self.volume is None else self.volume.array[self.cursor[2]]

    def slice_position_mm(self: ViewerState) -> float | None:
        """Position of the current slice along the slice normal (mm), as SliceLocation."""
        if self.volume is None:
            return None
        d = self.volume.direction
        normal = np.cross(d[:, 0], d[:, 1])
        normal /= np.linalg.norm(normal)
        return float(self.volume.index_to_lps((0.0, 0.0, float(self.cursor[2]))) @ normal)
