"""The texts over a slice view: outlined text widgets, and the view's corner texts,
orientation letters and the labels floating beside measurements.

:class:`OverlayText` is the widget; :class:`ViewTexts` is mixed into
:class:`~medview.gui.slice_viewer.SliceViewer` (it uses the view's ``state``, ``overlays``,
``edge_labels``, ``warning_badge``, ``made_up`` and ``_measure_items``) and lays them out
(see :mod:`medview.gui.text_layout`).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import QWidget

from medview.gui.overlays import corner_texts, edge_texts
from medview.gui.text_layout import (
    MARGIN,
    corner_rooms,
    label_rect,
    place_floating_labels,
    text_rects,
)

__all__ = ["OverlayText", "ViewTexts"]

#: Where the dark outline of overlay text is drawn, around each glyph (screen pixels).
_OUTLINE_OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))


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


class ViewTexts:
    """The slice view's texts: corner texts and orientation letters set from the state and
    placed in the room they leave each other; measurement labels placed where they meet
    none of them. A mixin of :class:`~medview.gui.slice_viewer.SliceViewer`."""

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
