"""File ▸ Back up to archive…: catalog studies (and medview's results) to a DICOMweb archive
in the background (:func:`medview.pacs.backup.backup`), with progress, cancel and the report:
how many instances were sent, already there, verified, failed (each with its reason)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.gui.tasks import Task

__all__ = ["OK_COLOUR", "PROBLEM_COLOUR", "BackupDialog"]

OK_COLOUR = QColor(30, 140, 60)       # every instance in the archive and verified
PROBLEM_COLOUR = QColor(190, 30, 30)  # something failed or was not verified

ROWS = (("sent", "Sent"), ("skipped", "Already in the archive"),
        ("verified", "Verified"), ("failed", "Failed"), ("unverified", "Not verified yet"))


class BackupDialog(QDialog):
    """Choose the archive and what to back up; Back up runs it in the background.

    Parameters
    ----------
    session : Session
        Runs the backup of its catalog (:meth:`~medview.app.session.Session.backup`).
    study_uid : str
        The open series' study ("" when none is open).

    Signals
    -------
    finished(object)
        The ``BackupReport`` of a backup that ran to its end (complete or not).
    """

    finished = Signal(object)

    def __init__(self, session, study_uid: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        from medview.pacs.nodes import WebNode, list_nodes

        self.setWindowTitle("Back up to archive")
        self.session, self.study_uid = session, study_uid
        self.task: Task | None = None
        self.report = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.node = QComboBox(self)
        self.node.setObjectName("backup_node")
        try:
            for n in list_nodes():
                if isinstance(n, WebNode):
                    self.node.addItem(n.name)
        except (ValueError, OSError):
            pass  # said below: no archive to choose
        form.addRow("Archive", self.node)
        layout.addLayout(form)
        self.scope = QButtonGroup(self)
        self.open_study = QRadioButton("The open study", self)
        self.open_study.setEnabled(bool(study_uid))
        self.every_study = QRadioButton("Every study in the catalog", self)
        (self.open_study if study_uid else self.every_study).setChecked(True)
        for i, b in enumerate((self.open_study, self.every_study)):
            self.scope.addButton(b, i)
            layout.addWidget(b)
        self.results = QCheckBox("Include medview's results (SEG, derived series, "
                                 "Secondary Captures)", self)
        self.results.setChecked(True)
        layout.addWidget(self.results)
        self.start_button = QPushButton("Back up", self)
        self.start_button.setObjectName("backup_start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel backup", self)
        self.cancel_button.setObjectName("backup_cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.message = QLabel("" if self.node.count() else
                              "No DICOMweb archive yet: add one in Settings ▸ PACS…", self)
        self.message.setObjectName("backup_message")
        self.message.setWordWrap(True)
        self.status = QLabel("", self)  # one word in colour: what the user looks for first
        self.status.setObjectName("backup_status")
        self.status.setAutoFillBackground(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status.setVisible(False)
        self.table = QTableWidget(len(ROWS), 1, self)
        self.table.setObjectName("backup_counts")
        self.table.setHorizontalHeaderLabels(["Instances"])
        self.table.setVerticalHeaderLabels([label for _k, label in ROWS])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVisible(False)
        self.failures = QListWidget(self)
        self.failures.setObjectName("backup_failures")
        self.failures.setWordWrap(True)
        self.failures.setVisible(False)
        self.setMinimumWidth(620)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self._close)
        for w in (self.start_button, self.cancel_button, self.progress, self.status,
                  self.message, self.table, self.failures, buttons):
            layout.addWidget(w)
        self.start_button.setEnabled(self.node.count() > 0)

    def start(self) -> Task | None:
        """Run the backup of the chosen studies to the chosen archive in the background."""
        from medview.pacs.backup import BackupReport

        name = self.node.currentText()
        if not name or self.task is not None:
            return None
        uids = (self.study_uid,) if self.open_study.isChecked() and self.study_uid else ()
        every = not uids
        results = self.results.isChecked()
        report = self.report = BackupReport(name)
        try:
            task = self.session.backup(name, uids, all_studies=every, results=results,
                                       report=report)
        except RuntimeError as exc:  # no catalog: said here, nothing started
            self.message.setText(f"Not backed up: {exc}")
            return None

        self.failures.clear()
        for w in (self.failures, self.status, self.table):
            w.setVisible(False)
        self.message.setText(f"Backing up to {name}…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.task = task
        task.signals.finished.connect(self._finished)
        task.signals.failed.connect(self._failed)
        task.signals.cancelled.connect(self._cancelled)
        task.signals.progress.connect(self._on_progress)
        task.signals.done.connect(self._done)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.message.setText("Cancelling after the request under way…")

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(round(fraction * 1000)))
        if text:
            self.message.setText(text)

    def _show(self, report, headline: str) -> None:
        c = report.counts()
        values = {"sent": c["sent"], "skipped": c["skipped"],
                  "verified": c["verified"] + c["verified_before"],
                  "failed": len(report.failed), "unverified": c["unverified"]}
        for row, (key, _label) in enumerate(ROWS):
            item = QTableWidgetItem(str(values[key]))
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 0, item)
        t = self.table
        t.resizeRowsToContents()
        t.setFixedHeight(t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth()
                         + t.verticalHeader().length() + 8)
        t.setVisible(True)
        ok = report.complete
        self.status.setText("All verified" if ok else "Not complete")
        palette = self.status.palette()
        palette.setColor(QPalette.ColorRole.Window, OK_COLOUR if ok else PROBLEM_COLOUR)
        palette.setColor(QPalette.ColorRole.WindowText, QColor("white"))
        self.status.setPalette(palette)
        self.status.setVisible(True)
        self.message.setText(headline)
        if report.failed:
            self.failures.addItems([
                f"{'not stored' if f.stage != 'verify' else 'not verified'}: {f.path.name} "
                f"({f.sop_uid}): {f.reason}" for f in report.failed])
            self.failures.setVisible(True)

    def _finished(self, report) -> None:
        self._show(report, report.summary())
        self.finished.emit(report)

    def _failed(self, error: TaskError) -> None:
        self.message.setText(f"Not backed up: {error.message}")

    def _cancelled(self) -> None:
        if self.report is not None and self.report.total:
            self._show(self.report, f"Cancelled: {self.report.summary()}")
        else:
            self.message.setText("Backup cancelled before it started: nothing was sent.")

    def _done(self) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.start_button.setEnabled(self.node.count() > 0)
        self.cancel_button.setEnabled(False)

    def _close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.reject()
