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

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["FORMATS", "ExportDialog", "Exportable", "export_item"]

#: What each kind of item can become: (format id, label, suffix or "" for a folder).
FORMATS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "labels": (("seg", "DICOM SEG", ".dcm"), ("nifti", "NIfTI label map", ".nii.gz"),
               ("nrrd", "NRRD label map", ".nrrd")),
    "volume": (("series", "DICOM series (new derived series)", ""),
               ("nifti", "NIfTI", ".nii.gz"), ("nrrd", "NRRD", ".nrrd"), ("mha", "MHA", ".mha")),
    "rgb": (("capture", "DICOM Secondary Capture (true colour, multi-frame)", ".dcm"),),
    "table": (("csv", "CSV", ".csv"), ("json", "JSON", ".json")),
    "view": (("png", "PNG with overlays", ".png"), ("png-plain", "PNG without overlays",
                                                    ".png")),
}


@dataclass
class Exportable:
    """Something the window can export now.

    ``value`` is the object, or a callable making it (e.g. the fused RGB volume is blended
    only when exported); ``source`` is the volume loaded from the DICOM series it derives
    from (for DICOM exports).
    """

    name: str
    kind: str
    value: Any
    source: Volume | None = None

    def resolve(self) -> Any:
        return self.value() if callable(self.value) else self.value

    @property
    def formats(self) -> tuple[tuple[str, str, str], ...]:
        return FORMATS[self.kind]


def export_item(item: Exportable, fmt: str, path: str | os.PathLike, *,
                overwrite: bool = False, save_view: Callable | None = None) -> list[Path]:
    """Write ``item`` in format ``fmt`` to ``path``; returns the files written.

    Raises
    ------
    FileExistsError
        If the target exists and ``overwrite`` is False (nothing is written).
    ValueError
        If the item cannot be written in that format (e.g. DICOM without a source series).
    """
    path = Path(path)
    if fmt not in {f[0] for f in item.formats}:
        raise ValueError(f"{item.name} cannot be exported as {fmt!r}")
    if item.kind == "view":
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
        return [save_view(path, overlays=fmt == "png")]
    value = item.resolve()
    if item.kind == "table":
        if not isinstance(value, Table):
            raise ValueError(f"{item.name}: expected a table")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
        from medview.atomic import write_text_atomic

        write_text_atomic(path, value.to_csv() if fmt == "csv" else value.to_json())
        return [path]
    if not isinstance(value, Volume):
        raise ValueError(f"{item.name}: nothing to export")
    if fmt in ("seg", "series", "capture"):
        from medview.dicom.export import export_dicom

        return list(export_dicom(value, path, source=item.source, kind=fmt,
                                 overwrite=overwrite))
    from medview.formats.volume_io import volume_suffix, write_volume

    side = None
    if isinstance(value, LabelMap):
        side = path.with_name(path.name[: -len(volume_suffix(path))] + ".segments.json")
        if side.exists() and not overwrite:
            raise FileExistsError(f"{side} exists; choose another name or allow overwriting")
    written = [write_volume(value, path, overwrite=overwrite)]
    if side is not None:
        from medview.atomic import write_text_atomic
        from medview.formats.results import _segments_json

        write_text_atomic(side, _segments_json(value))
        written.append(side)
    return written


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
