"""The panel of files the catalog could not use, with the reason for each."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.dicom.display import printable

__all__ = ["FailedFilesPanel"]


class FailedFilesPanel(QWidget):
    """A list of ``(path, reason)``: the catalog's unreadable files.

    Signals
    -------
    count_changed(int)
        The number of files listed changed (the dock's title shows it).
    """

    count_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("failed_files")
        self.summary = QLabel("No file failed.", self)
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("failed_files_list")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["File", "Reason", "Folder"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSortingEnabled(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 180)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 320)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree)
        self._errors: list[tuple[str, str]] = []
        self._warnings: list[tuple[str, str]] = []

    def set_warnings(self, warnings: list[tuple[str, str]]) -> None:
        """Also list ``warnings`` (path, warning): the last import's files that were read past
        a problem (an invalid value, an executable preamble …) and are in the catalog all the
        same; they are marked "imported:" and do not count as failed."""
        self._warnings = [(str(p), str(w)) for p, w in warnings]
        self.set_errors(self._errors)

    def warnings(self) -> list[tuple[str, str]]:
        return list(self._warnings)

    def set_errors(self, errors: list[tuple[str, str]]) -> None:
        """Show ``errors`` (path, reason), replacing the list."""
        self._errors = [(str(p), str(r)) for p, r in errors]
        self.tree.setSortingEnabled(False)
        self.tree.clear()
        rows = [(p, r, False) for p, r in self._errors]
        rows += [(p, w, True) for p, w in self._warnings]
        for path, reason, imported in rows:
            # a name that is not UTF-8 is shown with U+FFFD (Qt would drop its bytes)
            shown, why = printable(path), printable(reason)
            if imported:
                why = f"imported, with a warning: {why}"
            item = QTreeWidgetItem(self.tree, [os.path.basename(shown), why,
                                               os.path.dirname(shown)])
            item.setData(0, Qt.ItemDataRole.UserRole, path)
            item.setToolTip(0, shown)
            item.setToolTip(1, why)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(2, Qt.SortOrder.AscendingOrder)
        n = len(self._errors)
        text = ("No file failed." if n == 0 else
                f"{n} file(s) could not be read; they are not in the catalog.")
        if self._warnings:
            text += (f" {len(self._warnings)} file(s) of the last import were read past a "
                     "problem; they are in the catalog (listed as \"imported, with a warning\").")
        self.summary.setText(text)
        self.count_changed.emit(n)

    def errors(self) -> list[tuple[str, str]]:
        """What is listed: ``(path, reason)`` in the catalog's order."""
        return list(self._errors)

    def count(self) -> int:
        return len(self._errors)
