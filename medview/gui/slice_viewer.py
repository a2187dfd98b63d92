"""The slice view: one plane (axial, coronal or sagittal) of a ViewerState's volume.

A pyqtgraph ImageItem in a ViewBox whose coordinates are millimetres, so the picture has the
aspect ratio of the voxel spacing (:mod:`medview.app.planes` says which voxel axes run
across and down). Over it: the label-map overlay, the crosshair and the measurements. The
widget holds no viewing state of its own: it draws the state and turns mouse and keys into
calls on it.

Mouse: wheel = next/previous slice; left click = move the crosshair there (the other views
follow); left drag = the active tool (window/level by default, or distance / ellipse /
rectangle measurement); right drag = zoom; middle drag = pan; double-click = maximise.
Keys: Up/Down, PgUp/PgDn = previous/next slice (Shift: 10 slices), Home/End = first/last
slice, Delete = remove the selected measurement (else the last) on this slice. Presets
(1–8), reset (R), invert (I), cine (Space) are actions of the main window.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QPainter,
    QPixmap,
    QTransform,
)
from PySide6.QtWidgets import (
    QLabel,
    QWidget,
)

from medview.app.annotation_model import annotation_of, annotation_text
from medview.app.measurements import Measurement
from medview.app.planes import PlaneGeometry
from medview.app.state import Sample, ViewerState, WindowDrag
from medview.gui.annotation_items import shape_item, text_anchor
from medview.gui.annotation_tools import AnnotationTools
from medview.gui.badges import MadeUpMarks, WarningBadge
from medview.gui.colormaps import colormap_lut, fusion_lut, label_lut, label_rgba
from medview.gui.display_options import SmoothImageItem
from medview.gui.mpr_interaction import ObliqueLayer
from medview.gui.overlays import CORNERS, EDGES, corner_texts, edge_texts
from medview.gui.reference_lines_item import ReferenceLinesItem
from medview.gui.text_layout import (
    MARGIN,
    corner_rooms,
    label_rect,
    place_floating_labels,
    text_rects,
)

__all__ = ["OverlayText", "SliceViewer", "save_widget_png"]

#: One wheel notch in Qt's angle units (1/8 degree); each notch is one slice.
WHEEL_NOTCH = 120
#: While a volume loads, a reformat (coronal, sagittal) is redrawn at most this often (s).
REFORMAT_REDRAW_S = 0.2
#: Slices per key press with Shift held.
SHIFT_STEP = 10
#: Screen pixels of a right drag (upwards) that double the zoom.
ZOOM_DRAG_PIXELS = 100.0

#: The grey lookup table of an inverted display: level 0 white, 255 black.
INVERTED_LUT = np.arange(255, -1, -1, dtype=np.uint8)

#: Where the dark outline of overlay text is drawn, around each glyph (screen pixels).
_OUTLINE_OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))

CROSSHAIR_COLOUR = QColor(255, 200, 40, 170)
MEASURE_COLOUR = QColor(80, 220, 255)

_HINT = "No series open.\nDouble-click a series in the browser, or File ▸ Import Folder… (Ctrl+O)."


class OverlayText(QWidget):
    """Light text with a dark outline, readable over black background and bright bone alike
    (a label's plain text vanishes over white anatomy).

    The outlined text is rendered into a pixmap when it changes and only copied on repaints
    (eight labels per view are repainted on every slice change).
    """

    TEXT_COLOUR = QColor(235, 235, 235)
    OUTLINE = QColor(0, 0, 0, 230)

    def __init__(self, parent: QWidget, *, right: bool = False):
        super().__init__(parent)
        self._lines: list[str] = []
        #: the lines drawn: ``_lines`` elided and cut to the room :meth:`fit` gave
        self._shown: list[str] = []
        self._right = right
        self._pixmap: QPixmap | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)

    def text(self) -> str:
        return "\n".join(self._lines)

    def setText(self, text: str) -> None:
        lines = text.split("\n") if text else []
        if lines != self._lines:
            self._lines = lines
            self._shown = list(lines)
            self._pixmap = None
            self.updateGeometry()
            self.update()

    def sizeHint(self) -> QSize:
        # cached: the view lays its texts out on every slice change
        key = (tuple(self._shown), self.font().key())
        if getattr(self, "_hint_key", None) != key:
            metrics = QFontMetrics(self.font())
            width = max((metrics.horizontalAdvance(line) for line in self._shown), default=0)
            self._hint = QSize(width + 4, metrics.lineSpacing() * len(self._shown) + 4)
            self._hint_key = key
        return QSize(self._hint)

    def shown_text(self) -> str:
        """The text as drawn (elided to the room the view gave it)."""
        return "\n".join(self._shown)

    def fit(self, max_width: int, max_height: int) -> QSize:
        """Draw only what fits in ``max_width`` × ``max_height`` pixels: lines too long are
        elided ("…"), lines below the room are left out. Returns the size then needed."""
        if getattr(self, "_fit_key", None) == (tuple(self._lines), max_width, max_height):
            return self.sizeHint()
        self._fit_key = (tuple(self._lines), max_width, max_height)
        metrics = QFontMetrics(self.font())
        rows = max(0, (max_height - 4) // max(metrics.lineSpacing(), 1))
        room = max_width - 4
        shown = [line if metrics.horizontalAdvance(line) <= room
                 else metrics.elidedText(line, Qt.TextElideMode.ElideRight, max(room, 0))
                 for line in self._lines[:rows]]
        shown = [line for line in shown if line]
        if shown != self._shown:
            self._shown = shown
            self._pixmap = None
            self.update()
        return self.sizeHint()

    def resizeEvent(self, event) -> None:
        self._pixmap = None
        super().resizeEvent(event)

    def _render(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        metrics = QFontMetrics(self.font())
        painter = QPainter(pixmap)
        painter.setFont(self.font())
        placed = []
        for i, line in enumerate(self._shown):
            x = self.width() - 2 - metrics.horizontalAdvance(line) if self._right else 2
            placed.append((x, 2 + metrics.ascent() + i * metrics.lineSpacing(), line))
        # the outline: the text drawn dark around its position (glyphs come from Qt's cache;
        # stroking the glyph outlines with a wide pen took 5 ms per label)
        painter.setPen(self.OUTLINE)
        for dx, dy in _OUTLINE_OFFSETS:
            for x, y, line in placed:
                painter.drawText(x + dx, y + dy, line)
        painter.setPen(self.TEXT_COLOUR)
        for x, y, line in placed:
            painter.drawText(x, y, line)
        painter.end()
        return pixmap

    def paintEvent(self, event) -> None:
        if not self._shown:
            return
        if self._pixmap is None:
            self._pixmap = self._render()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._pixmap)
        painter.end()


class _SliceViewBox(pg.ViewBox):
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


class SliceViewer(pg.GraphicsView):
    """Shows one plane of ``state``'s volume with overlays, crosshair and measurements.

    Parameters
    ----------
    state : ViewerState
    plane : {"axial", "coronal", "sagittal"}, optional
        The view; default the acquired plane of whatever volume is open (shown as stored).

    Signals
    -------
    cursor_sample(object)
        The :class:`~medview.app.state.Sample` under the mouse, or None when the mouse is
        off the image. Sent when the mouse moves and when the slice under it changes.
    maximise_requested(str)
        The view was double-clicked (its plane's name).
    focused(str)
        The view got the keyboard focus (its plane's name).
    point_picked(object)
        A left click put the crosshair on voxel ``(x, y, z)`` (e.g. for seed points).
    """

    cursor_sample = Signal(object)
    maximise_requested = Signal(str)
    focused = Signal(str)
    point_picked = Signal(object)
    tool_refused = Signal(str)

    def __init__(self, state: ViewerState, parent: QWidget | None = None, *,
                 plane: str | None = None):
        super().__init__(parent, background="k")
        self.state = state
        self._plane = plane
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 160)

        self.view_box = _SliceViewBox(self)
        self.setCentralItem(self.view_box)
        self.image_item = SmoothImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.fusion_item = pg.ImageItem(axisOrder="row-major")
        self.fusion_item.setZValue(4)
        self.fusion_item.setVisible(False)
        self.view_box.addItem(self.fusion_item)
        self.label_item = pg.ImageItem(axisOrder="row-major")
        self.label_item.setZValue(5)
        self.view_box.addItem(self.label_item)
        self.scribble_item = pg.ImageItem(axisOrder="row-major")
        self.scribble_item.setZValue(6)
        self.view_box.addItem(self.scribble_item)
        self._add_layer_items()
        pen = pg.mkPen(CROSSHAIR_COLOUR, width=1)
        self.crosshair = (pg.InfiniteLine(angle=90, movable=False, pen=pen),
                          pg.InfiniteLine(angle=0, movable=False, pen=pen))
        for line in self.crosshair:
            line.setZValue(10)
            line.setVisible(False)
            self.view_box.addItem(line, ignoreBounds=True)
        self._crosshair_wanted = False
        self._measure_items: list = []
        self.annotation_tools = AnnotationTools(self)
        #: text shown for each measurement on the displayed slice, by measurement id
        self.measurement_texts: dict[int, str] = {}
        #: oblique MPR (crosshair drag, sampled planes) and reference lines of this view
        self.oblique = ObliqueLayer(self)
        self.reference_lines = ReferenceLinesItem(self)

        self.overlays: dict[str, OverlayText] = {}
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0))
        for corner in CORNERS:
            label = OverlayText(self, right=corner.endswith("right"))
            label.setObjectName(f"overlay_{corner}")
            label.setFont(font)
            self.overlays[corner] = label
        #: orientation letters (A/P, R/L, S/I) at the middle of each edge
        self.edge_labels: dict[str, OverlayText] = {}
        for edge in EDGES:
            label = OverlayText(self, right=edge == "right")
            label.setObjectName(f"orientation_{edge}")
            label.setFont(font)
            self.edge_labels[edge] = label
        self.hint = QLabel(_HINT, self)
        self.hint.setObjectName("empty_hint")
        self.hint.setStyleSheet("QLabel { color: #8c8c8c; background: transparent; }")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hint.setWordWrap(True)

        #: the slice index (on this view's normal) whose pixels ``image_item`` shows
        self.displayed_slice = -1
        self._cursor_px: tuple[int, int] | None = None
        self._geometry: PlaneGeometry | None = None

        self.view_box.sigRangeChanged.connect(self._on_range_changed)
        self.view_box.sigResized.connect(self._on_range_changed)
        state.volume_changed.connect(self._on_volume_changed)
        state.camera.events.cursor.connect(self._on_position_changed)
        state.display.events.window.connect(self._on_window_changed)
        for camera in state.planes.values():
            camera.events.zoom.connect(partial(self._on_zoom_changed, camera.name))
            camera.reset.connect(partial(self._on_view_reset, camera.name))
        state.display.events.inverted.connect(self._on_lut_changed)
        state.display.events.colormap.connect(self._on_lut_changed)
        state.measurements_changed.connect(self._draw_measurements)
        state.layers.events.labels.connect(self._show_labels)
        state.label_layers.events.all.connect(self._show_labels)
        state.labels_changed.connect(self._show_labels)
        state.fusion_model.events.all.connect(self._show_fusion)
        state.data_changed.connect(self._on_data_changed)
        self._complete_slice = -1
        self._data_stale = False
        self._last_reformat_draw = 0.0
        state.volume_changed.connect(self._on_volume_changed_loading)
        self._on_volume_changed(state.volume)
        #: the "⚠ N" badge of the series' warnings, and the made-up-slice marks
        self.warning_badge = WarningBadge(self)
        self.made_up = MadeUpMarks(self)
        state.volume_changed.connect(self._place_overlays)

    @property
    def plane(self) -> str:
        """The view's plane ("axial", "coronal" or "sagittal")."""
        return self._plane or self.state.native_plane

    @property
    def geometry_(self) -> PlaneGeometry | None:
        return self._geometry

    # -- state → view ------------------------------------------------------------------
    def _on_volume_changed(self, volume) -> None:
        self._cursor_px = None
        self.hint.setVisible(volume is None)
        self._geometry = self.state.geometry(self.plane) if volume is not None else None
        if volume is None:
            self.image_item.clear()
            self.label_item.clear()
            self.scribble_item.clear()
            self.fusion_item.clear()
            self.fusion_item.setVisible(False)
            self.displayed_slice = -1
            self._update_crosshair()
            self._draw_measurements()
            self._update_overlays()
            return
        self._show_slice()
        self._on_view_reset(self.plane)
        self._update_crosshair()
        self._update_overlays()

    def _show_slice(self) -> None:
        image = self.state.slab.plane_image(self.plane)  # the slice, or the thick slab
        if image is None:
            return
        rgb = self.state.volume.is_rgb
        levels = (0, 255) if rgb else self.state.window_levels
        lut = None if rgb else colormap_lut(self.state.colormap, inverted=self.state.inverted)
        self._set_item_image(self.image_item, image, autoLevels=False, levels=levels, lut=lut)
        self.displayed_slice = self.state.plane_slice(self.plane)
        self._show_fusion()
        self._show_labels()
        self._show_overlay()
        self._show_preview()
        self._draw_measurements()

    def _set_item_image(self, item: pg.ImageItem, image: np.ndarray, **kw) -> None:
        """``item.setImage(image, **kw)``, then place it over the slice in millimetres (the
        aspect lock then gives the true shape of the anatomy; a sheared reformat is drawn as
        the parallelogram it is in patient space).

        The placement is a transform from display pixels to view millimetres, set after every
        image: pyqtgraph 0.14 scales ``setRect`` of an item that holds no image yet as a
        1-pixel image (drawn hundreds of times too big), and a rect cannot express a shear.
        """
        item.setImage(image, **kw)
        item.setTransform(self.item_transform())

    def _show_fusion(self) -> None:
        image = self.state.fusion_image(self.plane)
        if image is None:
            self.fusion_item.clear()
            self.fusion_item.setVisible(False)
            return
        self._set_item_image(self.fusion_item, image, autoLevels=False,
                             levels=self.state.fusion_window,
                             lut=fusion_lut(self.state.fusion_colormap))
        self.fusion_item.setOpacity(self.state.fusion_opacity)
        self.fusion_item.setVisible(True)

    #: Scribbles are drawn nearly opaque over the (translucent) segmentation they train.
    SCRIBBLE_OPACITY = 0.9

    def _show_labels(self) -> None:
        for item, which, opacity in ((self.label_item, "labels", self.state.label_opacity),
                                     (self.scribble_item, "scribbles", self.SCRIBBLE_OPACITY)):
            labels = self.state.label_image(self.plane, which)
            if labels is None:
                item.clear()
                item.setVisible(False)
                continue
            lm = self.state.labels if which == "labels" else self.state.scribbles
            lut = label_lut(lm.segments, opacity)
            self._set_item_image(item, label_rgba(labels, lut), autoLevels=False, levels=(0, 255))
            item.setVisible(True)

    def _on_position_changed(self, position) -> None:
        if self._geometry is None:
            return
        if self.state.plane_slice(self.plane) != self.displayed_slice:
            self._show_slice()
            self._update_overlays()
            if self._cursor_px is not None:
                self.cursor_sample.emit(self._sample_at(*self._cursor_px))
        self._update_crosshair()

    def _on_data_changed(self) -> None:
        # Voxels changed in place: slices of a volume being loaded arrived (at most ~20
        # times a second). A view across the slices (coronal, sagittal) gains rows each time
        # and is redrawn; a view of the acquired plane only when the slice it shows is one of
        # those that arrived: the GUI thread shares the GIL with the reading thread, and
        # every redraw it skips keeps the event loop answering.
        if self._geometry is None:
            return
        if not self.isVisible():  # e.g. the other planes in the single layout
            self._data_stale = True
            return
        self._data_stale = False
        if self._geometry.normal == 2 and self.state.loaded_mask is not None:
            k = self.displayed_slice
            if k != self._complete_slice and k >= 0 and self.state.is_slice_loaded(k):
                self._show_slice()
                self._complete_slice = k
        elif not self.state.is_loading:
            self._show_slice()  # the last update of a load (or data changed otherwise)
        else:
            # a reformat of a volume still loading: a few redraws a second show it filling
            # in; each costs the GUI thread a strided copy and a repaint
            now = time.monotonic()
            if now - self._last_reformat_draw >= REFORMAT_REDRAW_S:
                self._last_reformat_draw = now
                self._show_slice()
        self._update_overlays()

    def _on_volume_changed_loading(self, volume) -> None:
        #: the acquired-plane slice last drawn with all its values (-1: none of this volume)
        self._complete_slice = -1
        #: voxels changed while the view was hidden: redraw when it is shown
        self._data_stale = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_data_stale", False):
            self._on_data_changed()

    def _on_window_changed(self) -> None:
        if self.state.volume is not None and not self.state.volume.is_rgb:
            self.image_item.setLevels(self.state.window_levels)
        self._update_overlays()

    def _on_lut_changed(self, *args) -> None:
        if self.state.volume is not None and not self.state.volume.is_rgb:
            self.image_item.setLookupTable(
                colormap_lut(self.state.colormap, inverted=self.state.inverted))

    def _on_zoom_changed(self, plane: str, zoom: float) -> None:
        if plane != self.plane:
            return
        current = self.current_zoom()
        if current is not None and abs(current - zoom) > 1e-6 * zoom:
            factor = current / zoom
            self.view_box.scaleBy(s=(factor, factor))
        self._update_overlays()

    def _on_view_reset(self, plane: str) -> None:
        if plane != self.plane:
            return
        # auto range re-fits on every resize until the user zooms or pans
        self.view_box.enableAutoRange()
        self.view_box.autoRange(padding=0.0)

    def _update_overlays(self) -> None:
        for corner, text in corner_texts(self.state, self.plane).items():
            label = self.overlays[corner]
            label.setText(text)
            label.adjustSize()
        for edge, text in edge_texts(self.state, self.plane).items():
            self.edge_labels[edge].setText(text)
        self._place_overlays()

    def set_annotations_visible(self, visible: bool) -> None:
        """Show or hide the text, letters, crosshair and measurements (not the layers)."""
        for label in (*self.overlays.values(), *self.edge_labels.values()):
            label.setVisible(visible)
        self._annotations_shown = bool(visible)
        self.oblique.update_handles()
        self.reference_lines.update()
        self.warning_badge.setVisible(visible and self.warning_badge.count() > 0)
        self.made_up.set_visible(visible)
        for item in self._measure_items:
            item.setVisible(visible)
        if visible:
            self._update_crosshair()
        else:
            for line in self.crosshair:
                line.setVisible(False)

    # -- RGB overlay and slice preview (chain panel layers) -----------------------------
    def _add_layer_items(self) -> None:
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(4)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_item.setZValue(7)
        for item in (self.overlay_item, self.preview_item):
            item.setVisible(False)
            self.view_box.addItem(item)
        self.state.layers.events.rgb.connect(self._show_overlay)
        self.state.overlay_model.events.all.connect(self._show_overlay)
        self.state.preview_model.events.all.connect(self._show_preview)

    def _place_layer_item(self, item: pg.ImageItem, image: np.ndarray | None, **kw) -> None:
        if image is None or self._geometry is None:
            item.clear()
            item.setVisible(False)
            return
        self._set_item_image(item, image, autoLevels=False, **kw)
        item.setVisible(True)

    def _show_overlay(self) -> None:
        image = self.state.overlay_image(self.plane)
        self._place_layer_item(self.overlay_item, image, levels=(0, 255))
        self.overlay_item.setOpacity(self.state.overlay_opacity)

    def _show_preview(self) -> None:
        image = self.state.preview_image(self.plane)
        p = self.state.preview
        if image is None or p is None:
            self._place_layer_item(self.preview_item, None)
        elif p.kind == "labels":
            lut = label_lut(p.segments, self.state.label_opacity, int(image.max(initial=0)) + 1)
            self._place_layer_item(self.preview_item, label_rgba(image, lut), levels=(0, 255))
        elif p.kind == "rgb":
            self._place_layer_item(self.preview_item, image, levels=(0, 255))
        else:
            lut = colormap_lut(self.state.colormap, inverted=self.state.inverted)
            self._place_layer_item(self.preview_item, image, levels=p.levels, lut=lut)

    def step_slices(self, steps: int) -> None:
        """Wheel and keys: the next/previous slice (the oblique plane moves along its
        normal while the views are rotated)."""
        if not self.oblique.step(steps):
            self.state.step_plane_slice(self.plane, steps)

    # -- crosshair ---------------------------------------------------------------------
    def set_crosshair_visible(self, visible: bool) -> None:
        self._crosshair_wanted = bool(visible)
        self._update_crosshair()

    def crosshair_visible(self) -> bool:
        return self.crosshair[0].isVisible()

    def _update_crosshair(self) -> None:
        self.oblique.update_handles()
        g = self._geometry
        # an oblique view draws its crosshair itself (gui.mpr_interaction)
        show = self._crosshair_wanted and g is not None and not self.oblique.active
        for line in self.crosshair:
            line.setVisible(show)
        if not show:
            return
        # the lines follow the image's columns and rows (slanted on a tilted reformat)
        u, v = g.index_to_display(self.state.cursor)
        m = g.view_matrix
        at = QPointF(*g.to_view(u, v))
        for line, (dx, dy) in zip(self.crosshair, ((m[0, 1], m[1, 1]), (m[0, 0], m[1, 0])),
                                  strict=True):
            angle = math.degrees(math.atan2(dy, dx))
            if line.angle != angle:
                line.setAngle(angle)
            line.setPos(at)

    def crosshair_display(self) -> tuple[float, float] | None:
        """Where the crosshair is in this view, display pixel coordinates ``(u, v)``."""
        if self._geometry is None:
            return None
        return self._geometry.index_to_display(self.state.cursor)

    def move_crosshair_to(self, view_point: QPointF) -> None:
        """Move the crosshair to the voxel under ``view_point`` (view mm) on this slice."""
        g = self._geometry
        if g is None or self.oblique.move_crosshair_to(view_point):
            return
        u, v = self.display_point(view_point)
        col, row = math.floor(u), math.floor(v)
        if not (0 <= col < g.width and 0 <= row < g.height):
            return
        index = g.pixel_to_index(col, row, self.state.plane_slice(self.plane))
        self.state.set_cursor(*index)
        self.point_picked.emit(tuple(int(c) for c in index))

    # -- measurements ------------------------------------------------------------------
    def display_point(self, view_point: QPointF) -> tuple[float, float]:
        """View (mm) coordinates → display pixel coordinates ``(u, v)``."""
        return self._geometry.from_view(view_point.x(), view_point.y())

    def item_transform(self) -> QTransform:
        """Display pixels → view mm: the transform of the image and of every layer."""
        m = self._geometry.view_matrix
        return QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])

    def start_measurement(self, start: tuple[float, float]) -> Measurement:
        m = Measurement(self.state.tool, self.plane, self.state.plane_slice(self.plane),
                        start, start)
        return self.state.add_measurement(m)

    def measurement_text(self, m: Measurement) -> str:
        """What the view writes beside a measurement: the values the report saves
        (:func:`~medview.app.annotation_model.annotation_text`)."""
        return annotation_text(annotation_of(m, self.state.volume, self._geometry), m)

    def _draw_measurements(self) -> None:
        for item in self._measure_items:
            self.view_box.removeItem(item)
        self._measure_items = []
        self.measurement_texts = {}
        g = self._geometry
        if g is None or self.oblique.active:
            return  # measurements live on the acquired slices: not drawn on an oblique plane
        pen = pg.mkPen(MEASURE_COLOUR, width=2)
        pen.setCosmetic(True)
        for m in self.state.measurements_on(self.plane, self.state.plane_slice(self.plane)):
            # drawn in view millimetres from the display points: the outline is where the
            # values are taken, also on a sheared (tilted) reformat
            shape = shape_item(m, g, pen,
                               selected=m is self.annotation_tools.editor.selected)
            shape.setZValue(20)
            self.view_box.addItem(shape, ignoreBounds=True)
            text = self.measurement_text(m)
            self.measurement_texts[m.id] = text
            label = pg.TextItem(text, color=MEASURE_COLOUR, anchor=(0, 1),
                                fill=pg.mkBrush(0, 0, 0, 140))
            label.setPos(*text_anchor(m, g))
            label.setZValue(21)
            label.setVisible(bool(text) and getattr(self, "_annotations_shown", True))
            self.view_box.addItem(label, ignoreBounds=True)
            self._measure_items += [shape, label]
        self.place_floating_labels()

    # -- view → state ------------------------------------------------------------------
    def current_zoom(self) -> float | None:
        """Screen pixels per mm now, relative to the whole slice just fitting the view."""
        if self._geometry is None:
            return None
        rect = self.view_box.boundingRect()
        width_mm, height_mm = self._geometry.view_size_mm
        if rect.width() <= 1 or rect.height() <= 1:
            return None
        fit = min(rect.width() / width_mm, rect.height() / height_mm)
        mm_per_px = self.view_box.viewPixelSize()[0]
        if not mm_per_px or not math.isfinite(mm_per_px):
            return None
        return (1.0 / mm_per_px) / fit

    def _on_range_changed(self, *args) -> None:
        self.place_floating_labels()
        zoom = self.current_zoom()
        if zoom is not None and abs(zoom - self.state.planes[self.plane].zoom) > 1e-3 * zoom:
            self.state.set_zoom(zoom, self.plane)

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

    # -- geometry ----------------------------------------------------------------------
    def viewport_pos_of_pixel(self, x: float, y: float) -> QPoint:
        """Where the centre of displayed pixel (column ``x``, row ``y``) is, in viewport
        coordinates (for the acquired plane: voxel x, y)."""
        return self.viewport_pos_of_display(x + 0.5, y + 0.5)

    def viewport_pos_of_display(self, u: float, v: float) -> QPoint:
        """Viewport position of display point ``(u, v)`` (pixel units, see planes)."""
        if self._geometry is None:
            raise RuntimeError("no volume is shown")
        scene = self.view_box.mapViewToScene(QPointF(*self._geometry.to_view(u, v)))
        return self.mapFromScene(scene)

    def displayed_image(self) -> np.ndarray | None:
        """The array the image item shows now (the current slice, not a copy)."""
        return self.image_item.image

    def save_view_png(self, path: str | os.PathLike) -> Path:
        """Write the view as it is on screen (image and overlays) to ``path`` as a PNG
        (atomically: see :func:`save_widget_png`)."""
        return save_widget_png(self, path)

    def sizeHint(self) -> QSize:
        # not the scene's size (QGraphicsView's hint): a reformat's millimetres would make
        # its cell of the 2×2 grid taller than the others
        return QSize(400, 400)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self, *args) -> None:
        if not hasattr(self, "warning_badge"):
            return  # pyqtgraph resizes during its own __init__, before the labels exist
        margin = MARGIN
        w, h = self.width(), self.height()
        badge = self.warning_badge
        badge_size = badge.sizeHint() if not badge.isHidden() else None
        if badge_size is not None:
            badge.setGeometry(margin, margin, badge_size.width(), badge_size.height())
        # each corner text gets the room between the edges' letters (see text_layout)
        rooms = corner_rooms(w, h, {e: lab.sizeHint() for e, lab in self.edge_labels.items()},
                             badge_size)
        for corner, label in self.overlays.items():
            room = rooms[corner]
            size = label.fit(room.width(), room.height())
            x = room.left() if corner.endswith("left") else room.right() + 1 - size.width()
            y = room.top() if corner.startswith("top") else room.bottom() + 1 - size.height()
            label.setGeometry(x, y, size.width(), size.height())
        for edge, label in self.edge_labels.items():
            size = label.sizeHint()
            if edge in ("left", "right"):
                x = margin if edge == "left" else w - margin - size.width()
                y = (h - size.height()) // 2
            else:
                x = (w - size.width()) // 2
                y = margin if edge == "top" else h - margin - size.height()
            label.setGeometry(x, y, size.width(), size.height())
        self.hint.setGeometry(0, 0, w, h)
        self.place_floating_labels()

    def text_rects(self) -> list[QRect]:
        """Where the fixed texts are (corner texts, letters, badge), widget pixels."""
        return text_rects(self)

    def floating_labels(self) -> list:
        """The labels drawn in the scene beside shapes (measurements, made-up mark)."""
        labels = [i for i in self._measure_items if isinstance(i, pg.TextItem)]
        if hasattr(self, "made_up") and self.made_up.reason is not None:
            labels.append(self.made_up.label)
        return [label for label in labels if label.isVisible()]

    def label_rect(self, item) -> QRect:
        """Where a scene item is, widget pixels."""
        return label_rect(self, item)

    def place_floating_labels(self) -> None:
        """Put each measurement label (and the made-up mark) beside its shape where it
        meets no corner text, letter, badge or other label (see text_layout)."""
        if not hasattr(self, "made_up") or self._geometry is None or getattr(self, "closed",
                                                                            False):
            return  # not built yet, or closing (pyqtgraph has cleared the scene)
        measure = [(label, shape) for shape, label in zip(
            self._measure_items[::2], self._measure_items[1::2], strict=True)
            if label.textItem.toPlainText()]  # an arrow without text has no label
        place_floating_labels(self, measure, getattr(self, "_annotations_shown", True))


def save_widget_png(widget: QWidget, path: str | os.PathLike) -> Path:
    """Write ``widget`` as it is on screen to ``path`` as a PNG.

    Written to a temporary file beside ``path`` and renamed over it, so ``path`` is either
    the old file or the complete new picture, never half written. Returns the path; raises
    OSError when the picture cannot be written.
    """
    path = Path(path)
    pixmap = widget.grab()
    if pixmap.isNull():
        raise OSError(f"{path}: the view could not be captured")
    from medview.atomic import atomic_file

    # 0600 as before: callers that export for others widen it (medview.fileperms)
    with atomic_file(path, overwrite=True, mode=0o600, suffix=".png", parents=False) as tmp:
        if not pixmap.save(str(tmp), "PNG"):
            raise OSError(f"{path}: the PNG could not be written")
    return path
