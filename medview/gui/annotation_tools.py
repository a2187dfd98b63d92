"""The annotation tools' mouse handling in a slice view (what a left drag or click draws).

- distance, arrow (tail → head), ellipse, rectangle: a drag from one point to the other (the
  box's corners for ROIs);
- freehand polygon: a drag traces the outline; releasing closes it;
- angle: a drag draws the first arm (from its end to the vertex), then the mouse moves the
  second arm and a click fixes it;
- text: a click places the text at that point and asks for it.

A drag or click that starts on a finished annotation edits or selects it instead
(:mod:`medview.gui.annotation_edit`).

The state records every change (:meth:`ViewerState.update_measurement
<medview.app.state.ViewerState.update_measurement>`); the view redraws from there.
"""

from __future__ import annotations

import math

from PySide6.QtWidgets import QInputDialog, QWidget

from medview.app.measurements import Measurement
from medview.gui.annotation_edit import AnnotationEditor

__all__ = ["DRAG_TOOLS", "AnnotationTools", "ask_text"]

#: tools whose left drag draws an annotation
DRAG_TOOLS = ("distance", "angle", "ellipse", "rectangle", "polygon", "arrow")
#: a freehand outline takes a new vertex every this many screen pixels
POLYGON_STEP_PX = 4.0


def ask_text(parent: QWidget, current: str = "") -> str | None:
    """Ask for an annotation's text (a modal input dialog); None when cancelled."""
    text, ok = QInputDialog.getText(parent, "Text annotation", "Text:", text=current)
    return text if ok and text.strip() else None


class AnnotationTools:
    """The drawing in progress in one view.

    Parameters
    ----------
    viewer : SliceViewer
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.state = viewer.state
        self._drawing: Measurement | None = None
        #: an angle whose second arm follows the mouse until a click
        self.pending_angle: Measurement | None = None
        self._last_screen = None
        #: ``ask(parent, current) -> str | None``: the text of a text annotation (a script or
        #: test may answer it)
        self.ask = ask_text
        #: moving and reshaping finished annotations, the selection
        self.editor = AnnotationEditor(viewer)
        self.state.volume_changed.connect(self._forget)
        self.state.tools.events.tool.connect(self._on_tool)

    def _forget(self, *_args) -> None:
        self._drawing = self.pending_angle = None

    def _on_tool(self, _tool) -> None:
        if self.pending_angle is not None:  # an unfinished angle goes with its tool
            m, self.pending_angle = self.pending_angle, None
            self.state.remove_measurement(m)

    def _new(self, kind: str, start, **kw) -> Measurement:
        v = self.viewer
        m = Measurement(kind, v.plane, self.state.plane_slice(v.plane), start, start, **kw)
        return self.state.add_measurement(m)

    # -- drag --------------------------------------------------------------------------
    def drag(self, start, point, screen, *, is_start: bool, is_finish: bool) -> None:
        """A left drag of the active tool from display point ``start`` to ``point``
        (``screen``: the mouse in screen pixels)."""
        tool = self.state.tool
        if self.pending_angle is None and self._drawing is None and self.editor.drag(
                start, point, is_start=is_start, is_finish=is_finish):
            return  # it started on an annotation: that one is moved or reshaped
        if tool == "angle":
            self._drag_angle(start, point, is_start=is_start, is_finish=is_finish)
            return
        if is_start or self._drawing is None:
            if tool == "polygon":
                self._drawing = self._new("polygon", start, points=(start,))
                self._last_screen = screen
            else:
                self._drawing = self._new(tool, start)
        m = self._drawing
        if tool == "polygon":
            if (self._last_screen is None or math.dist(screen, self._last_screen)
                    >= POLYGON_STEP_PX or is_finish):
                self._last_screen = screen
                self.state.update_measurement(m, point, points=(*m.points, point))
        else:
            self.state.update_measurement(m, point)
        if is_finish:
            self._drawing = None
            if (tool == "polygon" and len(m.points) < 3) or (tool != "polygon"
                                                            and m.p0 == m.p1):
                self.state.remove_measurement(m)

    def _drag_angle(self, start, point, *, is_start: bool, is_finish: bool) -> None:
        pending = self.pending_angle
        if pending is not None:  # a drag after the first arm moves the second arm's end
            self.state.update_measurement(pending, points=(*pending.points[:2], point))
            if is_finish:
                self.pending_angle = None
            return
        if is_start or self._drawing is None:
            self._drawing = self._new("angle", start, points=(start, start))
        m = self._drawing
        self.state.update_measurement(m, point, points=(m.points[0], point))
        if is_finish:
            self._drawing = None
            if m.points[0] == m.points[1]:
                self.state.remove_measurement(m)
            else:
                self.pending_angle = m

    # -- click and hover ---------------------------------------------------------------
    def click(self, point) -> bool:
        """A left click at display point ``point``; True when a tool used it."""
        tool = self.state.tool
        if tool == "angle" and self.pending_angle is not None:
            m, self.pending_angle = self.pending_angle, None
            self.state.update_measurement(m, points=(*m.points[:2], point))
            return True
        if self.editor.click(point):
            return True  # selected (Delete removes it)
        if tool == "text":
            text = self.ask(self.viewer, "")
            if text is not None:
                self._new("text", point, label=text)
            return True
        return False  # a click of the other tools moves the crosshair

    def hover(self, point) -> None:
        """The mouse moved (no button) to display point ``point``."""
        m = self.pending_angle
        if m is not None:
            self.state.update_measurement(m, points=(*m.points[:2], point))
