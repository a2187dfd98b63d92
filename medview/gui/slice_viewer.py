"""The slice view: one plane (axial, coronal or sagittal) of a ViewerState's volume.

A pyqtgraph ImageItem in a ViewBox whose coordinates are millimetres, so the picture has the
aspect ratio of the voxel spacing (:mod:`medview.app.planes` says which voxel axes run
across and down). Over it: the label-map overlay, the crosshair and the measurements. The
widget holds no viewing state of its own: it draws the state and turns mouse and keys into
calls on it.

This module keeps the widget's core (construction, geometry, slice display, crosshair,
signals); its parts are mixins in their own modules: the layers and measurements
(:mod:`~medview.gui.view_layers`), the texts over the view
(:mod:`~medview.gui.overlay_text`), mouse and keys (:mod:`~medview.gui.view_mouse`, which
says what they do) and the redraws while a volume loads (:mod:`~medview.gui.view_loading`).
"""

from __future__ import annotations

import math
import os
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QLabel,
    QWidget,
)

from medview.app.planes import PlaneGeometry
from medview.app.state import ViewerState
from medview.gui.annotation_tools import AnnotationTools
from medview.gui.badges import MadeUpMarks, WarningBadge
from medview.gui.colormaps import colormap_lut
from medview.gui.display_options import SmoothImageItem
from medview.gui.mpr_interaction import ObliqueLayer
from medview.gui.overlay_text import OverlayText, ViewTexts
from medview.gui.overlays import CORNERS, EDGES
from medview.gui.reference_lines_item import ReferenceLinesItem
from medview.gui.view_layers import ViewLayers
from medview.gui.view_loading import ViewLoading
from medview.gui.view_mouse import SliceViewBox, ViewInput

__all__ = ["SliceViewer", "save_widget_png"]

#: The grey lookup table of an inverted display: level 0 white, 255 black.
INVERTED_LUT = np.arange(255, -1, -1, dtype=np.uint8)

CROSSHAIR_COLOUR = QColor(255, 200, 40, 170)

_HINT = "No series open.\nDouble-click a series in the browser, or File ▸ Import Folder… (Ctrl+O)."


class SliceViewer(ViewLayers, ViewTexts, ViewInput, ViewLoading, pg.GraphicsView):
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

        self.view_box = SliceViewBox(self)
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

    def _on_position_changed(self, position) -> None:
        if self._geometry is None:
            return
        if self.state.plane_slice(self.plane) != self.displayed_slice:
            self._show_slice()
            self._update_overlays()
            if self._cursor_px is not None:
                self.cursor_sample.emit(self._sample_at(*self._cursor_px))
        self._update_crosshair()

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
