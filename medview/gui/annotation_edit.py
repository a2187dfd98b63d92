"""Editing annotations with the mouse in a slice view (with an annotation tool active).

A left drag that starts on a handle of an annotation of the shown slice (one of its defining
points, drawn as small squares on the selected one) moves that point; one that starts on its
outline moves it whole; anywhere else the tool draws a new one. A click on an annotation's
outline or handle selects it; Delete removes the selected one (else the last one drawn on the
slice). The values follow live (the state measures the new points) and every edit is unsaved
work (:mod:`medview.app.annotation_edit`).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPathStroker

from medview.app.annotation_edit import handles, moved, with_handle
from medview.app.measurements import Measurement
from medview.gui.annotation_items import shape_path

__all__ = ["HIT_PX", "AnnotationEditor"]

#: how near (screen pixels) the mouse must be to a handle or an outline to grab it
HIT_PX = 6.0


class AnnotationEditor:
    """The selection and the edit in progress in one view.

    Parameters
    ----------
    viewer : SliceViewer
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.state = viewer.state
        #: the selected annotation (its handles are drawn), or None
        self.selected: Measurement | None = None
        self._edit = None  # (measurement, handle index or None, its points, start point)
        self.state.volume_changed.connect(self._forget)
        self.state.measurements_changed.connect(self._check_selected)

    def _forget(self, *_args) -> None:
        self.selected = self._edit = None

    def _check_selected(self) -> None:
        if self.selected is not None and self.selected not in self.state.measurements:
            self.selected = None

    def select(self, m: Measurement | None) -> None:
        """Select ``m`` (None: nothing) and redraw the view's annotations."""
        if m is not self.selected:
            self.selected = m
            self.viewer._draw_measurements()

    # -- hit test ----------------------------------------------------------------------
    def _tolerance_mm(self) -> float:
        size = self.viewer.view_box.viewPixelSize()[0]
        return HIT_PX * (size if size and math.isfinite(size) else 1.0)

    def hit(self, point) -> tuple[Measurement, int | None] | None:
        """The annotation of the shown slice at display ``point`` and which handle (None:
        its outline), or None. Handles first (the selected annotation's before the others'),
        then outlines; the last drawn wins."""
        g = self.viewer._geometry
        if g is None or self.viewer.oblique.active:
            return None
        plane = self.viewer.plane
        shown = self.state.measurements_on(plane, self.state.plane_slice(plane))
        if not shown:
            return None
        tol = self._tolerance_mm()
        x, y = g.to_view(*point)
        order = sorted(reversed(shown), key=lambda m: m is not self.selected)
        for m in order:
            near = [(math.hypot(hx - x, hy - y), i) for i, (hx, hy) in
                    enumerate(g.to_view(u, v) for u, v in handles(m))]
            best = min(near, default=None)
            if best is not None and best[0] <= tol:
                return m, best[1]
        stroker = QPainterPathStroker()
        stroker.setWidth(2 * tol)
        for m in reversed(shown):
            if stroker.createStroke(shape_path(m, g)).contains(QPointF(x, y)):
                return m, None
        return None

    # -- mouse -------------------------------------------------------------------------
    def click(self, point) -> bool:
        """A left click at display ``point``: selects the annotation there; True when one
        was hit."""
        found = self.hit(point)
        self.select(found[0] if found is not None else None)
        return found is not None

    def drag(self, start, point, *, is_start: bool, is_finish: bool) -> bool:
        """A left drag from display ``start`` to ``point``; True when it edits an
        annotation (the tool then draws nothing)."""
        if is_start:
            found = self.hit(start)
            self._edit = None
            if found is None:
                return False
            m, index = found
            self._edit = (m, index, handles(m), start)
            self.select(m)
        if self._edit is None:
            return False
        m, index, points, origin = self._edit
        if index is None:
            new = moved(points, point[0] - origin[0], point[1] - origin[1])
        else:
            new = with_handle(m.kind, points, index, point)
        if m in self.state.measurements:
            self.state.edit_measurement(m, new)
        if is_finish:
            self._edit = None
        return True

    def delete_target(self, here: list[Measurement]) -> Measurement | None:
        """What Delete removes from ``here`` (the slice's annotations): the selected one,
        else the last drawn."""
        if self.selected is not None and self.selected in here:
            return self.selected
        return here[-1] if here else None
