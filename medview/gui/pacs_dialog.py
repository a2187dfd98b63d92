"""Settings ▸ PACS: the DICOM (DIMSE) peers and DICOMweb endpoints medview queries, retrieves
from and sends to.

The same configuration as ``medview pacs add/list/remove/echo`` (:mod:`medview.pacs.nodes`):
nodes in the user's config folder, a DICOMweb password or bearer token in the OS keyring (or a
0600 file where there is none) — never in plain settings. "Verify" runs a C-ECHO or a QIDO-RS
probe in the background and shows the PACS layer's message (refused, timeout, association
rejected with its reason, 401).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import gui_text

__all__ = ["PacsNodesDialog"]


def _port_box(parent: QWidget, value: int = 104, minimum: int = 1) -> QSpinBox:
    box = QSpinBox(parent)
    box.setRange(minimum, 65535)
    box.setValue(value)
    return box


class PacsNodesDialog(QDialog):
    """List, add, remove and verify PACS nodes.

    Signals
    -------
    changed()
        A node was added or removed (the PACS dock re-reads its node chooser).
    verified(str, bool, str)
        A verification ended: node name, it answered, message.
    """

    changed = Signal()
    verified = Signal(str, bool, str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.session = session
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("pacs_nodes")
        self.table.setHorizontalHeaderLabels(["Name", "Type", "Address"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.verify_button = QPushButton("Verify", self)
        self.verify_button.setToolTip("C-ECHO (DICOM) or a one-study QIDO-RS query (DICOMweb)")
        self.verify_button.clicked.connect(self.verify_selected)
        row.addWidget(self.remove_button)
        row.addWidget(self.verify_button)
        row.addStretch(1)
        layout.addLayout(row)

        top = QFormLayout()
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("pacs")
        self.kind = QComboBox(self)
        self.kind.addItem("DICOM (C-FIND, C-GET / C-MOVE, C-STORE)", "dimse")
        self.kind.addItem("DICOMweb (QIDO-RS, WADO-RS, STOW-RS)", "web")
        top.addRow("Name", self.name)
        top.addRow("Type", self.kind)
        layout.addLayout(top)
        self.forms = QStackedWidget(self)
        self.forms.addWidget(self._dimse_form())
        self.forms.addWidget(self._web_form())
        self.kind.currentIndexChanged.connect(self.forms.setCurrentIndex)
        layout.addWidget(self.forms)
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self.add_from_form)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignRight)
        self.message = QLabel("", self)
        self.message.setObjectName("pacs_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    def _dimse_form(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.ae_title = QLineEdit(page)
        self.ae_title.setPlaceholderText("the PACS's AE title, e.g. ORTHANC")
        self.host = QLineEdit(page)
        self.host.setPlaceholderText("pacs.hospital.org")
        self.port = _port_box(page)
        self.our_ae_title = QLineEdit("MEDVIEW", page)
        self.our_port = _port_box(page, 0, 0)
        self.our_port.setSpecialValueText("any (C-GET)")
        self.our_port.setToolTip("Where medview listens for C-MOVE; the PACS must know our "
                                 "AE title at this port")
        self.retrieve = QComboBox(page)
        self.retrieve.addItem("C-GET", "get")
        self.retrieve.addItem("C-MOVE (to our port)", "move")
        from medview.pacs.nodes import DEFAULT_RETRIEVE_ASSOCIATIONS, MAX_RETRIEVE_ASSOCIATIONS

        self.associations = QSpinBox(page)
        self.associations.setRange(1, MAX_RETRIEVE_ASSOCIATIONS)
        self.associations.setValue(DEFAULT_RETRIEVE_ASSOCIATIONS)
        self.associations.setToolTip("Retrieve over up to this many associations at once, "
                                     "each asking for a share of the instances (1: the series "
                                     "or study in one request)")
        form.addRow("PACS AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Our AE title", self.our_ae_title)
        form.addRow("Our port", self.our_port)
        form.addRow("Retrieve by", self.retrieve)
        form.addRow("Associations", self.associations)
        return page

    def _web_form(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.url = QLineEdit(page)
        self.url.setPlaceholderText("https://pacs.hospital.org/dicom-web")
        ca_row = QHBoxLayout()
        self.ca_bundle = QLineEdit(page)
        self.ca_bundle.setPlaceholderText("optional: PEM file (default: the system CAs)")
        browse = QPushButton("…", page)
        browse.clicked.connect(self._browse_ca)
        ca_row.addWidget(self.ca_bundle, 1)
        ca_row.addWidget(browse)
        self.auth = QComboBox(page)
        for text, value in (("None", "none"), ("Basic (user, password)", "basic"),
                            ("Bearer token", "bearer")):
            self.auth.addItem(text, value)
        self.username = QLineEdit(page)
        self.secret = QLineEdit(page)
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("kept in the keyring, not in the settings")
        form.addRow("URL", self.url)
        form.addRow("CA bundle", ca_row)
        form.addRow("Authentication", self.auth)
        form.addRow("User", self.username)
        form.addRow("Password / token", self.secret)
        return page

    def _browse_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CA bundle (PEM)", "",
                                              "PEM files (*.pem *.crt);;All files (*)")
        if path:
            self.ca_bundle.setText(path)

    def refresh(self) -> None:
        from medview.pacs.nodes import DimseNode, list_nodes

        try:
            nodes = list_nodes()
        except (ValueError, OSError) as exc:  # a broken config file: say so, list nothing
            self.message.setText(gui_text(str(exc)))
            nodes = []
        self.table.setRowCount(len(nodes))
        for i, node in enumerate(nodes):
            if isinstance(node, DimseNode):
                cells = (node.name, "DICOM", f"{node.ae_title}@{node.host}:{node.port} "
                         f"(we are {node.our_ae_title}; C-{node.retrieve.upper()})")
            else:
                cells = (node.name, "DICOMweb", node.url + ("" if node.auth == "none"
                                                            else f" ({node.auth} auth)"))
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        has = bool(nodes)
        self.remove_button.setEnabled(has)
        self.verify_button.setEnabled(has)
        if has and self.table.currentRow() < 0:
            self.table.selectRow(0)

    def node_names(self) -> list[str]:
        return [self.table.item(i, 0).text() for i in range(self.table.rowCount())]

    def select(self, name: str) -> None:
        for i, n in enumerate(self.node_names()):
            if n == name:
                self.table.selectRow(i)

    def _selected(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.text() if item is not None else None

    def add_from_form(self) -> bool:
        """Add (or replace) the node in the form; False with the reason when invalid."""
        from medview.pacs.nodes import DimseNode, WebNode, add_node

        name = self.name.text().strip()
        try:
            if self.kind.currentData() == "dimse":
                node = DimseNode(name, self.ae_title.text(), self.host.text(),
                                 self.port.value(), self.our_ae_title.text(),
                                 self.our_port.value(), self.retrieve.currentData(),
                                 retrieve_associations=self.associations.value())
                add_node(node)
            else:
                auth = self.auth.currentData()
                node = WebNode(name, self.url.text().strip(), auth,
                               self.username.text().strip() or None,
                               self.ca_bundle.text().strip() or None)
                add_node(node, self.secret.text() if auth != "none" else None)
        except (ValueError, OSError) as exc:
            self.message.setText(gui_text(str(exc)))
            return False
        self.secret.clear()  # not kept in the widget longer than needed
        self.message.setText(f"Added {name}.")
        self.refresh()
        self.select(name)
        self.changed.emit()
        return True

    def remove_selected(self) -> None:
        from medview.pacs.nodes import remove_node

        name = self._selected()
        if name is None:
            return
        try:
            remove_node(name)
        except (KeyError, OSError) as exc:
            self.message.setText(gui_text(str(exc).strip("'\"")))
            return
        self.message.setText(f"Removed {name} (and its password or token).")
        self.refresh()
        self.changed.emit()

    def verify_selected(self):
        """C-ECHO / QIDO-RS probe of the selected node in the background; the task."""
        name = self._selected()
        if name is None:
            return None

        def answered(node: str, ok: bool, text: str) -> None:
            if node == name:
                self.message.setText(text)
                self.verified.emit(name, ok, text)

        # the Session says how it went; this dialog listens while its job runs
        self.session.node_verified.connect(answered)
        self.message.setText(f"Verifying {name}…")
        job = self.session.verify_node(name)
        job.events.done.connect(lambda: self.session.node_verified.disconnect(answered))
        return job
