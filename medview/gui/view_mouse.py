"""Mouse and keys of a slice view.

Mouse: wheel = next/previous slice; left click = move the crosshair there (the other views
follow); left drag = the active tool (window/level by default, or an annotation tool: near
an existing outline it moves it, on one of its points it reshapes it); right drag = zoom;
middle drag = pan; double-click = maximise.
Keys: Up/Down, PgUp/PgDn = previous/next slice (Shift: 10 slices), Home/End = first/last
slice, Delete = remove the selected measurement (else the last) on this slice. Presets
(1–8), reset (R), invert (I), cine (Space) are actions of the main window.

:class:`SliceViewBox` is the view's ViewBox (wheel, clicks, drags in the scene);
:class:`ViewInput` is mixed into :class:`~medview.gui.slice_viewer.SliceViewer` (the mouse
read-out, double-click, focus and keys of the widget).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent

from medview.app.state import Sample, WindowDrag

if TYPE_CHECKING:
    from medview.gui.slice_viewer import SliceViewer

__all__ = ["SliceViewBox", "ViewInput"]

#: One wheel notch in Qt's angle units (1/8 degree); each notch is one slice.
WHEEL_NOTCH = 120
#: Slices per key press with Shift held.
SHIFT_STEP = 10
#: Screen pixels of a right drag (upwards) that double the zoom.
ZOOM_DRAG_PIXELS = 100.0


class SliceViewBox(pg.ViewBox):
    """A ViewBox whose wheel pages through slices, whose left click moves the crosshair and
    whose left drag runs the active tool."""

    def __init__(self, viewer: SliceViewer):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._viewer = viewer
        self._state = viewer.state
        self._wheel_rest = 0
        self._drag: WindowDrag | None = None
        self._last_paint: tuple[float, float] | None = None

    def wheelEvent(self, ev, axis=None):
        # Touchpads send small deltas: add them up and step once per notch.
        self._wheel_rest += int(ev.delta())
        notches = int(self._wheel_rest / WHEEL_NOTCH)
        self._wheel_rest -= notches * WHEEL_NOTCH
        if notches:
            # wheel towards the user (negative delta) = next slice, as in OHIF and Weasis
            self._viewer.step_slices(-notches)
        ev.accept()

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton and self._state.volume is not None:
            ev.accept()
            if ev.double():
                return  # SliceViewer.mouseDoubleClickEvent maximises
            tool = self._state.tool
            if tool in ("brush", "eraser", "fill"):
                if self._oblique_refuses():
                    return
                point = self._viewer.display_point(self.mapSceneToView(ev.scenePos()))
                if tool == "fill":
                    self._state.fill(self._viewer.plane, point)
                else:
                    self._state.begin_edit(tool)
                    self._state.paint(self._viewer.plane, point, erase=tool == "eraser")
                    self._state.end_edit()
                return
            if tool == "text" and self._oblique_refuses():
                return  # (an angle is started by a drag, refused there)
            if self._viewer.annotation_tools.click(
                    self._viewer.display_point(self.mapSceneToView(ev.scenePos()))):
                return
            self._viewer.move_crosshair_to(self.mapSceneToView(ev.scenePos()))
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.RightButton:
            # zoom ×2 per ZOOM_DRAG_PIXELS dragged up (pyqtgraph's own rate is ×7), about
            # the point pressed
            ev.accept()
            dy = ev.screenPos().y() - ev.lastScreenPos().y()
            scale = 2.0 ** (dy / ZOOM_DRAG_PIXELS)
            centre = self.mapToView(ev.buttonDownPos(Qt.MouseButton.RightButton))
            self.scaleBy(s=(scale, scale), center=centre)
            self.sigRangeChangedManually.emit(self.state["mouseEnabled"])
            return
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)  # middle: pan
            return
        ev.accept()
        if self._state.volume is None:
            return
        if self._state.tool == "window":
            if ev.isStart() or self._drag is None:
                self._drag = self._state.start_window_drag()
            moved = ev.screenPos() - ev.buttonDownScreenPos(Qt.MouseButton.LeftButton)
            self._drag.move(moved.x(), moved.y())
            if ev.isFinish():
                self._drag = None
            return
        if self._oblique_refuses(ev.isStart()):
            return
        point = self._viewer.display_point(self.mapSceneToView(ev.scenePos()))
        if self._state.tool in ("brush", "eraser"):
            self._paint_drag(ev, point)
            return
        if self._state.tool == "fill":
            return
        start = self._viewer.display_point(
            self.mapSceneToView(ev.buttonDownScenePos(Qt.MouseButton.LeftButton)))
        screen = (ev.screenPos().x(), ev.screenPos().y())
        self._viewer.annotation_tools.drag(start, point, screen, is_start=ev.isStart(),
                                           is_finish=ev.isFinish())

    def _oblique_refuses(self, say: bool = True) -> bool:
        """Measuring and painting work in the acquired grid's display coordinates: on an
        oblique plane they would measure and paint other voxels than the ones under the
        cursor, so they are refused there (with a word why) until the planes are reset."""
        if not self._viewer.oblique.active:
            return False
        if say:
            self._viewer.tool_refused.emit(
                f"{self._state.tool.capitalize()} works on the acquired planes only: reset the "
                "oblique planes (View ▸ Reset Oblique Planes) to measure or paint")
        return True

    def _paint_drag(self, ev, point) -> None:
        erase = self._state.tool == "eraser"
        plane = self._viewer.plane
        if ev.isStart() or self._last_paint is None:
            start = self._viewer.display_point(
                self.mapSceneToView(ev.buttonDownScenePos(Qt.MouseButton.LeftButton)))
            self._state.begin_edit(self._state.tool)
            self._state.paint(plane, start, erase=erase)
            self._last_paint = start
        self._state.paint(plane, self._last_paint, point, erase=erase)
        self._last_paint = point
        if ev.isFinish():
            self._last_paint = None
            self._state.end_edit()


class ViewInput:
    """The slice view's own mouse and key events (the scene's are :class:`SliceViewBox`'s).
    A mixin of :class:`~medview.gui.slice_viewer.SliceViewer`."""

    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        if self.annotation_tools.pending_angle is not None and self._geometry is not None:
            self.annotation_tools.hover(self.display_point(self.view_box.mapSceneToView(
                self.mapToScene(event.position().toPoint()))))
        # Not pyqtgraph's sigMouseMoved: the scene drops moves closer than its rate limit,
        # and the readout must be the pixel where the mouse came to rest.
        self._update_cursor(self.mapToScene(event.position().toPoint()))

    def _sample_at(self, col: int, row: int) -> Sample | None:
        g = self._geometry
        if g is None or not (0 <= col < g.width and 0 <= row < g.height):
            return None
        return self.state.sample_index(*g.pixel_to_index(col, row,
                                                         self.state.plane_slice(self.plane)))

    def _update_cursor(self, scene_pos: QPointF) -> None:
        if self._geometry is None:
            return
        u, v = self.display_point(self.view_box.mapSceneToView(scene_pos))
        col, row = math.floor(u), math.floor(v)
        sample = self._sample_at(col, row)
        self._cursor_px = (col, row) if sample is not None else None
        self.cursor_sample.emit(sample)

    def leaveEvent(self, event) -> None:
        self._cursor_px = None
        self.cursor_sample.emit(None)
        super().leaveEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.state.volume is not None:
            event.accept()
            self.maximise_requested.emit(self.plane)
            return
        super().mouseDoubleClickEvent(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.focused.emit(self.plane)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        step = SHIFT_STEP if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        plane = self.plane
        if key in (Qt.Key.Key_Up, Qt.Key.Key_PageUp):
            self.step_slices(-step)
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.step_slices(step)
        elif key == Qt.Key.Key_Home:
            self.state.set_plane_slice(plane, 0)
        elif key == Qt.Key.Key_End:
            self.state.set_plane_slice(plane, self.state.plane_n_slices(plane) - 1)
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            here = self.state.measurements_on(plane, self.state.plane_slice(plane))
            if here:  # the selected one, else the last drawn
                self.state.remove_measurement(self.annotation_tools.editor.delete_target(here))
        else:
            super().keyPressEvent(event)
            return
        event.accept()
