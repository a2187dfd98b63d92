"""Settings ▸ Remote Endpoints: the offload servers a chain can run on.

The same configuration as ``medview remote add/list/remove`` (medview.remote.config): the URL
and an optional CA bundle in the user's config folder, the token in the OS keyring (or a 0600
file where there is none) — never in plain settings. "Check" asks the server's /health in the
background. Every change re-registers the chain panel's "Run on" executors.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import gui_text

__all__ = ["EndpointsDialog"]


class EndpointsDialog(QDialog):
    """List, add, remove and check endpoints.

    Signals
    -------
    changed()
        Endpoints were added or removed (executors re-registered).
    checked(str, bool, str)
        A check ended: endpoint name, reachable, message.
    """

    changed = Signal()
    checked = Signal(str, bool, str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Remote endpoints")
        self.session = session
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("endpoints")
        self.table.setHorizontalHeaderLabels(["Name", "URL", "CA bundle"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.check_button = QPushButton("Check", self)
        self.check_button.clicked.connect(self.check_selected)
        row.addWidget(self.remove_button)
        row.addWidget(self.check_button)
        row.addStretch(1)
        layout.addLayout(row)

        form = QFormLayout()
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("cluster")
        self.url = QLineEdit(self)
        self.url.setPlaceholderText("https://host:8443")
        self.token = QLineEdit(self)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("the token 'medview serve add-token' printed")
        ca_row = QHBoxLayout()
        self.ca_bundle = QLineEdit(self)
        self.ca_bundle.setPlaceholderText("optional: PEM file of the server's CA")
        browse = QPushButton("…", self)
        browse.clicked.connect(self._browse_ca)
        ca_row.addWidget(self.ca_bundle, 1)
        ca_row.addWidget(browse)
        form.addRow("Name", self.name)
        form.addRow("URL", self.url)
        form.addRow("Token", self.token)
        form.addRow("CA bundle", ca_row)
        layout.addLayout(form)
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self.add_from_form)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignRight)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        note = QLabel("Before upload, images are de-identified (only pixels and geometry "
                      "leave); each upload is written to the audit log. TLS certificates are "
                      "always verified.", self)
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        from medview.remote.config import list_endpoints

        endpoints = list_endpoints()
        self.table.setRowCount(len(endpoints))
        for i, ep in enumerate(endpoints):
            for j, text in enumerate((ep.name, ep.url, ep.ca_bundle or "")):
                self.table.setItem(i, j, QTableWidgetItem(text))
        has = bool(endpoints)
        self.remove_button.setEnabled(has)
        self.check_button.setEnabled(has)
        if has and self.table.currentRow() < 0:
            self.table.selectRow(0)

    def _selected(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item is not None else None

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle (PEM)", "",
                                              "PEM files (*.pem *.crt);;All files (*)")
        if path:
            self.ca_bundle.setText(path)

    def add_from_form(self) -> bool:
        """Add (or replace) the endpoint in the form; False with a message when invalid."""
        from medview.remote.config import add_endpoint
        from medview.remote.executor import sync_endpoint_executors

        try:
            add_endpoint(self.name.text().strip(), self.url.text().strip(), self.token.text(),
                         ca_bundle=self.ca_bundle.text().strip() or None)
        except (ValueError, OSError) as exc:
            self.message.setText(gui_text(str(exc)))
            return False
        self.message.setText(f"Added {self.name.text().strip()}.")
        self.token.clear()  # not kept in the widget longer than needed
        sync_endpoint_executors()
        self.refresh()
        self.changed.emit()
        return True

    def remove_selected(self) -> None:
        from medview.remote.config import remove_endpoint
        from medview.remote.executor import sync_endpoint_executors

        name = self._selected()
        if name is None:
            return
        remove_endpoint(name)
        sync_endpoint_executors()
        self.message.setText(f"Removed {name} (and its token).")
        self.refresh()
        self.changed.emit()

    def check_selected(self):
        """Ask the selected endpoint's /health and /info in the background."""
        name = self._selected()
        if name is None:
            return None

        def answered(node: str, ok: bool, text: str) -> None:
            if node == name:
                self.message.setText(text)
                self.checked.emit(name, ok, text)

        # the Session says how it went; this dialog listens while its job runs
        self.session.endpoint_checked.connect(answered)
        self.message.setText(f"Checking {name}…")
        job = self.session.verify_endpoint(name)
        job.events.done.connect(lambda: self.session.endpoint_checked.disconnect(answered))
        return job
