"""What a view marks on the image itself: made-up slices and the series' warnings.

- Slices medview made up at load (``volume.metadata["made_up_slices"]``: interpolated onto
  a uniform grid, or stand-ins for undecodable files, see :mod:`medview.core.made_up`) are
  marked on every view that shows them. The acquired plane showing such a slice gets an
  orange dashed frame and a mark ("INTERPOLATED" / "MISSING — stand-in") with the reason;
  a reformat gets an orange tinted band over the rows (or columns) that come from made-up
  slices.
- A series with warnings (gantry tilt, uneven spacing, missing slices, no geometry,
  stand-ins) shows a "⚠ N" badge in the view's top left corner for as long as it is open;
  a click opens the list (the status bar's message goes after a few seconds).
"""

from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainterPath, QPen
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.core.made_up import made_up_note, made_up_slices

__all__ = ["MADE_UP_COLOUR", "MadeUpMarks", "WarningBadge", "WarningsDialog", "warnings_html"]

#: Colour of everything that marks made-up data and warnings.
MADE_UP_COLOUR = QColor(255, 150, 30)
#: Opacity of the band over made-up rows of a reformat (the anatomy stays readable).
BAND_ALPHA = 50


def _runs(indices) -> list[tuple[int, int]]:
    """Consecutive runs ``[(first, last), ...]`` of sorted integers."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def mark_text(reason: str) -> str:
    """The mark on an acquired-plane slice medview made up."""
    what = "INTERPOLATED" if reason.lower().startswith("interpolated") \
        else "MISSING — stand-in"
    return f"{what} slice\n{reason}"


class MadeUpMarks:
    """The made-up-slice marks of one :class:`~medview.gui.slice_viewer.SliceViewer`."""

    def __init__(self, viewer):
        self._viewer = viewer
        state = viewer.state
        colour = QColor(MADE_UP_COLOUR)
        self.band = QGraphicsPathItem()
        tint = QColor(colour)
        tint.setAlpha(BAND_ALPHA)
        self.band.setBrush(QBrush(tint))
        self.band.setPen(QPen(Qt.PenStyle.NoPen))
        # under the fusion (4) and label (5) layers: the tint marks the image, and a segment
        # keeps the colour it has everywhere else (the layers are translucent, so it shows)
        self.band.setZValue(3)
        self.frame = QGraphicsRectItem()
        pen = QPen(colour, 3, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.frame.setPen(pen)
        self.frame.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.frame.setZValue(8)
        self.label = pg.TextItem("", color=colour, anchor=(0, 0), fill=pg.mkBrush(0, 0, 0, 170))
        self.label.setZValue(22)
        for item in (self.band, self.frame, self.label):
            item.setVisible(False)
            viewer.view_box.addItem(item, ignoreBounds=True)
        self._entries: dict[int, str] = {}
        #: the made-up slice's reason when the acquired plane shows one, else None
        self.reason: str | None = None
        self._shown = True
        state.volume_changed.connect(self._on_volume_changed)
        state.camera.events.cursor.connect(self._on_position_changed)
        # a volume put in place of the open one (replace_volume) or completed while loading
        # may carry other made-up slices (e.g. stand-ins for files that failed to decode)
        state.data_changed.connect(self._on_data_changed)
        self._on_volume_changed(state.volume)

    # -- what is marked --------------------------------------------------------------
    @property
    def entries(self) -> dict[int, str]:
        """Made-up slices of the open volume: z → reason."""
        return self._entries

    def current_mark(self) -> str:
        """The mark shown on the image now ('' when this view shows no made-up slice)."""
        return mark_text(self.reason) if self.reason is not None else ""

    def fit_label(self, max_width: int) -> None:
        """Set the mark's text, its reason elided to ``max_width`` pixels."""
        if self.reason is None:
            return
        first, second = mark_text(self.reason).split("\n", 1)
        metrics = QFontMetrics(self.label.textItem.font())
        room = max(max_width - 10, 20)  # the label's own padding
        text = "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, room)
                          for line in (first, second))
        if text != self.label.textItem.toPlainText():
            self.label.setText(text)

    def band_rows(self) -> list[tuple[int, int]]:
        """Displayed index runs ``(first, last)`` the band covers, on the reformat's axis
        that is voxel z (rows when z runs down, columns when across); [] on the acquired
        plane."""
        g = self._viewer.geometry_
        if g is None or g.native or not self._entries:
            return []
        n = g.shape[2]
        flip = g.flip_v if g.vertical == 2 else g.flip_h
        shown = sorted((n - 1 - z) if flip else z for z in self._entries)
        return _runs(shown)

    # -- drawing ---------------------------------------------------------------------
    def _on_volume_changed(self, volume) -> None:
        self._entries = dict(made_up_slices(volume.metadata)) if volume is not None else {}
        g = self._viewer.geometry_
        path = QPainterPath()
        if g is not None and not g.native:
            for first, last in self.band_rows():
                if g.vertical == 2:
                    path.addRect(QRectF(0.0, first, g.width, last - first + 1))
                else:
                    path.addRect(QRectF(first, 0.0, last - first + 1, g.height))
        self.band.setPath(path)
        if g is not None:
            self.band.setTransform(self._viewer.item_transform())
            self.frame.setRect(QRectF(0.0, 0.0, g.width, g.height))
            self.frame.setTransform(self._viewer.item_transform())
        self.band.setVisible(not path.isEmpty())
        self._on_position_changed()

    def _on_data_changed(self) -> None:
        volume = self._viewer.state.volume
        if volume is not None and dict(made_up_slices(volume.metadata)) != self._entries:
            self._on_volume_changed(volume)

    def _on_position_changed(self, *args) -> None:
        g = self._viewer.geometry_
        reason = None
        if g is not None and g.native:
            reason = self._entries.get(self._viewer.state.plane_slice(self._viewer.plane))
        self.reason = reason
        self.frame.setVisible(reason is not None and self._shown)
        self.label.setVisible(reason is not None and self._shown)
        if reason is not None:
            self.label.setText(mark_text(reason))
            self._viewer.place_floating_labels()

    def set_visible(self, visible: bool) -> None:
        """Show or hide the marks with the other annotations."""
        self._shown = bool(visible)
        if visible:
            self._on_volume_changed(self._viewer.state.volume)
        else:
            for item in (self.band, self.frame, self.label):
                item.setVisible(False)


def warnings_html(volume) -> str:
    """The series' warnings and made-up slices as a short HTML list."""
    items = [html.escape(str(w)) for w in volume.warnings]
    made_up = made_up_slices(volume.metadata)
    if made_up:
        zs = ", ".join(str(z + 1) for z, _ in made_up[:20]) + (" …" if len(made_up) > 20 else "")
        items.append(html.escape(f"{made_up_note(volume.metadata, volume.shape[0])} "
                                 f"(slices {zs}); marked in orange on the image"))
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


class WarningsDialog(QDialog):
    """The list behind a view's warning badge."""

    def __init__(self, volume, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("warnings_dialog")
        what = str(volume.metadata.get("SeriesDescription") or "this series")
        self.setWindowTitle(f"Warnings — {what}")
        layout = QVBoxLayout(self)
        self.text = QLabel(warnings_html(volume), self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setMinimumWidth(420)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class WarningBadge(QToolButton):
    """"⚠ N" in a view's corner while its series has warnings; a click lists them.

    Signals
    -------
    opened(object)
        The :class:`WarningsDialog` that a click opened.
    """

    opened = Signal(object)

    def __init__(self, viewer):
        super().__init__(viewer)
        self.setObjectName("warning_badge")
        self._viewer = viewer
        self.dialog: WarningsDialog | None = None
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setStyleSheet(
            "QToolButton { color: #1a1a1a; background: rgba(255, 150, 30, 230); border: none;"
            " border-radius: 3px; padding: 1px 5px; font-weight: bold; }")
        self.clicked.connect(self.open_details)
        viewer.state.volume_changed.connect(self._on_volume_changed)
        viewer.state.data_changed.connect(self._on_data_changed)
        self._on_volume_changed(viewer.state.volume)

    def count(self) -> int:
        vol = self._viewer.state.volume
        if vol is None:
            return 0
        return len(vol.warnings) + (1 if made_up_slices(vol.metadata) and not vol.warnings
                                    else 0)

    def _on_data_changed(self) -> None:
        if self.count() != self._shown_count:
            self._on_volume_changed(self._viewer.state.volume)
            self._viewer._place_overlays()

    def _on_volume_changed(self, volume) -> None:
        n = self._shown_count = self.count()
        self.setText(f"⚠ {n}")
        self.setToolTip("" if volume is None else
                        "<b>Click for details.</b>" + warnings_html(volume))
        self.setVisible(n > 0)
        self.adjustSize()

    def open_details(self) -> WarningsDialog | None:
        vol = self._viewer.state.volume
        if vol is None:
            return None
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = WarningsDialog(vol, self.window())
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.dialog.show()
        self.opened.emit(self.dialog)
        return self.dialog

