"""The PACS dock: query a configured node and retrieve a study or a series into the catalog.

Search and Retrieve are the Session's (:meth:`~medview.app.session.Session.find`,
:meth:`~medview.app.session.Session.retrieve`); the panel follows the returned jobs. A
retrieve calls back per arrived instance from network threads: the paths are collected under
a lock and, on the GUI thread every :data:`INDEX_INTERVAL_MS`, indexed by the Session
(:meth:`~medview.app.session.Session.index_arrived`) and announced (``instances_arrived``),
so the window can show the series while the rest is still on its way. A retrieve that stops
early says how many instances are missing; Resume asks the PACS for only those.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.app.tasks import Job
from medview.gui.pacs_tree import PacsTree

__all__ = ["PacsPanel"]

#: how often the instances that arrived are indexed into the catalog and announced
INDEX_INTERVAL_MS = 250
#: the same until the first ones are announced (the first image waits for them)
FIRST_INDEX_INTERVAL_MS = 40


class PacsPanel(QWidget):
    """Node chooser, query fields, results tree, Retrieve / Cancel / Resume.

    Parameters
    ----------
    session : medview.app.session.Session
        Whose methods search and retrieve (its catalog is the one retrieved into).

    Signals
    -------
    searched(list)
        A search ended with these PacsPatient.
    retrieve_started(str, str)
        Study UID and series UID ("" for a whole study) of a retrieve that starts.
    instances_listed(object)
        The PACS listed the instances of the retrieve: SOP Instance UID →
        :class:`~medview.pacs.listing.ListedInstance` (with positions when it gives them).
    files_arrived(list)
        ``(path, (study, series, SOP instance UID))`` of the files just indexed.
    instances_arrived(str, str, int)
        Study UID, series UID and how many of its instances are now in the catalog.
    retrieve_finished(object)
        A retrieve ended (complete or not): its ``RetrieveReport``.
    retrieve_stopped(str)
        A retrieve was cancelled or failed before any report: the message shown.
    """

    searched = Signal(list)
    retrieve_started = Signal(str, str)
    instances_listed = Signal(object)
    files_arrived = Signal(list)
    instances_arrived = Signal(str, str, int)
    retrieve_finished = Signal(object)
    retrieve_stopped = Signal(str)

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pacs_panel")
        self.session = session
        self.search_task: Job | None = None
        self.retrieve_task: Job | None = None
        self.last_retrieve: tuple[str, str, str] | None = None  # node, study, series
        self.resumable = False  # the last retrieve stopped short
        self._arrived: list = []
        self._listed: dict | None = None  # the listing, until announced
        self._arrived_lock = threading.Lock()
        self._index_timer = QTimer(self)
        self._index_timer.setInterval(INDEX_INTERVAL_MS)
        self._index_timer.timeout.connect(self.index_arrived)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        node_row = QHBoxLayout()
        self.node = QComboBox(self)
        self.node.setObjectName("pacs_node")
        node_row.addWidget(QLabel("Node", self))
        node_row.addWidget(self.node, 1)
        layout.addLayout(node_row)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[str, QLineEdit] = {}
        for key, label, hint in (
                ("patient_name", "Patient name", "DOE^J*  (* and ? match)"),
                ("patient_id", "Patient ID", ""),
                ("birth_date", "Birth date", "YYYYMMDD"),
                ("date_from", "Study date from", "YYYYMMDD"),
                ("date_to", "to", "YYYYMMDD"),
                ("modality", "Modality", "CT, MR …"),
                ("accession_number", "Accession", ""),
                ("study_description", "Description", "*HEAD*")):
            edit = QLineEdit(self)
            edit.setObjectName(f"pacs_{key}")
            edit.setPlaceholderText(hint)
            edit.setClearButtonEnabled(True)
            edit.returnPressed.connect(self.search)
            self.fields[key] = edit
            if key == "date_from":
                date_row = QHBoxLayout()
                date_row.addWidget(edit)
                form.addRow("Study date", date_row)
            elif key == "date_to":
                date_row.addWidget(QLabel("to", self))
                date_row.addWidget(edit)
            else:
                form.addRow(label, edit)
        layout.addLayout(form)
        self.search_button = QPushButton("Search", self)
        self.search_button.clicked.connect(self.search)
        layout.addWidget(self.search_button)
        self.tree = PacsTree(self)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self.retrieve_selected())
        layout.addWidget(self.tree, 1)
        buttons = QHBoxLayout()
        self.retrieve_button = QPushButton("Retrieve", self)
        self.retrieve_button.setToolTip("Bring the selected study or series into the catalog "
                                        "and open it as it arrives")
        self.retrieve_button.clicked.connect(lambda: self.retrieve_selected())
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Fetch only the instances the last retrieve is missing")
        self.resume_button.clicked.connect(self.resume)
        for b in (self.retrieve_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.message = QLabel("", self)
        self.message.setObjectName("pacs_status")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.refresh_nodes()
        self._update_buttons()

    # -- nodes and query ---------------------------------------------------------------
    def refresh_nodes(self) -> None:
        """Re-read the configured nodes into the chooser (keeping the choice)."""
        from medview.pacs.nodes import list_nodes

        current = self.node.currentText()
        try:
            nodes = list_nodes()
        except (ValueError, OSError) as exc:
            self.message.setText(str(exc))
            nodes = []
        self.node.clear()
        for n in nodes:
            self.node.addItem(n.name)
            self.node.setItemData(self.node.count() - 1, n.describe(), 3)  # tooltip role
        if current:
            i = self.node.findText(current)
            if i >= 0:
                self.node.setCurrentIndex(i)
        if not nodes:
            self.message.setText("No PACS node yet: add one in Settings ▸ PACS…")
        self._update_buttons()

    def query(self):
        """The :class:`~medview.pacs.query.Query` of the fields (ValueError if malformed)."""
        from medview.pacs.query import Query

        v = {k: e.text().strip() for k, e in self.fields.items()}
        date_from, date_to = v.pop("date_from"), v.pop("date_to")
        study_date = f"{date_from}-{date_to}" if date_to and date_to != date_from \
            else date_from if date_from else (f"-{date_to}" if date_to else "")
        return Query(study_date=study_date, modality=v.pop("modality").upper(), **v)

    def search(self) -> Job | None:
        """Run the query against the chosen node in the background (series level)."""
        name = self.node.currentText()
        if not name:
            self.message.setText("Choose a PACS node (Settings ▸ PACS… adds one).")
            return None
        try:
            query = self.query()
        except ValueError as exc:
            self.message.setText(str(exc))
            return None
        if self.search_task is not None:
            self.search_task.cancel()

        def done(patients) -> None:
            if task is not self.search_task:
                return
            self.tree.set_patients(patients)
            n_st = sum(len(p.studies) for p in patients)
            self.message.setText(f"{name}: {len(patients)} patient(s), {n_st} stud"
                                 f"{'y' if n_st == 1 else 'ies'}.")
            self.searched.emit(patients)

        def failed(error: TaskError) -> None:
            if task is self.search_task:
                self.message.setText(error.message)

        self.message.setText(f"Searching {name}…")
        task = self.session.find(name, query, level="series")
        task.events.finished.connect(done)
        task.events.failed.connect(failed)
        task.events.done.connect(lambda: self._search_done(task))
        self.search_task = task
        self._update_buttons()
        return task

    def _search_done(self, task: Job) -> None:
        if task is self.search_task:
            self.search_task = None
        self._update_buttons()

    # -- retrieve ----------------------------------------------------------------------
    def retrieve_selected(self) -> Job | None:
        key = self.tree.selected_key()
        if key is None or key[0] == "patient":
            self.message.setText("Select a study or a series to retrieve.")
            return None
        return self.retrieve(key[1], key[2])

    def resume(self) -> Job | None:
        """Retrieve again what the last retrieve did not bring (only the missing ones)."""
        if self.last_retrieve is None:
            return None
        node, study_uid, series_uid = self.last_retrieve
        return self.retrieve(study_uid, series_uid, node=node)

    def retrieve(self, study_uid: str, series_uid: str = "", *,
                 node: str | None = None) -> Job | None:
        """Bring a study (or one series) from the node into the catalog in the background."""
        name = node or self.node.currentText()
        if not name or self.session.catalog is None or self.retrieve_task is not None:
            if self.retrieve_task is not None:
                self.message.setText("A retrieve is running; cancel it first.")
            return None
        self.last_retrieve = (name, study_uid, series_uid)
        with self._arrived_lock:
            self._arrived.clear()
            self._listed = None

        def on_instance(path, uids) -> None:  # a network thread: only collect
            with self._arrived_lock:
                self._arrived.append((path, uids))

        def on_listed(table) -> None:  # the listing's thread: only keep
            with self._arrived_lock:
                self._listed = table

        what = "series" if series_uid else "study"
        task = self.session.retrieve(name, study_uid, series_uid, on_instance=on_instance,
                                     on_listed=on_listed)
        events = task.events
        events.finished.connect(self._retrieved)
        events.failed.connect(self._retrieve_failed)
        events.cancelled.connect(self._retrieve_cancelled)
        events.progress.connect(self._on_progress)
        events.done.connect(self._retrieve_done)
        self.retrieve_task = task
        self.message.setText(f"Retrieving {what} from {name}…")
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._index_timer.setInterval(FIRST_INDEX_INTERVAL_MS)
        self._index_timer.start()
        self._update_buttons()
        self.retrieve_started.emit(study_uid, series_uid)
        return task

    def cancel(self) -> None:
        for task in (self.retrieve_task, self.search_task):
            if task is not None:
                task.cancel()

    def index_arrived(self) -> int:
        """Index the instances that arrived since the last call (GUI thread); how many."""
        with self._arrived_lock:
            batch, self._arrived = self._arrived, []
            listed, self._listed = self._listed, None
        if listed is not None:
            self.instances_listed.emit(listed)
        if not batch or self.session.catalog is None:
            return 0
        counts = self.session.index_arrived(batch)
        self._index_timer.setInterval(INDEX_INTERVAL_MS)
        self.files_arrived.emit(batch)
        for (study_uid, series_uid), n in counts.items():
            self.instances_arrived.emit(study_uid, series_uid, n)
        return len(batch)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(fraction * 1000)))
        if message:
            self.progress.setToolTip(message)

    def _retrieved(self, report) -> None:
        self._finish_indexing()
        self.resumable = not report.complete
        if report.complete:
            self.message.setText(f"Retrieved: {report.summary()}")
        else:
            self.message.setText(
                f"Incomplete: {len(report.missing)} of {report.expected} instance(s) missing"
                + (f" ({report.error})" if report.error else "")
                + ". Resume fetches only those.")
        self.retrieve_finished.emit(report)

    def _retrieve_failed(self, error: TaskError) -> None:
        self._finish_indexing()
        self.resumable = True
        self.message.setText(f"Retrieve failed: {error.message}")
        self.retrieve_stopped.emit(error.message)

    def _retrieve_cancelled(self) -> None:
        self._finish_indexing()
        self.resumable = True
        text = ("Retrieve cancelled: what arrived is kept in the catalog; Resume fetches "
                "the rest.")
        self.message.setText(text)
        self.retrieve_stopped.emit(text)

    def _finish_indexing(self) -> None:
        self._index_timer.stop()
        with self._arrived_lock:  # retrieve() indexed them all itself before returning
            self._arrived.clear()
            self._listed = None
        if self.session.catalog is not None:
            self.tree.update_local(self.session.catalog)

    def _retrieve_done(self) -> None:
        self.retrieve_task = None
        self.progress.setVisible(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        key = self.tree.selected_key()
        busy = self.retrieve_task is not None
        self.search_button.setEnabled(self.node.count() > 0)
        self.retrieve_button.setEnabled(not busy and key is not None and key[0] != "patient")
        self.cancel_button.setEnabled(busy or self.search_task is not None)
        self.resume_button.setEnabled(not busy and self.resumable)
