"""The "Layers" dock and the feature-table dock.

The layer list shows the series and every chain result (:class:`~medview.app.layers.LayerList`).
Clicking the series or a derived volume shows it in the views (same crosshair); the check
box of a label map shows it as the coloured overlay (one at a time; its legend of segment
names and colours and the label opacity below), of an RGB fusion blends it over the views
(with its own opacity slider); clicking a table shows it in the table dock, where it can be
copied (tab-separated, for spreadsheets) or saved as CSV (atomically).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSlider,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from medview.app.layers import Layer, LayerList
from medview.app.messages import TaskError
from medview.app.state import ViewerState
from medview.atomic import write_text_atomic
from medview.core.table import Table

__all__ = ["LayersPanel", "TablePanel"]

UID_ROLE = Qt.ItemDataRole.UserRole
_KIND_TEXT = {"series": "series", "volume": "volume", "labels": "label map", "rgb": "fusion",
              "table": "table"}


class LayersPanel(QWidget):
    """The layer list with the legend and opacities.

    Signals
    -------
    table_requested(object)
        A table layer was clicked (the :class:`~medview.app.layers.Layer`).
    error(object)
        A :class:`~medview.app.messages.TaskError` (e.g. a layer not on the series' grid).
    """

    table_requested = Signal(object)
    error = Signal(object)

    def __init__(self, layers: LayerList, state: ViewerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.layers = layers
        self.state = state
        self._syncing = False
        self._selected_uid: int | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 4)
        self.list = QListWidget(self)
        self.list.setObjectName("layer_list")
        self.list.itemClicked.connect(self._on_item_clicked)
        self.list.itemChanged.connect(self._on_item_changed)
        v.addWidget(self.list, 1)
        self.remove_button = QPushButton("Remove layer", self)
        self.remove_button.clicked.connect(self.remove_current)
        v.addWidget(self.remove_button)
        v.addWidget(QLabel("Legend", self))
        self.legend = QListWidget(self)
        self.legend.setObjectName("legend")
        self.legend.setMaximumHeight(120)
        v.addWidget(self.legend)
        self.label_opacity = self._slider("Label opacity", v, state.label_opacity,
                                          state.set_label_opacity)
        self.rgb_opacity = self._slider("Fusion opacity", v, state.overlay_opacity,
                                        state.set_overlay_opacity)
        layers.layers_changed.connect(self._sync)
        layers.events.all.connect(self._sync)
        state.layers.events.labels.connect(self._sync_legend)
        state.labels_changed.connect(self._sync_legend)
        self._sync()

    def _slider(self, text: str, v: QVBoxLayout, value: float, setter) -> QSlider:
        h = QHBoxLayout()
        h.addWidget(QLabel(text, self))
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(0, 100)
        slider.setValue(int(round(value * 100)))
        slider.valueChanged.connect(lambda x: setter(x / 100.0))
        h.addWidget(slider, 1)
        v.addLayout(h)
        return slider

    def layer_of(self, item: QListWidgetItem) -> Layer | None:
        uid = item.data(UID_ROLE)
        return next((x for x in self.layers.layers if x.uid == uid), None)

    def item_of(self, layer: Layer) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(UID_ROLE) == layer.uid:
                return self.list.item(i)
        return None

    def select(self, layer: Layer | None) -> None:
        """Make ``layer`` the current row (kept when the list is rebuilt)."""
        self._selected_uid = layer.uid if layer is not None else None
        item = self.item_of(layer) if layer is not None else None
        if item is not None:
            self.list.setCurrentItem(item)

    def _sync(self) -> None:
        self._syncing = True
        try:
            current = self.list.currentItem()
            if current is not None:
                self._selected_uid = current.data(UID_ROLE)
            self.list.clear()
            for layer in self.layers.layers:
                text = f"{layer.name}  ·  {_KIND_TEXT[layer.kind]}"
                if not layer.on_grid:
                    text += " (other grid)"
                item = QListWidgetItem(text)
                item.setData(UID_ROLE, layer.uid)
                shown = self.layers.is_shown(layer)
                if layer.kind in ("labels", "rgb"):
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setCheckState(Qt.CheckState.Checked if shown
                                       else Qt.CheckState.Unchecked)
                elif shown:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.list.addItem(item)
                if layer.uid == self._selected_uid:
                    self.list.setCurrentItem(item)
        finally:
            self._syncing = False
        self._sync_legend()

    def _sync_legend(self) -> None:
        self.legend.clear()
        labels = self.state.labels
        for seg in labels.segments if labels is not None else ():
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(*seg.color))
            self.legend.addItem(QListWidgetItem(pixmap, f"{seg.number}  {seg.name}"))

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        layer = self.layer_of(item)
        if layer is None:
            return
        if layer.kind == "table":
            self.table_requested.emit(layer)
        elif layer.kind in ("series", "volume"):
            self._try(lambda: self.layers.show(layer))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._syncing:
            return
        layer = self.layer_of(item)
        if layer is None or layer.kind not in ("labels", "rgb"):
            return
        if item.checkState() == Qt.CheckState.Checked:
            self._try(lambda: self.layers.show(layer))
        else:
            self.layers.hide(layer)

    def remove_current(self) -> None:
        item = self.list.currentItem()
        layer = self.layer_of(item) if item is not None else None
        if layer is not None and layer.kind != "series":
            self.layers.remove(layer)

    def _try(self, action) -> None:
        try:
            action()
        except ValueError as exc:  # error boundary: a layer that cannot be shown
            self.error.emit(TaskError("Showing the layer", exc, ""))
            self._sync()


class TablePanel(QWidget):
    """A feature table (QTableView) with Copy and Save CSV."""

    error = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.table: Table | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel("", self)
        self.view = QTableView(self)
        self.view.setObjectName("feature_table")
        self.model = QStandardItemModel(self)
        self.view.setModel(self.model)
        h = QHBoxLayout()
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy the table, tab-separated (pastes into spreadsheets)")
        self.copy_button.clicked.connect(self.copy)
        self.save_button = QPushButton("Save CSV…", self)
        self.save_button.clicked.connect(self.choose_csv)
        h.addWidget(self.title, 1)
        h.addWidget(self.copy_button)
        h.addWidget(self.save_button)
        v.addLayout(h)
        v.addWidget(self.view, 1)

    def set_table(self, table: Table | None, name: str = "") -> None:
        self.table = table
        self.model.clear()
        self.title.setText(name or (table.title if table is not None else ""))
        if table is None:
            return
        columns = table.columns
        headers = [f"{c} [{table.units[c]}]" if table.units.get(c) else c for c in columns]
        self.model.setHorizontalHeaderLabels(headers)
        for row in table.rows:
            items = []
            for c in columns:
                value = row.get(c, "")
                item = QStandardItem(f"{value:.6g}" if isinstance(value, float) else str(value))
                item.setEditable(False)
                items.append(item)
            self.model.appendRow(items)
        self.view.resizeColumnsToContents()

    def tsv(self) -> str:
        if self.table is None:
            return ""
        columns = self.table.columns
        lines = ["\t".join(columns)]
        lines += ["\t".join(str(row.get(c, "")) for c in columns) for row in self.table.rows]
        return "\n".join(lines) + "\n"

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.tsv())

    def choose_csv(self) -> None:
        if self.table is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the table as CSV",
                                              f"{self.title.text() or 'table'}.csv",
                                              "CSV (*.csv)")
        if path:
            self.save_csv(path)

    def save_csv(self, path: str | os.PathLike) -> Path | None:
        """Write the table as CSV (atomically); None (with an error signal) on failure."""
        if self.table is None:
            return None
        try:
            return write_text_atomic(path, self.table.to_csv())
        except OSError as exc:
            self.error.emit(TaskError("Saving the table", exc, ""))
            return None


def make_dock(title: str, name: str, widget: QWidget, parent) -> QDockWidget:
    """A dock showing ``widget`` in a scroll area (so that a tall panel never makes the
    window taller than the screen)."""
    dock = QDockWidget(title, parent)
    dock.setObjectName(name)
    scroll = QScrollArea(dock)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setWidget(widget)
    dock.setWidget(scroll)
    return dock
