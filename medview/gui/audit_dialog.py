"""Help ▸ Audit Log…: every disclosure (offload, PACS send, share, backup) in a read-only table.

The one disclosure log is :mod:`medview.audit` (``audit.log`` in the user data folder); this
dialog only reads it, in a worker (a log of many thousand lines never blocks the window), and
shows the entries newest first: time, OS user, action, series, destination, de-identification
profile, bytes. The filter box keeps the rows that contain its text in any column. A line that
is not a whole entry (a crash mid-write) is skipped by :func:`medview.audit.read_audit`; the
rest stays readable.
"""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from medview.gui.tasks import TaskRunner

__all__ = ["COLUMNS", "AuditDialog", "format_size", "install_audit_action"]

COLUMNS = ("Time", "User", "Action", "Series", "Destination", "Profile", "Bytes")
#: the widest the series and destination columns start (the rest is in the tooltip)
MAX_COLUMN_PX = 280


def format_size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


class AuditDialog(QDialog):
    """The disclosure audit log, newest first, filterable, read-only.

    Parameters
    ----------
    path : Path, optional
        The log; default :func:`medview.audit.audit_path` (read when the dialog loads).
    """

    def __init__(self, parent: QWidget | None = None, *, path=None):
        super().__init__(parent)
        self.setWindowTitle("Audit log: what left this workstation")
        self.resize(1080, 520)
        self.path = path
        self.entries: list = []
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)  # any column
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView(self)
        self.table.setObjectName("audit_table")
        self.table.setModel(self.proxy)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)  # a UID or a URL on one line, elided in the middle
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("audit_filter")
        self.filter.setPlaceholderText("Filter: series, destination, action, user …")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter_changed)
        self.status = QLabel(self)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.refresh_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._runner = TaskRunner(self, max_threads=1)
        self.reload()

    # -- loading ------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the log again (in a worker); the table follows when it is read."""
        from medview.audit import audit_path, read_audit

        path = self.path or audit_path()
        self.status.setText(f"Reading {path} …")
        self.refresh_button.setEnabled(False)
        self._runner.start("Read the audit log", lambda progress: read_audit(path),
                           on_finished=lambda entries: self._show(entries, path),
                           on_failed=lambda error: self._failed(error, path))

    def _failed(self, error, path) -> None:
        self.refresh_button.setEnabled(True)
        self.status.setText(f"Could not read {path}: {error.message}")

    def _show(self, entries: list, path) -> None:
        self.refresh_button.setEnabled(True)
        self.entries = list(reversed(entries))  # newest first
        self.model.removeRows(0, self.model.rowCount())
        for e in self.entries:
            cells = (e.time, e.user, e.action, e.series_uid, e.destination,
                     e.profile or "(none)", format_size(e.bytes))
            row = [QStandardItem(str(c)) for c in cells]
            row[-1].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(e.detail.items()))
            for item in row:
                item.setEditable(False)
                item.setToolTip(item.text() + (f"\n{detail}" if detail else ""))
            self.model.appendRow(row)
        self.table.resizeColumnsToContents()
        for column in (3, 4):  # long UIDs and URLs: elided, whole in the tooltip
            self.table.setColumnWidth(column, min(self.table.columnWidth(column), MAX_COLUMN_PX))
        self.table.resizeRowsToContents()
        self._update_status(path)

    def _on_filter_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update_status(self.path)

    def _update_status(self, path=None) -> None:
        from medview.audit import audit_path

        shown, total = self.proxy.rowCount(), self.model.rowCount()
        where = path or audit_path()
        if not total:
            self.status.setText(f"No disclosures recorded ({where}).")
        elif shown == total:
            self.status.setText(f"{total} disclosure(s), newest first ({where}).")
        else:
            self.status.setText(f"{shown} of {total} disclosure(s) match ({where}).")

    def shown_rows(self) -> list[tuple[str, ...]]:
        """The rows as the table shows them now (filtered, in order)."""
        return [tuple(self.proxy.index(r, c).data() for c in range(len(COLUMNS)))
                for r in range(self.proxy.rowCount())]


def install_audit_action(window) -> None:
    """Add Help ▸ Audit Log… to ``window`` (after :func:`install_help_menu`)."""
    window.audit_dialog = None

    def show() -> AuditDialog:
        if window.audit_dialog is not None:
            window.audit_dialog.close()
            window.audit_dialog.deleteLater()
        window.audit_dialog = AuditDialog(window)
        window.audit_dialog.open()  # not exec(): no nested event loop
        return window.audit_dialog

    window.audit_action = QAction("&Audit Log…", window)
    window.audit_action.setObjectName("action_audit_log")
    window.audit_action.setToolTip("Every disclosure: offload, PACS send, share, backup")
    window.audit_action.triggered.connect(show)
    window.help_menu.addSeparator()
    window.help_menu.addAction(window.audit_action)
    window.show_audit_log = show
