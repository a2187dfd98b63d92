"""The comparison window: series side by side (:mod:`medview.gui.compare_view`), the
patient's series and prior studies to drag onto the panes, the layout and its rules.

Opened from the browser ("Compare with…" on a series). Everything it does goes through the
Session: panes read their series with :func:`medview.app.compare_jobs.open_in_pane`, a pair
is registered with :func:`~medview.app.compare_jobs.register_pane` on the chosen executor,
priors come from the catalog and the PACS nodes (:mod:`medview.app.compare_priors`).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QHeaderView,
    QMainWindow,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from medview.app import compare_jobs, compare_priors
from medview.app.compare import Comparison
from medview.app.hanging import (
    LAYOUT_SHAPES,
    LayoutRule,
    assign_series,
    load_rules,
    pick_rule,
    window_for,
)
from medview.app.session import Session
from medview.dicom.catalog.priors import patient_series, series_facts
from medview.gui.compare_view import CompareView
from medview.gui.overlays import format_date
from medview.gui.series_browser import series_mime

__all__ = ["CompareWindow"]

log = logging.getLogger(__name__)

_UID = Qt.ItemDataRole.UserRole
_WHERE = Qt.ItemDataRole.UserRole + 1  # "catalog" or a PACS node's name
_STUDY = Qt.ItemDataRole.UserRole + 2
_STATUS_MS = 8000


class _PriorsTree(QTreeWidget):
    """The patient's studies and series; a series is dragged onto a pane."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compare_priors")
        self.setHeaderLabels(["Study / series", "Date", "Where"])
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        # the date and the place always whole; a long study name gives way (elided) when
        # the dock is narrow, instead of pushing the date out of sight
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)

    def fit_columns(self) -> None:
        """Ask for the width every column's contents need (up to a third of the screen),
        so the dock opens wide enough to show the names whole."""
        want = sum(self.sizeHintForColumn(c) for c in range(self.columnCount()))
        screen = self.screen().availableGeometry().width() if self.screen() else 1200
        frame = 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width() + 8
        self.setMinimumWidth(max(260, min(want + frame, screen // 3)))

    def mimeData(self, items):
        uids = [i.data(0, _UID) for i in items if i.data(0, _UID)
                and i.data(0, _WHERE) == "catalog"]
        return series_mime(uids[0]) if uids else super().mimeData(items)


class CompareWindow(QMainWindow):
    """Series of ``session``'s catalog side by side, synchronised."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compare_window")
        self.setWindowTitle("medview — Compare")
        self.session = session
        self.comparison = Comparison(2)
        self.view = CompareView(self.comparison, self)
        self.setCentralWidget(self.view)
        self.rule: LayoutRule | None = None
        self._nodes = None  # default: every configured PACS node
        self.priors = _PriorsTree(self)
        dock = QDockWidget("Patient's studies", self)
        dock.setObjectName("compare_priors_dock")
        dock.setWidget(self.priors)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.priors.itemActivated.connect(self._on_prior_activated)
        self.priors.setMinimumWidth(260)

        bar = self.addToolBar("Compare")
        bar.setObjectName("compare_tool_bar")
        self.layout_box = QComboBox(self)
        self.layout_box.setObjectName("compare_layout")
        for name, (rows, cols) in LAYOUT_SHAPES.items():
            self.layout_box.addItem(f"{rows}×{cols}", name)
        self.layout_box.setCurrentIndex(list(LAYOUT_SHAPES).index(self.view.layout_name))
        self.layout_box.currentIndexChanged.connect(
            lambda k: self.view.set_layout(self.layout_box.itemData(k)))
        bar.addWidget(self.layout_box)
        self.hang_action = bar.addAction("Hang by Rules", self._hang_reference)
        self.rules_action = bar.addAction("Layout Rules…", self.edit_rules)
        self.pacs_action = bar.addAction("Find Priors on PACS", self.find_pacs_priors)

        self.view.series_dropped.connect(self.open_series)
        self.view.register_requested.connect(self.register)
        self.view.link_here_requested.connect(
            lambda i: self._guard("Link here", self.comparison.link_here, i))
        self.view.mode_requested.connect(
            lambda i, m: self._guard("Linking", self.comparison.set_mode, i, m))
        session.action_failed.connect(self._on_failed)
        self.resize(1200, 700)

    # -- opening -----------------------------------------------------------------------
    def open_series(self, index: int, series_uid: str) -> None:
        """Show catalog series ``series_uid`` in pane ``index`` (the window opens it)."""
        if index >= len(self.view.panes):
            return
        self._guard("Opening a series", compare_jobs.open_in_pane, self.session,
                    self.comparison, index, series_uid, on_shown=self._on_shown)
        if index == 0:
            self.refresh_priors(series_uid)

    def compare(self, series_uids: list[str]) -> None:
        """Show these series side by side, the first as the reference."""
        n = len(series_uids)
        self.set_layout("1x2" if n <= 2 else "2x2")
        self.rule = None
        for k, uid in enumerate(series_uids[:4]):
            self.open_series(k, uid)

    def hang(self, series_uid: str) -> LayoutRule | None:
        """Open ``series_uid`` as the first rule that fits it says: the layout, which of the
        patient's series go where, the window. Returns the rule (None: no rule fits; the
        series alone, beside an empty pane)."""
        catalog = self.session.require_catalog("Hanging a comparison")
        try:
            rules = load_rules()
        except ValueError as exc:  # a broken rules file: say so, go on with the built-in set
            self.statusBar().showMessage(str(exc), _STATUS_MS)
            from medview.app.hanging import BUILTIN_RULES

            rules = list(BUILTIN_RULES)
        facts = series_facts(catalog, series_uid)
        rule = self.rule = pick_rule(rules, facts)
        if rule is None:
            self.compare([series_uid])
            return None
        self.set_layout(rule.layout)
        for k, chosen in enumerate(assign_series(rule, facts,
                                                 patient_series(catalog, series_uid))):
            if chosen is not None:
                self.open_series(k, chosen.uid)
        self.statusBar().showMessage(f"Layout rule: {rule.name}", _STATUS_MS)
        return rule

    def _hang_reference(self) -> None:
        uid = self.comparison.reference.series_uid
        if uid:
            self._guard("Hanging a comparison", self.hang, uid)

    def set_layout(self, layout: str) -> None:
        self.layout_box.setCurrentIndex(list(LAYOUT_SHAPES).index(layout))
        self.view.set_layout(layout)

    def _on_shown(self, index: int) -> None:
        state = self.comparison.panes[index].state
        window = None if self.rule is None else window_for(self.rule, state.modality)
        if window is not None:
            self.comparison.set_own_window(index, window)

    # -- linking -----------------------------------------------------------------------
    def register(self, index: int) -> None:
        """Register pane ``index``'s series onto the reference (a Session job)."""
        job = self._guard("Registering", compare_jobs.register_pane, self.session,
                          self.comparison, index, on_registered=self._on_registered)
        if job is not None:
            self.statusBar().showMessage("Registering… (the pane links when done)")

    def _on_registered(self, index: int) -> None:
        self.statusBar().showMessage(f"Pane {index + 1} linked by a rigid registration",
                                     _STATUS_MS)

    def _guard(self, what: str, function, *args, **kw):
        """One error boundary per user action: the reason in the status bar."""
        try:
            return function(*args, **kw)
        except (ValueError, KeyError, RuntimeError) as exc:
            log.warning("%s: %s", what, exc)
            self.statusBar().showMessage(f"{what}: {exc}", _STATUS_MS)
            return None

    def _on_failed(self, error) -> None:
        if self.isVisible():
            self.statusBar().showMessage(str(error), _STATUS_MS)

    # -- the patient's studies ---------------------------------------------------------
    def refresh_priors(self, series_uid: str) -> None:
        """List the reference's patient's studies (this one and the priors) from the
        catalog."""
        self.priors.clear()
        catalog = self.session.catalog
        if catalog is None:
            return
        try:
            facts = patient_series(catalog, series_uid)
        except KeyError:
            return
        me = series_facts(catalog, series_uid)
        studies: dict[str, QTreeWidgetItem] = {}
        for f in facts:
            item = studies.get(f.study_uid)
            if item is None:
                label = f.study_description or "(study)"
                if f.study_uid == me.study_uid:
                    label += " (this study)"
                item = QTreeWidgetItem(self.priors, [label, format_date(f.study_date),
                                                     "catalog"])
                item.setData(0, _STUDY, f.study_uid)
                item.setExpanded(True)
                studies[f.study_uid] = item
            child = QTreeWidgetItem(item, [f"{f.modality} {f.description}".strip(),
                                           format_date(f.study_date), "catalog"])
            child.setData(0, _UID, f.uid)
            child.setData(0, _WHERE, "catalog")
            child.setData(0, _STUDY, f.study_uid)
        self.priors.fit_columns()

    def find_pacs_priors(self, nodes=None) -> object:
        """Ask the PACS nodes for the reference patient's other studies (a Session job);
        what is found is listed under "on NODE" (double-click retrieves it)."""
        uid = self.comparison.reference.series_uid
        if not uid:
            self.statusBar().showMessage("Open a series first", _STATUS_MS)
            return None
        return self._guard("Looking for priors", compare_priors.start_find_priors,
                           self.session, uid, self._on_priors_found,
                           nodes if nodes is not None else self._nodes)

    def _on_priors_found(self, found) -> None:
        studies, problems = found
        for study in studies:
            if study.source == "catalog":
                continue
            item = QTreeWidgetItem(self.priors, [study.description or "(study)",
                                                 format_date(study.date),
                                                 f"on {study.source}"])
            item.setData(0, _STUDY, study.study_uid)
            item.setData(0, _WHERE, study.source)
            for s in study.series:
                child = QTreeWidgetItem(item, [f"{s.modality} {s.description}".strip(),
                                               format_date(study.date), f"on {study.source}"])
                child.setData(0, _UID, s.uid)
                child.setData(0, _WHERE, study.source)
                child.setData(0, _STUDY, study.study_uid)
            item.setExpanded(True)
        self.priors.fit_columns()
        n = sum(s.source != "catalog" for s in studies)
        text = f"{n} prior stud{'y' if n == 1 else 'ies'} on PACS (double-click to retrieve)"
        self.statusBar().showMessage("; ".join([text, *problems]), _STATUS_MS)

    def _on_prior_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        where, uid = item.data(0, _WHERE), item.data(0, _UID)
        if where == "catalog" and uid:
            free = next((k for k, p in enumerate(self.comparison.panes) if p.volume is None),
                        len(self.comparison.panes) - 1)
            self.open_series(max(free, 1), uid)
        elif where:
            self.retrieve(where, item.data(0, _STUDY), uid or "")

    def retrieve(self, node_name: str, study_uid: str, series_uid: str = ""):
        """Bring a prior from PACS node ``node_name`` into the catalog, then list it."""
        from medview.pacs.nodes import get_node

        node = self._guard("Retrieving", get_node, node_name)
        if node is None:
            return None
        ref = self.comparison.reference.series_uid
        self.statusBar().showMessage(f"Retrieving from {node_name}…")
        return self._guard("Retrieving", compare_priors.retrieve_prior, self.session, node,
                           study_uid, series_uid,
                           on_done=lambda _report: self.refresh_priors(ref))

    def edit_rules(self) -> None:
        from medview.gui.hanging_dialog import HangingDialog

        HangingDialog(self).exec()

