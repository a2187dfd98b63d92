"""The viewer state's label editing: the overlay and scribbles, the brush, undo, segments.

A mixin of :class:`~medview.app.state.ViewerState`, kept apart so that the state proper stays
about viewing. The label map shown is a layer of ``layers`` (the one record of what is shown), the
scribbles and the opacity live in the ``label_layers`` model, the brush in the ``tools``
model; painting changes voxels in place, announced by ``labels_changed``.
Plain Python, no Qt.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from medview.app.label_editing import LabelEditor
from medview.core.labelmap import LabelMap, Segment, default_segments

if TYPE_CHECKING:
    from medview.app.state import ViewerState

__all__ = ["LabelEditing"]


class LabelEditing:
    """Label editing (mixed into :class:`ViewerState`)."""

    # -- the maps ----------------------------------------------------------------------
    @property
    def labels(self: ViewerState) -> LabelMap | None:
        """The label-map overlay: the value of the labels layer shown."""
        shown = self.layers.labels
        return None if shown is None else shown.value

    @property
    def scribbles(self: ViewerState) -> LabelMap | None:
        """The classifier's training scribbles, drawn over the label map."""
        return self.label_layers.scribbles

    @property
    def label_opacity(self: ViewerState) -> float:
        return self.label_layers.opacity

    def set_labels(self: ViewerState, labels: LabelMap | None) -> None:
        """Show ``labels`` over the volume (None: none); it must be on the volume's grid."""
        self._set_map("labels", labels)

    def set_scribbles(self: ViewerState, scribbles: LabelMap | None) -> None:
        self._set_map("scribbles", scribbles)

    def _set_map(self: ViewerState, which: str, lm: LabelMap | None) -> None:
        """Show ``lm`` as the label map (a layer) or the scribbles; the events of the layer
        list or of ``label_layers`` reach :meth:`_map_set`."""
        self._check_on_grid(lm, "label map" if which == "labels" else "scribble map")
        if which == "labels":
            self.layers.show_value("labels", lm, "Label map")
        else:
            self.label_layers.scribbles = lm

    def _on_shown_labels(self: ViewerState, *_) -> None:
        self._map_set("labels")

    def _on_scribbles(self: ViewerState, *_) -> None:
        self._map_set("scribbles")

    def _map_set(self: ViewerState, which: str) -> None:
        """Another map is shown as ``which``: its own undo stack, and it is the reader's
        work (not while a volume opens: that starts from nothing)."""
        self._editors.pop(which, None)
        if not self._opening:
            self.edit_changed.emit()
            self.work_changed.emit(which)

    def _get_map(self: ViewerState, which: str) -> LabelMap | None:
        return self.labels if which == "labels" else self.label_layers.scribbles

    def _put_map(self: ViewerState, which: str, lm: LabelMap) -> None:
        """Put ``lm`` (the same voxels, or the same map with other segments) in place of the
        map shown as ``which``, silently: the caller announces what changed."""
        if which == "labels":
            self.layers.labels.value = lm
        else:
            with self.label_layers.events.scribbles.blocked():
                self.label_layers.scribbles = lm

    def set_label_opacity(self, opacity: float) -> None:
        self.label_layers.opacity = float(min(max(float(opacity), 0.0), 1.0))

    def label_image(self: ViewerState, plane: str, which: str = "labels") -> np.ndarray | None:
        """The displayed slice of the label map (or of the scribbles) in view ``plane``."""
        return self._plane_of(plane, self._get_map(which))

    # -- the brush ---------------------------------------------------------------------
    @property
    def edit_target(self: ViewerState) -> str:
        """Which label map the brush paints: "labels" or "scribbles"."""
        return self.tools.edit_target

    def set_edit_target(self: ViewerState, target: str) -> None:
        from medview.app.state import EDIT_TARGETS

        if target not in EDIT_TARGETS:
            raise ValueError(f"target: expected one of {EDIT_TARGETS}, got {target!r}")
        self.tools.edit_target = target

    def target_map(self: ViewerState) -> LabelMap | None:
        return self._get_map(self.tools.edit_target)

    @property
    def paint_label(self: ViewerState) -> int:
        return self.tools.paint_label

    def set_paint_label(self: ViewerState, label: int) -> None:
        label = int(label)
        if label < 1:
            raise ValueError(f"label: the brush paints labels from 1, got {label}")
        self.tools.paint_label = label

    @property
    def brush_mm(self: ViewerState) -> float:
        return self.tools.brush_mm

    def set_brush_mm(self: ViewerState, radius_mm: float) -> None:
        radius_mm = float(radius_mm)
        if not (np.isfinite(radius_mm) and radius_mm > 0):
            raise ValueError(f"radius_mm: expected a positive size, got {radius_mm}")
        self.tools.brush_mm = radius_mm

    # -- editing -----------------------------------------------------------------------
    def new_label_map(self: ViewerState, target: str | None = None) -> LabelMap:
        """An empty label map (one segment) on the volume's grid as the edit target."""
        if self.volume is None:
            raise ValueError("open a series first")
        target = target or self.tools.edit_target
        empty = np.zeros(self.volume.shape[:3], dtype=np.uint8)
        if target == "scribbles":
            segments = (Segment(1, "Background", (60, 120, 255)),
                        Segment(2, "Foreground", (255, 200, 0)))
        else:
            segments = default_segments([1])
        lm = LabelMap.like(self.volume, empty, segments)
        self._set_map(target, lm)
        return lm

    def editor(self: ViewerState, target: str | None = None) -> LabelEditor:
        """The editor of the target label map; an empty map is made when there is none."""
        target = target or self.tools.edit_target
        lm = self._get_map(target)
        if lm is None:
            lm = self.new_label_map(target)
        ed = self._editors.get(target)
        if ed is None or ed.array is not lm.array:
            if not lm.array.flags.writeable or lm.array.dtype.kind not in "iu":
                # a writable integer copy to paint in: the same map for the reader
                lm = dataclasses.replace(lm, array=np.array(lm.array, dtype=np.uint16))
                self._put_map(target, lm)
            ed = self._editors[target] = LabelEditor(lm.array)
        return ed

    def begin_edit(self: ViewerState, what: str) -> None:
        self.editor().begin_stroke(what)

    def end_edit(self: ViewerState) -> None:
        if self.editor().end_stroke() is not None:
            self.edit_changed.emit()

    def _edited(self: ViewerState, *, stack: bool = True) -> None:
        """Voxels or segments of the edit target changed (``stack``: its undo stack too)."""
        self.labels_changed.emit()
        if stack:
            self.edit_changed.emit()
        self.work_changed.emit(self.tools.edit_target)

    def paint(self: ViewerState, plane: str, start, end=None, *, erase: bool = False) -> int:
        """Paint (or erase) a dab at display point ``start`` of view ``plane``, or a line
        of dabs to ``end``; returns the voxels changed."""
        g = self._geometries.get(plane)
        if g is None:
            return 0
        ed = self.editor()
        value = 0 if erase else self.tools.paint_label
        k, brush = self.cursor[g.normal], self.tools.brush_mm
        n = (ed.paint(g, k, start, brush, value) if end is None
             else ed.paint_line(g, k, start, end, brush, value))
        if n:
            self._ensure_segment(value)
            self._edited(stack=False)  # the stroke ends in end_edit
        return n

    def fill(self: ViewerState, plane: str, point) -> int:
        g = self._geometries.get(plane)
        if g is None:
            return 0
        label = self.tools.paint_label
        n = self.editor().fill(g, self.cursor[g.normal], point, label)
        if n:
            self._ensure_segment(label)
            self._edited()
        return n

    def undo(self: ViewerState) -> bool:
        if self.editor().undo() is None:
            return False
        self._edited()
        return True

    def redo(self: ViewerState) -> bool:
        if self.editor().redo() is None:
            return False
        self._edited()
        return True

    def _ensure_segment(self: ViewerState, number: int) -> None:
        lm = self.target_map()
        if number == 0 or lm is None or any(s.number == number for s in lm.segments):
            return
        self._replace_segments(lm, (*lm.segments, *default_segments([number])))

    def update_segment(self: ViewerState, number: int, *, name: str | None = None,
                       color: tuple[int, int, int] | None = None) -> None:
        """Rename or recolour segment ``number`` of the edit target (added if missing)."""
        lm = self.target_map()
        if lm is None:
            raise ValueError("no label map to edit")
        self._ensure_segment(number)
        lm = self.target_map()
        changes = {k: v for k, v in (("name", name), ("color", color)) if v is not None}
        self._replace_segments(lm, tuple(dataclasses.replace(s, **changes)
                                         if s.number == number else s for s in lm.segments))
        self._edited()

    def _replace_segments(self: ViewerState, lm: LabelMap, segments) -> None:
        new = dataclasses.replace(lm, segments=tuple(sorted(segments, key=lambda s: s.number)))
        for which in ("labels", "scribbles"):
            if self._get_map(which) is lm:
                self._put_map(which, new)
