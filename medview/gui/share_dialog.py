"""Share de-identified…: the open study or series, de-identified (DICOM PS3.15 with options),
to a new folder with a DICOMDIR, a new ZIP, or a PACS node — in the background, with progress
and cancel; the share report is shown at the end.

The work is :func:`medview.deid.share.share`; this dialog only collects the choices.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.gui.tasks import Task

__all__ = ["OPTIONS", "ShareDialog"]

#: (Options field, label, tooltip)
OPTIONS = (
    ("retain_dates_modified", "Keep dates, shifted per patient",
     "Retain Longitudinal Temporal Information with Modified Dates"),
    ("retain_patient_characteristics", "Keep sex, age, size, weight",
     "Retain Patient Characteristics"),
    ("clean_descriptors", "Keep descriptions, cleaned of names and IDs",
     "Clean Descriptors (read them: the report lists them)"),
    ("retain_device_identity", "Keep device serial numbers and stations",
     "Retain Device Identity"),
    ("retain_institution_identity", "Keep institution name and address",
     "Retain Institution Identity"),
)
KINDS = ("folder", "zip", "node")


class ShareDialog(QDialog):
    """Choose what, how and where; Share runs :func:`medview.deid.share.share`.

    Parameters
    ----------
    session : Session
        Runs the share (:meth:`~medview.app.session.Session.share`).
    sources : list of (label, list of Path)
        What can be shared (the open study, the open series).

    Signals
    -------
    shared(object)
        The ``ShareReport`` of a share that completed.
    """

    shared = Signal(object)

    def __init__(self, session, sources: list[tuple[str, list[Path]]],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Share de-identified")
        self.session = session
        self.sources = sources
        self.task: Task | None = None
        layout = QVBoxLayout(self)
        self.what = QButtonGroup(self)
        for i, (label, files) in enumerate(sources):
            button = QRadioButton(f"{label} ({len(files)} file(s))", self)
            button.setChecked(i == 0)
            self.what.addButton(button, i)
            layout.addWidget(button)
        layout.addWidget(QLabel("Basic Application Level Confidentiality Profile (DICOM "
                                "PS3.15 Annex E), plus:", self))
        self.options: dict[str, QCheckBox] = {}
        for field, label, tip in OPTIONS:
            box = QCheckBox(label, self)
            box.setObjectName(f"share_{field}")
            box.setToolTip(tip)
            self.options[field] = box
            layout.addWidget(box)
        self.mask = QCheckBox("Find text burned into images and mask it (OCR)", self)
        self.mask.setObjectName("share_mask")
        layout.addWidget(self.mask)
        form = QFormLayout()
        self.project = QLineEdit(self)
        self.project.setObjectName("share_project")
        self.project.setPlaceholderText("e.g. liver-trial (its key makes the pseudonyms)")
        form.addRow("Project", self.project)
        self.kind = QComboBox(self)
        self.kind.setObjectName("share_kind")
        self.kind.addItems(["New folder (with a DICOMDIR)", "New ZIP file", "PACS node"])
        form.addRow("To", self.kind)
        row = QHBoxLayout()
        self.path = QLineEdit(self)
        self.path.setObjectName("share_path")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path)
        row.addWidget(browse)
        form.addRow("Where", row)
        self.node = QComboBox(self)
        self.node.setObjectName("share_node")
        try:
            from medview.pacs.nodes import list_nodes

            self.node.addItems([n.name for n in list_nodes()])
        except (ValueError, OSError):
            pass   # no node to offer: the PACS choice says so when picked
        form.addRow("Node", self.node)
        layout.addLayout(form)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.share_button = QPushButton("Share", self)
        self.share_button.setObjectName("share_button")
        self.share_button.clicked.connect(self.share)
        self.cancel_button = QPushButton("Cancel share", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(self.share_button)
        buttons_row.addWidget(self.cancel_button)
        layout.addLayout(buttons_row)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.message = QLabel("", self)
        self.message.setObjectName("share_message")
        self.message.setWordWrap(True)
        # room for three lines: a wrapped label in a dialog gets one line's height otherwise
        self.message.setMinimumHeight(3 * self.message.fontMetrics().lineSpacing())
        self.report = QPlainTextEdit(self)
        self.report.setObjectName("share_report")
        self.report.setReadOnly(True)
        self.report.setVisible(False)
        self.report.setMinimumHeight(220)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self._close)
        for w in (self.progress, self.message, self.report, close):
            layout.addWidget(w)
        self._kind_changed()
        self.resize(580, 860)

    # -- choices ---------------------------------------------------------------------------
    def _kind_changed(self) -> None:
        node = KINDS[self.kind.currentIndex()] == "node"
        self.path.setEnabled(not node)
        self.node.setEnabled(node)
        if node and not self.node.count():
            self.message.setText("No PACS node yet: add one in Settings ▸ PACS…")

    def _browse(self) -> None:
        if KINDS[self.kind.currentIndex()] == "zip":
            path, _ = QFileDialog.getSaveFileName(self, "Share as ZIP", "", "ZIP (*.zip)")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Share into a new folder", "")
        if path:
            self.path.setText(path)

    def chosen_options(self):
        from medview.deid.profile import Options

        return Options(**{f: box.isChecked() for f, box in self.options.items()})

    # -- the share -------------------------------------------------------------------------
    def share(self) -> Task | None:
        """Start the share in the background (None when a choice is missing: said why)."""
        i = self.what.checkedId()
        project = self.project.text().strip()
        kind = KINDS[self.kind.currentIndex()]
        if self.task is not None or i < 0:
            return None
        if not project:
            self.message.setText("Name the project first: its key makes the pseudonyms.")
            return None
        target = self.path.text().strip()
        if kind == "zip" and target and not target.lower().endswith(".zip"):
            target += ".zip"
        if kind != "node" and not target:
            self.message.setText("Choose where to write the share.")
            return None
        node = self.node.currentText()
        if kind == "node" and not node:
            self.message.setText("No PACS node to send to: add one in Settings ▸ PACS….")
            return None
        label, files = self.sources[i]
        where = {"node_name": node} if kind == "node" else {"destination": target}

        self.report.setVisible(False)
        self.message.setText(f"De-identifying {label.lower()}…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.share_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.task = task = self.session.share(files, project=project,
                                              options=self.chosen_options(),
                                              mask_burned_in=self.mask.isChecked(), **where)
        task.signals.finished.connect(self._finished)
        task.signals.failed.connect(self._failed)
        task.signals.cancelled.connect(
            lambda: self.message.setText("Share cancelled: nothing was written."))
        task.signals.progress.connect(lambda f, m: self.progress.setValue(int(round(f * 1000))))
        task.signals.done.connect(self._done)
        return self.task

    def _finished(self, report) -> None:
        text = report.text()
        if report.sent is not None:
            text += "\n" + report.sent.summary() + "\n"
            text += "".join(f"not stored: {p.name}: {why}\n" for p, why in report.sent.failed)
        self.report.setPlainText(text)
        self.report.setVisible(True)
        review = report.needs_review()
        self.message.setText(f"Shared {report.instances} instance(s) to "
                             f"{report.destination}."
                             + (f" {len(review)} thing(s) need a human look: see the report."
                                if review else ""))
        self.shared.emit(report)

    def _failed(self, error: TaskError) -> None:
        self.message.setText(f"Not shared: {error.message}")

    def _done(self) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.share_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _close(self) -> None:
        self._cancel()
        self.reject()
