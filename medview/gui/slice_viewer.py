"""The slice view: one plane of a :class:`~medview.gui.state.ViewerState`'s volume.

A pyqtgraph ImageItem in a ViewBox whose coordinates are millimetres, so the picture has the
aspect ratio of the voxel spacing; row 0 at the top as DICOM displays it. The widget holds
no viewing state of its own: it draws the state and turns mouse and keys into calls on it.

Mouse: wheel = next/previous slice; left drag = window/level; right drag = zoom; middle
drag = pan. Keys: Up/Down, PgUp/PgDn = previous/next slice (Shift: 10 slices), Home/End =
first/last slice. Presets (1–8), reset (R) and invert (I) are actions of the main window.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeyEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QLabel, QWidget

from medview.gui.overlays import CORNERS, EDGES, corner_texts, edge_texts
from medview.gui.state import Sample, ViewerState, WindowDrag

__all__ = ["OverlayText", "SliceViewer"]

#: One wheel notch in Qt's angle units (1/8 degree); each notch is one slice.
WHEEL_NOTCH = 120
#: Slices per key press with Shift held.
SHIFT_STEP = 10

#: The grey lookup table of an inverted display: level 0 white, 255 black.
INVERTED_LUT = np.arange(255, -1, -1, dtype=np.uint8)

_HINT = "No series open.\nDouble-click a series in the browser, or File ▸ Import Folder… (Ctrl+O)."


class OverlayText(QWidget):
    """Light text with a dark outline, readable over black background and bright bone alike
    (a label's plain text vanishes over white anatomy)."""

    TEXT_COLOUR = QColor(235, 235, 235)
    OUTLINE = QColor(0, 0, 0, 230)

    def __init__(self, parent: QWidget, *, right: bool = False):
        super().__init__(parent)
        self._lines: list[str] = []
        self._right = right
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)

    def text(self) -> str:
        return "\n".join(self._lines)

    def setText(self, text: str) -> None:
        lines = text.split("\n") if text else []
        if lines != self._lines:
            self._lines = lines
            self.updateGeometry()
            self.update()

    def sizeHint(self) -> QSize:
        metrics = QFontMetrics(self.font())
        width = max((metrics.horizontalAdvance(line) for line in self._lines), default=0)
        return QSize(width + 4, metrics.lineSpacing() * len(self._lines) + 4)

    def paintEvent(self, event) -> None:
        if not self._lines:
            return
        metrics = QFontMetrics(self.font())
        path = QPainterPath()
        for i, line in enumerate(self._lines):
            x = self.width() - 2 - metrics.horizontalAdvance(line) if self._right else 2
            path.addText(x, 2 + metrics.ascent() + i * metrics.lineSpacing(), self.font(), line)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.strokePath(path, QPen(self.OUTLINE, 3.0, Qt.PenStyle.SolidLine,
                                      Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        painter.fillPath(path, self.TEXT_COLOUR)
        painter.end()


class _SliceViewBox(pg.ViewBox):
    """A ViewBox whose wheel pages through slices and whose left drag sets the window."""

    def __init__(self, state: ViewerState):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._state = state
        self._wheel_rest = 0
        self._drag: WindowDrag | None = None

    def wheelEvent(self, ev, axis=None):
        # Touchpads send small deltas: add them up and step once per notch.
        self._wheel_rest += int(ev.delta())
        notches = int(self._wheel_rest / WHEEL_NOTCH)
        self._wheel_rest -= notches * WHEEL_NOTCH
        if notches:
            # wheel towards the user (negative delta) = next slice, as in OHIF and Weasis
            self._state.step_slice(-notches)
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)  # right: zoom, middle: pan
            return
        ev.accept()
        if self._state.volume is None:
            return
        if ev.isStart() or self._drag is None:
            self._drag = self._state.start_window_drag()
        moved = ev.screenPos() - ev.buttonDownScreenPos(Qt.MouseButton.LeftButton)
        self._drag.move(moved.x(), moved.y())
        if ev.isFinish():
            self._drag = None


class SliceViewer(pg.GraphicsView):
    """Shows the current slice of ``state`` with corner overlays.

    Signals
    -------
    cursor_sample(object)
        The :class:`~medview.gui.state.Sample` under the mouse, or None when the mouse is
        off the image. Sent when the mouse moves and when the slice under it changes.
    """

    cursor_sample = Signal(object)

    def __init__(self, state: ViewerState, parent: QWidget | None = None):
        super().__init__(parent, background="k")
        self.state = state
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)

        self.view_box = _SliceViewBox(state)
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)

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

        #: the slice index whose pixels ``image_item`` shows (-1: none)
        self.displayed_slice = -1
        self._cursor_xy: tuple[int, int] | None = None
        self._image_size_mm = (1.0, 1.0)

        self.view_box.sigRangeChanged.connect(self._on_range_changed)
        self.view_box.sigResized.connect(self._on_range_changed)
        state.volume_changed.connect(self._on_volume_changed)
        state.slice_changed.connect(self._on_slice_changed)
        state.window_changed.connect(self._on_window_changed)
        state.zoom_changed.connect(self._on_zoom_changed)
        state.view_reset.connect(self._on_view_reset)
        state.invert_changed.connect(self._on_invert_changed)
        state.data_changed.connect(self._on_data_changed)
        self._complete_slice = -1
        state.volume_changed.connect(self._on_volume_changed_loading)
        self._on_volume_changed(state.volume)

    # -- state → view ------------------------------------------------------------------
    def _on_volume_changed(self, volume) -> None:
        self._cursor_xy = None
        self.hint.setVisible(volume is None)
        if volume is None:
            self.image_item.clear()
            self.displayed_slice = -1
            self._update_overlays()
            return
        _, ny, nx = volume.shape
        sx, sy = volume.spacing[0], volume.spacing[1]
        self._image_size_mm = (nx * sx, ny * sy)
        self._show_slice()
        # millimetre coordinates: the aspect lock then gives the true shape of the anatomy
        self.image_item.setRect(QRectF(0.0, 0.0, nx * sx, ny * sy))
        self._on_view_reset()
        self._update_overlays()

    def _show_slice(self) -> None:
        image = self.state.slice_image()
        if image is None:
            return
        rgb = self.state.volume.is_rgb
        levels = (0, 255) if rgb else self.state.window_levels
        lut = INVERTED_LUT if self.state.inverted and not rgb else None
        self.image_item.setImage(image, autoLevels=False, levels=levels, lut=lut)
        self.displayed_slice = self.state.slice_index

    def _on_data_changed(self, n_loaded: int) -> None:
        # Slices of a volume being loaded arrived (at most ~20 times a second). Redraw the
        # slice shown only when it is one of them: the GUI thread shares the GIL with the
        # reading threads, and every redraw it can skip keeps the event loop answering.
        if self.state.volume is None:
            return
        k = self.displayed_slice
        if k >= 0 and k != self._complete_slice and self.state.is_slice_loaded(k):
            self._show_slice()
            self._complete_slice = k
        self._update_overlays()

    def _on_volume_changed_loading(self, volume) -> None:
        #: the slice index last drawn with all its values (-1: none of this volume yet)
        self._complete_slice = -1

    def _on_slice_changed(self, index: int) -> None:
        self._show_slice()
        self._update_overlays()
        if self._cursor_xy is not None:
            self.cursor_sample.emit(self.state.sample(*self._cursor_xy))

    def _on_window_changed(self, center: float, width: float) -> None:
        if self.state.volume is not None and not self.state.volume.is_rgb:
            self.image_item.setLevels(self.state.window_levels)
        self._update_overlays()

    def _on_invert_changed(self, inverted: bool) -> None:
        if self.state.volume is not None and not self.state.volume.is_rgb:
            self.image_item.setLookupTable(INVERTED_LUT if inverted else None)

    def _on_zoom_changed(self, zoom: float) -> None:
        current = self.current_zoom()
        if current is not None and abs(current - zoom) > 1e-6 * zoom:
            factor = current / zoom
            self.view_box.scaleBy(s=(factor, factor))
        self._update_overlays()

    def _on_view_reset(self) -> None:
        # auto range re-fits on every resize until the user zooms or pans
        self.view_box.enableAutoRange()
        self.view_box.autoRange(padding=0.0)

    def _update_overlays(self) -> None:
        for corner, text in corner_texts(self.state).items():
            label = self.overlays[corner]
            label.setText(text)
            label.adjustSize()
        for edge, text in edge_texts(self.state).items():
            self.edge_labels[edge].setText(text)
        self._place_overlays()

    # -- view → state ------------------------------------------------------------------
    def current_zoom(self) -> float | None:
        """Screen pixels per mm now, relative to the whole slice just fitting the view."""
        if self.state.volume is None:
            return None
        rect = self.view_box.boundingRect()
        width_mm, height_mm = self._image_size_mm
        if rect.width() <= 1 or rect.height() <= 1:
            return None
        fit = min(rect.width() / width_mm, rect.height() / height_mm)
        mm_per_px = self.view_box.viewPixelSize()[0]
        if not mm_per_px or not math.isfinite(mm_per_px):
            return None
        return (1.0 / mm_per_px) / fit

    def _on_range_changed(self, *args) -> None:
        zoom = self.current_zoom()
        if zoom is not None and abs(zoom - self.state.zoom) > 1e-3 * zoom:
            self.state.set_zoom(zoom)

    def mouseMoveEvent(self, event) -> None:
        super().mouseMoveEvent(event)
        # Not pyqtgraph's sigMouseMoved: the scene drops moves closer than its rate limit,
        # and the readout must be the pixel where the mouse came to rest.
        self._update_cursor(self.mapToScene(event.position().toPoint()))

    def _update_cursor(self, scene_pos: QPointF) -> None:
        volume = self.state.volume
        if volume is None:
            return
        point = self.view_box.mapSceneToView(scene_pos)
        x = math.floor(point.x() / volume.spacing[0])
        y = math.floor(point.y() / volume.spacing[1])
        sample: Sample | None = self.state.sample(x, y)
        self._cursor_xy = (x, y) if sample is not None else None
        self.cursor_sample.emit(sample)

    def leaveEvent(self, event) -> None:
        self._cursor_xy = None
        self.cursor_sample.emit(None)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        step = SHIFT_STEP if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        if key in (Qt.Key.Key_Up, Qt.Key.Key_PageUp):
            self.state.step_slice(-step)
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.state.step_slice(step)
        elif key == Qt.Key.Key_Home:
            self.state.first_slice()
        elif key == Qt.Key.Key_End:
            self.state.last_slice()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # -- geometry ----------------------------------------------------------------------
    def viewport_pos_of_pixel(self, x: float, y: float) -> QPoint:
        """Where the centre of pixel (column ``x``, row ``y``) is, in viewport coordinates."""
        volume = self.state.volume
        if volume is None:
            raise RuntimeError("no volume is shown")
        view = QPointF((x + 0.5) * volume.spacing[0], (y + 0.5) * volume.spacing[1])
        scene = self.view_box.mapViewToScene(view)
        return self.mapFromScene(scene)

    def displayed_image(self) -> np.ndarray | None:
        """The array the image item shows now (the current slice, not a copy)."""
        return self.image_item.image

    def save_view_png(self, path: str | os.PathLike) -> Path:
        """Write the view as it is on screen (image and overlays) to ``path`` as a PNG.

        Written to a temporary file beside ``path`` and renamed over it, so ``path`` is
        either the old file or the complete new picture, never half written. Returns the
        path; raises OSError when the picture cannot be written.
        """
        path = Path(path)
        pixmap = self.grab()
        if pixmap.isNull():
            raise OSError(f"{path}: the view could not be captured")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png",
                                   dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        try:
            if not pixmap.save(tmp, "PNG"):
                raise OSError(f"{path}: the PNG could not be written")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        if not hasattr(self, "hint"):
            return  # pyqtgraph resizes during its own __init__, before the labels exist
        margin = 8
        w, h = self.width(), self.height()
        for corner, label in self.overlays.items():
            size = label.sizeHint()
            x = margin if corner.endswith("left") else w - margin - size.width()
            y = margin if corner.startswith("top") else h - margin - size.height()
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
