"""File ▸ Export (Ctrl+E): what the reader takes away, in formats other tools accept.

- a label map → DICOM SEG referencing the source series, or NIfTI/NRRD on its geometry;
- the series or a derived volume → a new DICOM series (derived CT/MR) or NIfTI/NRRD/MHA;
- the fused image (second series in colour over the first) → DICOM multi-frame true colour
  Secondary Capture in the base study;
- measurements (distances, ROI statistics) → CSV or JSON;
- the view → PNG, with or without the overlays.

Every file is written atomically (temporary name, then rename) and never over an existing
one unless asked; the work runs in the background and a failure is a message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.exporting import FORMATS, Exportable, export_item

__all__ = ["FORMATS", "ExportDialog", "Exportable", "export_item"]


class ExportDialog(QDialog):
    """Choose what, as what and where; the export itself runs through ``run``.

    Parameters
    ----------
    items : list of Exportable
    run : callable
        ``run(item, fmt, path, overwrite)``: starts the export (in the background).
    last_folder : str
        Where the file dialog opens.
    """

    exported = Signal(list)

    def __init__(self, items: list[Exportable], run: Callable, last_folder: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.items = items
        self._run = run
        self._folder = last_folder or str(Path.home())
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.what = QComboBox(self)
        self.what.setObjectName("export_what")
        for item in items:
            self.what.addItem(item.name)
        self.what.currentIndexChanged.connect(self._on_what_changed)
        form.addRow("Export", self.what)
        self.format = QComboBox(self)
        self.format.setObjectName("export_format")
        self.format.currentIndexChanged.connect(self._on_format_changed)
        form.addRow("As", self.format)
        row = QHBoxLayout()
        self.path = QLineEdit(self)
        self.path.setObjectName("export_path")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("To", row)
        self.overwrite = QCheckBox("Replace an existing file or folder", self)
        form.addRow("", self.overwrite)
        layout.addLayout(form)
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.export_button = buttons.addButton("Export",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._export)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._on_what_changed(0)

    def current(self) -> tuple[Exportable, str, str]:
        item = self.items[self.what.currentIndex()]
        fmt = self.format.currentData()
        return item, fmt, dict((f[0], f[2]) for f in item.formats)[fmt]

    def _on_what_changed(self, index: int) -> None:
        self.format.blockSignals(True)
        self.format.clear()
        if 0 <= index < len(self.items):
            item = self.items[index]
            for fmt, label, _suffix in item.formats:
                if fmt in ("seg", "series", "capture") and item.source is None:
                    continue  # DICOM needs the source series' files
                self.format.addItem(label, fmt)
        self.format.blockSignals(False)
        self._on_format_changed(0)

    def _on_format_changed(self, index: int) -> None:
        if self.format.count() == 0:
            self.export_button.setEnabled(False)
            return
        self.export_button.setEnabled(True)
        item, _fmt, suffix = self.current()
        base = "".join(c if c.isalnum() or c in "-_" else "_" for c in item.name.lower())
        self.path.setText(str(Path(self._folder) / (base + suffix)))
        self.note.setText("A folder of DICOM files." if suffix == "" else "")

    def _browse(self) -> None:
        _item, _fmt, suffix = self.current()
        if suffix == "":
            path = QFileDialog.getExistingDirectory(self, "Export into a new folder in",
                                                    self._folder)
            if path:
                self.path.setText(str(Path(path) / Path(self.path.text()).name))
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export", self.path.text())
        if path:
            self.path.setText(path)

    def _export(self) -> None:
        item, fmt, _ = self.current()
        text = self.path.text().strip()
        if not text:
            self.note.setText("Choose where to write it.")
            return
        self._run(item, fmt, text, self.overwrite.isChecked())
        self.accept()
