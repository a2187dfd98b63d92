"""What a slice view draws besides its acquired slice: thick slabs and oblique planes, and
the crosshair drag that turns the planes.

:class:`ObliqueLayer` belongs to one :class:`~medview.gui.slice_viewer.SliceViewer`:

- it redraws the view when the slab (``state.slab``, :mod:`medview.app.slab_model`) changes;
- while the views are rotated (``state.mpr``, :mod:`medview.app.mpr_model`) it shows the
  view's oblique plane, sampled from the voxels (coarser while a drag is under way), in
  place of the acquired slice, anchored so the crosshair stays where it was on screen; the
  label, fusion and preview layers are not resampled and are hidden then;
- it draws the crosshair's two axes as :class:`AxisHandle` items: in the 2×2 layout a left
  drag on an axis (not at the centre) turns the two other planes about this view's normal
  (:meth:`~medview.core.reformat.oblique.MprFrame.rotated_in_view`); while the views show the
  acquired planes the handles lie invisibly on the ordinary crosshair.

Wheel, keys and clicks go to :meth:`ObliqueLayer.step` and
:meth:`ObliqueLayer.move_crosshair_to` first, which act only while the views are rotated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPath, QPainterPathStroker, QPen, QTransform

from medview.gui.colormaps import colormap_lut
from medview.gui.display_options import SmoothImageItem

if TYPE_CHECKING:
    from medview.gui.slice_viewer import SliceViewer

__all__ = ["AxisHandle", "ObliqueLayer"]

#: screen pixels either side of an axis that grab it
GRAB_PX = 5.0
#: screen pixels around the centre that do not grab an axis (a click there moves the
#: crosshair, a drag sets the window)
CENTRE_GAP_PX = 14.0


def _transform(m: np.ndarray) -> QTransform:
    """QTransform of a 2×3 matrix display ``(u, v, 1)`` → view mm."""
    return QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])


class AxisHandle(pg.GraphicsObject):
    """One axis of the crosshair (view mm), drawn and grabbed for the rotation drag."""

    def __init__(self, layer: ObliqueLayer):
        super().__init__()
        self._layer = layer
        self.line: QLineF | None = None
        self.centre: QPointF | None = None
        self.drawn = False
        self.setZValue(10.5)
        self._pen = QPen(layer.view.crosshair[0].pen)
        self._pen.setCosmetic(True)
        self.setAcceptHoverEvents(True)

    def set_line(self, line: QLineF | None, centre: QPointF | None, drawn: bool) -> None:
        self.prepareGeometryChange()
        self.line, self.centre, self.drawn = line, centre, drawn
        self.setVisible(line is not None)
        self.update()

    def _px(self) -> float:
        size = self._layer.view.view_box.viewPixelSize()[0]
        return size if size and math.isfinite(size) else 1.0

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        if self.line is None:
            return path
        px = self._px()
        c, gap = self.centre, CENTRE_GAP_PX * px
        d = self.line.p2() - self.line.p1()
        length = math.hypot(d.x(), d.y()) or 1.0
        t = QPointF(d.x() / length, d.y() / length)
        # the two arms, leaving the centre free
        for end in (self.line.p1(), self.line.p2()):
            direction = end - c
            if direction.x() * t.x() + direction.y() * t.y() < 0:
                start = c - t * gap
            else:
                start = c + t * gap
            if (end - c).manhattanLength() > gap:
                path.moveTo(start)
                path.lineTo(end)
        stroker = QPainterPathStroker()
        stroker.setWidth(2 * GRAB_PX * px)
        return stroker.createStroke(path)

    def boundingRect(self) -> QRectF:
        return self.shape().boundingRect() if self.line is not None else QRectF()

    def paint(self, painter, *args) -> None:
        if self.drawn and self.line is not None:
            painter.setPen(self._pen)
            painter.drawLine(self.line)

    def mouseClickEvent(self, ev) -> None:
        ev.ignore()  # the view box moves the crosshair

    def mouseDragEvent(self, ev) -> None:
        view = self._layer.view
        if ev.button() != Qt.MouseButton.LeftButton or view.state.tool != "window":
            ev.ignore()
            return
        ev.accept()
        self._layer.drag(ev, self.centre)

    def hoverEvent(self, ev) -> None:
        if not ev.isExit() and ev.acceptDrags(Qt.MouseButton.LeftButton):
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.unsetCursor()


class ObliqueLayer:
    """Slab redraws, the oblique image and the rotation handles of one view."""

    def __init__(self, view: SliceViewer):
        self.view = view
        self.state = state = view.state
        self.item = SmoothImageItem(axisOrder="row-major")
        self.item.setZValue(8)  # over the acquired layers, under the crosshair and marks
        self.item.setVisible(False)
        view.view_box.addItem(self.item)
        #: display → view mm of the oblique image shown (None: the acquired slice)
        self.matrix: np.ndarray | None = None
        self.image_plane = None
        self.handles = (AxisHandle(self), AxisHandle(self))
        for handle in self.handles:
            handle.setVisible(False)
            view.view_box.addItem(handle, ignoreBounds=True)
        self._base = None
        self._start_angle = 0.0
        state.slab.model.events.all.connect(self._on_slab_changed)
        state.mpr.model.events.frame.connect(self.refresh)
        state.mpr.model.events.coarse.connect(self.refresh)
        state.volume_changed.connect(self._on_volume_changed)
        state.data_changed.connect(self.refresh)
        state.display.events.window.connect(self._on_window)
        state.display.events.inverted.connect(self._on_lut)
        state.display.events.colormap.connect(self._on_lut)

    @property
    def active(self) -> bool:
        """True while this view shows an oblique plane."""
        return self.state.mpr.rotated and self.view.geometry_ is not None

    # -- state → view ------------------------------------------------------------------
    def _on_slab_changed(self, *args) -> None:
        if self.view.geometry_ is not None:
            self.view._show_slice()
            self.view._update_overlays()

    def _on_volume_changed(self, *args) -> None:
        # the view redraws itself next (its own handler); only the oblique image goes
        self.matrix = self.image_plane = None
        self.item.clear()
        self.item.setVisible(False)
        self.view.image_item.setVisible(True)

    def _on_window(self, *args) -> None:
        if self.matrix is not None:
            self.item.setLevels(self.state.window_levels)

    def _on_lut(self, *args) -> None:
        if self.matrix is not None:
            self.item.setLookupTable(colormap_lut(self.state.colormap,
                                                  inverted=self.state.inverted))

    def refresh(self, *args) -> None:
        """Show the oblique plane (or the acquired slice again after a reset)."""
        view = self.view
        if view.geometry_ is None:
            return
        if not self.active:
            if self.matrix is not None:
                self.matrix = self.image_plane = None
                self.item.clear()
                self.item.setVisible(False)
                view.image_item.setVisible(True)
                view._show_slice()
                view._update_overlays()
            view._update_crosshair()
            return
        image, plane = self.state.mpr.oblique_image(view.plane)
        self.image_plane = plane
        self.matrix = self.state.mpr.view_matrix(view.plane, plane)
        self.item.set_smooth(view.image_item.smooth)
        self.item.setImage(image, autoLevels=False, levels=self.state.window_levels,
                           lut=colormap_lut(self.state.colormap, inverted=self.state.inverted))
        self.item.setTransform(_transform(self.matrix))
        self.item.setVisible(True)
        view.image_item.setVisible(False)
        for layer in (view.label_item, view.scribble_item, view.fusion_item,
                      view.overlay_item, view.preview_item):
            layer.setVisible(False)  # on the acquired grid: not drawn on an oblique plane
        view._update_crosshair()
        view._update_overlays()
        view._draw_measurements()  # hidden on an oblique plane

    def display_to_view(self, u: float, v: float) -> QPointF:
        """View mm of display point ``(u, v)`` of what the view shows now."""
        m = self.matrix if self.matrix is not None else self.view.geometry_.view_matrix
        return QPointF(m[0, 0] * u + m[0, 1] * v + m[0, 2], m[1, 0] * u + m[1, 1] * v + m[1, 2])

    def view_to_display(self, point: QPointF) -> tuple[float, float]:
        m = self.matrix if self.matrix is not None else self.view.geometry_.view_matrix
        u, v = np.linalg.solve(m[:, :2], np.array([point.x() - m[0, 2], point.y() - m[1, 2]]))
        return float(u), float(v)

    # -- the crosshair's axes ----------------------------------------------------------
    def update_handles(self) -> None:
        """Put the two axes on the traces of the other views' planes through the centre."""
        view = self.view
        wanted = view._crosshair_wanted and view.geometry_ is not None \
            and getattr(view, "_annotations_shown", True)
        lines = self.state.mpr.reference_lines(view.plane, clip_to_other=False,
                                               localizer=False) if wanted else []
        centre = None
        frame = self.state.mpr.current_frame() if lines else None  # None: an RGB volume
        if frame is None:
            lines = []
        else:
            plane = self.image_plane if self.active and self.image_plane is not None \
                else self.state.mpr.acquired_plane(
                view.plane)
            u, v = (float(c) for c in plane.lps_to_display(frame.centre))
            centre = self.display_to_view(u, v)
        for k, handle in enumerate(self.handles):
            if k < len(lines):
                line = lines[k][1]
                handle.set_line(QLineF(self.display_to_view(*line.start),
                                       self.display_to_view(*line.end)), centre, self.active)
            else:
                handle.set_line(None, None, False)

    def drag(self, ev, centre: QPointF) -> None:
        """A left drag on an axis: turn the two other planes about this view's normal."""
        mpr = self.state.mpr
        pos = self.view.view_box.mapSceneToView(ev.scenePos())
        if ev.isStart() or self._base is None:
            self._base = mpr.current_frame()
            self._centre = centre
            press = self.view.view_box.mapSceneToView(
                ev.buttonDownScenePos(Qt.MouseButton.LeftButton))
            self._start_angle = math.atan2(press.y() - centre.y(), press.x() - centre.x())
        c = self._centre
        angle = math.atan2(pos.y() - c.y(), pos.x() - c.x()) - self._start_angle
        finished = ev.isFinish()
        base = self._base
        if finished:
            self._base = None
        mpr.rotate_in_view(self.view.plane, angle, base=base, coarse=not finished)

    # -- input while rotated -----------------------------------------------------------
    def step(self, steps: int) -> bool:
        """Wheel/keys: move the oblique plane; False while the views are not rotated."""
        return self.active and self.state.mpr.step(self.view.plane, steps)

    def move_crosshair_to(self, view_point: QPointF) -> bool:
        """A click on an oblique view: the crosshair goes there; False when not rotated."""
        if not self.active or self.image_plane is None:
            return False
        u, v = self.view_to_display(view_point)
        plane = self.image_plane
        if 0 <= u < plane.columns and 0 <= v < plane.rows:
            self.state.mpr.move_centre(plane.display_to_lps(u, v))
        return True
