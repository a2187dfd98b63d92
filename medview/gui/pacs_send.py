"""Send to PACS…: the open series, or the DICOM files the last export wrote (SEG, derived
series, Secondary Capture), to a configured node in the background (C-STORE or STOW-RS).

What the node did not store is listed file by file with the reason the PACS layer gives.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.gui.tasks import Task

__all__ = ["SendDialog", "dicom_outputs"]


def dicom_outputs(written) -> list[Path]:
    """The DICOM files and folders among the paths an export wrote (a PNG, NIfTI or CSV is
    not sent)."""
    out = []
    for p in map(Path, written or []):
        if p.is_dir() or p.suffix.lower() == ".dcm":
            out.append(p)
    return out


class SendDialog(QDialog):
    """Choose what to send and where; Send is :meth:`Session.send
    <medview.app.session.Session.send>`.

    Parameters
    ----------
    session : Session
    sources : list of (label, list of Path)
        What can be sent (e.g. the open series' files, the last export).

    Signals
    -------
    sent(object)
        The ``SendReport`` of a send that ran (complete or not).
    """

    sent = Signal(object)

    def __init__(self, session, sources: list[tuple[str, list[Path]]],
                 parent: QWidget | None = None):
        super().__init__(parent)
        from medview.pacs.nodes import list_nodes

        self.setWindowTitle("Send to PACS")
        self.session = session
        self.sources = sources
        self.task: Task | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.node = QComboBox(self)
        self.node.setObjectName("send_node")
        try:
            for n in list_nodes():
                self.node.addItem(n.name)
        except (ValueError, OSError):
            pass  # said below: no node to choose
        form.addRow("Node", self.node)
        layout.addLayout(form)
        self.choice = QButtonGroup(self)
        for i, (label, files) in enumerate(sources):
            button = QRadioButton(f"{label} ({len(files)} file(s) or folder(s))", self)
            button.setChecked(i == 0)
            self.choice.addButton(button, i)
            layout.addWidget(button)
        self.send_button = QPushButton("Send", self)
        self.send_button.clicked.connect(self.send)
        self.send_button.setEnabled(bool(sources) and self.node.count() > 0)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.message = QLabel("" if self.node.count() else
                              "No PACS node yet: add one in Settings ▸ PACS…", self)
        self.message.setObjectName("send_message")
        self.message.setWordWrap(True)
        self.failures = QListWidget(self)
        self.failures.setObjectName("send_failures")
        self.failures.setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self._close)
        for w in (self.send_button, self.progress, self.message, self.failures, buttons):
            layout.addWidget(w)

    def send(self) -> Task | None:
        """Send the chosen source to the chosen node in the background."""
        name = self.node.currentText()
        i = self.choice.checkedId()
        if not name or i < 0 or self.task is not None:
            return None
        label, files = self.sources[i]
        self.failures.clear()
        self.failures.setVisible(False)
        self.message.setText(f"Sending {label.lower()} to {name}…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.send_button.setEnabled(False)
        self.task = task = self.session.send(name, files)
        task.signals.finished.connect(self._sent)
        task.signals.failed.connect(self._failed)
        task.signals.cancelled.connect(lambda: self.message.setText("Send cancelled."))
        task.signals.progress.connect(lambda f, m: self.progress.setValue(int(round(f * 1000))))
        task.signals.done.connect(self._done)
        return self.task

    def _sent(self, report) -> None:
        self.message.setText(report.summary())
        if report.failed:
            self.failures.addItems([f"{path}: {reason}" for path, reason in report.failed])
            self.failures.setVisible(True)
        self.sent.emit(report)

    def _failed(self, error: TaskError) -> None:
        self.message.setText(f"Not sent: {error.message}")

    def _done(self) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.send_button.setEnabled(True)

    def _close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.reject()
