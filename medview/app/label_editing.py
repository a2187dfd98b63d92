"""Painting label maps on a view: brush, eraser, 2D fill, with undo and redo. No Qt.

Edits happen in place on a label array ``[z, y, x]`` through a view's
:class:`~medview.app.planes.PlaneGeometry`, so painting on a coronal reformat writes the
voxels that view shows. Each stroke (press, drag, release) or fill is one undoable step: the
editor keeps, per step, the voxels it changed and their values before and after, not copies
of the volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.app.planes import PlaneGeometry

__all__ = ["Edit", "LabelEditor", "brush_mask"]

#: Undo steps kept; the oldest are dropped beyond this.
MAX_UNDO = 100


def brush_mask(geometry: PlaneGeometry, centre: tuple[float, float], radius_mm: float
               ) -> tuple[slice, slice, np.ndarray]:
    """The displayed pixels within ``radius_mm`` of display point ``centre``.

    Returns the row and column slices of the brush's bounding box and a boolean mask over
    that box. At least the pixel under the centre is painted, however small the radius.
    """
    # the squared distance of a display step (du, dv) is d·G·d (G: the view's metric; a
    # diagonal of pw², ph² except on a sheared, gantry-tilted reformat)
    g = geometry.metric
    u, v = centre
    g_inv = np.linalg.inv(g)
    ru, rv = radius_mm * np.sqrt(g_inv[0, 0]), radius_mm * np.sqrt(g_inv[1, 1])
    c0 = max(int(np.floor(u - ru)), 0)
    c1 = min(int(np.ceil(u + ru)), geometry.width)
    r0 = max(int(np.floor(v - rv)), 0)
    r1 = min(int(np.ceil(v + rv)), geometry.height)
    if c0 >= c1 or r0 >= r1:
        return slice(0, 0), slice(0, 0), np.zeros((0, 0), dtype=bool)
    du = (np.arange(c0, c1) + 0.5 - u)[None, :]
    dv = (np.arange(r0, r1) + 0.5 - v)[:, None]
    mask = g[0, 0] * du**2 + 2.0 * g[0, 1] * du * dv + g[1, 1] * dv**2 <= radius_mm ** 2
    cu, cv = int(np.floor(u)), int(np.floor(v))
    if r0 <= cv < r1 and c0 <= cu < c1:
        mask[cv - r0, cu - c0] = True
    return slice(r0, r1), slice(c0, c1), mask


@dataclass
class Edit:
    """One undoable step: flat voxel indices and their values before and after."""

    flat: np.ndarray
    before: np.ndarray
    after: np.ndarray
    what: str = ""


@dataclass
class _Stroke:
    what: str
    changed: dict[int, int] = field(default_factory=dict)  # flat index → value before


class LabelEditor:
    """Edits ``array`` (``[z, y, x]`` integer labels) in place, with undo/redo.

    Parameters
    ----------
    array : ndarray
        The label array to edit (C-contiguous; a LabelMap's ``array``).
    """

    def __init__(self, array: np.ndarray):
        if array.ndim != 3 or array.dtype.kind not in "iu":
            raise ValueError(f"array: expected 3-D integer labels, got {array.dtype} "
                             f"{array.shape}")
        if not array.flags.c_contiguous:
            raise ValueError("array: must be C-contiguous to be edited in place")
        self.array = array
        self._flat = array.reshape(-1)
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._stroke: _Stroke | None = None
        self.max_value = int(np.iinfo(array.dtype).max)

    # -- strokes -----------------------------------------------------------------------
    def begin_stroke(self, what: str = "paint") -> None:
        self.end_stroke()
        self._stroke = _Stroke(what)

    def end_stroke(self) -> Edit | None:
        """Close the current stroke into one undo step (None when nothing changed)."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or not stroke.changed:
            return None
        flat = np.fromiter(stroke.changed.keys(), dtype=np.int64, count=len(stroke.changed))
        before = np.fromiter(stroke.changed.values(), dtype=self.array.dtype,
                             count=len(stroke.changed))
        edit = Edit(flat, before, self._flat[flat].copy(), stroke.what)
        keep = edit.before != edit.after
        if not keep.any():
            return None
        edit = Edit(flat[keep], before[keep], edit.after[keep], stroke.what)
        self._undo.append(edit)
        del self._undo[:-MAX_UNDO]
        self._redo.clear()
        return edit

    def _write(self, flat: np.ndarray, value: int) -> int:
        """Set voxels ``flat`` to ``value`` inside the open stroke; returns how many changed."""
        if flat.size == 0:
            return 0
        current = self._flat[flat]
        changing = flat[current != value]
        if changing.size == 0:
            return 0
        own = self._stroke is None
        if own:
            self.begin_stroke("edit")
        changed = self._stroke.changed
        for i, old in zip(changing.tolist(), self._flat[changing].tolist(), strict=True):
            changed.setdefault(i, old)
        self._flat[changing] = value
        if own:
            self.end_stroke()
        return int(changing.size)

    def _flat_indices(self, geometry: PlaneGeometry, slice_index: int, rows: np.ndarray,
                      cols: np.ndarray) -> np.ndarray:
        ijk = np.zeros((3, rows.size), dtype=np.int64)
        ijk[geometry.normal] = slice_index
        h = cols if not geometry.flip_h else geometry.width - 1 - cols
        v = rows if not geometry.flip_v else geometry.height - 1 - rows
        ijk[geometry.horizontal] = h
        ijk[geometry.vertical] = v
        _, ny, nx = self.array.shape
        return (ijk[2] * ny + ijk[1]) * nx + ijk[0]

    # -- operations --------------------------------------------------------------------
    def paint(self, geometry: PlaneGeometry, slice_index: int, centre: tuple[float, float],
              radius_mm: float, value: int) -> int:
        """Set the disc of ``radius_mm`` around display point ``centre`` to ``value``
        (0 erases). Returns the number of voxels changed."""
        value = self._check_value(value)
        rs, cs, mask = brush_mask(geometry, centre, radius_mm)
        if mask.size == 0:
            return 0
        rows, cols = np.nonzero(mask)
        rows = rows + rs.start
        cols = cols + cs.start
        return self._write(self._flat_indices(geometry, slice_index, rows, cols), value)

    def paint_line(self, geometry: PlaneGeometry, slice_index: int, start, end,
                   radius_mm: float, value: int) -> int:
        """Paint dabs along the segment from ``start`` to ``end`` (a fast drag leaves no
        gaps)."""
        (u0, v0), (u1, v1) = start, end
        pw, ph = geometry.pixel_mm
        step = np.array([u1 - u0, v1 - v0])
        length_mm = float(np.sqrt(step @ geometry.metric @ step))
        spacing_mm = max(radius_mm * 0.5, min(pw, ph) * 0.5)
        n = max(int(np.ceil(length_mm / spacing_mm)), 1)
        total = 0
        for t in np.linspace(0.0, 1.0, n + 1):
            total += self.paint(geometry, slice_index, (u0 + t * (u1 - u0), v0 + t * (v1 - v0)),
                                radius_mm, value)
        return total

    def fill(self, geometry: PlaneGeometry, slice_index: int, point: tuple[float, float],
             value: int) -> int:
        """Flood-fill, on this view's slice, the 4-connected region of the label under
        ``point`` with ``value``. Returns the number of voxels changed."""
        from scipy import ndimage

        value = self._check_value(value)
        col, row = int(np.floor(point[0])), int(np.floor(point[1]))
        if not (0 <= col < geometry.width and 0 <= row < geometry.height):
            return 0
        image = geometry.image(self.array, slice_index)
        seed_value = image[row, col]
        if seed_value == value:
            return 0
        regions, _ = ndimage.label(image == seed_value)
        rows, cols = np.nonzero(regions == regions[row, col])
        return self._write(self._flat_indices(geometry, slice_index, rows, cols), value)

    def _check_value(self, value: int) -> int:
        value = int(value)
        if not 0 <= value <= self.max_value:
            raise ValueError(f"value: a label from 0 to {self.max_value}, got {value}")
        return value

    # -- undo / redo -------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> Edit | None:
        self.end_stroke()
        if not self._undo:
            return None
        edit = self._undo.pop()
        self._flat[edit.flat] = edit.before
        self._redo.append(edit)
        return edit

    def redo(self) -> Edit | None:
        self.end_stroke()
        if not self._redo:
            return None
        edit = self._redo.pop()
        self._flat[edit.flat] = edit.after
        self._undo.append(edit)
        return edit
