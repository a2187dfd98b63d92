"""The PACS dock's results: Patient → Study → Series, with counts and what the local catalog
already holds (the same levels as the local browser)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

__all__ = ["COLUMNS", "PacsTree"]

COLUMNS = ("Patient / study / series", "Date", "Modality", "Images", "Local")
#: item data role of the (level, study_uid, series_uid) of a row
KEY_ROLE = Qt.ItemDataRole.UserRole
_LOCAL_COLOURS = {"all": QColor(70, 160, 90), "some": QColor(200, 150, 40)}


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def local_text(in_catalog: str, local: int, total: int | None) -> str:
    """What the "Local" column says: all here, some (how many), or nothing."""
    if in_catalog == "all":
        return "✓ in catalog"
    if in_catalog == "some":
        return f"{local} of {total if total is not None else '?'}"
    return ""


class PacsTree(QTreeWidget):
    """Query results; each row's key is ``(level, study_uid, series_uid)``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("pacs_results")
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setIndentation(12)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.patients: list = []

    def set_patients(self, patients: list) -> None:
        """Show ``patients`` (``medview.pacs.query.PacsPatient``), all expanded."""
        self.clear()
        self.patients = list(patients)
        for patient in self.patients:
            n_images = sum(st.instances or 0 for st in patient.studies)
            n_st = len(patient.studies)
            p_item = QTreeWidgetItem(self, [
                f"{patient.name or '(no name)'}  [{patient.patient_id}] — {n_st} "
                f"stud{'y' if n_st == 1 else 'ies'}",
                _date(patient.birth_date), "", str(n_images) if n_images else "", ""])
            p_item.setData(0, KEY_ROLE, ("patient", "", ""))
            for study in patient.studies:
                n_series = study.n_series if study.n_series is not None else len(study.series)
                s_item = QTreeWidgetItem(p_item, [
                    f"{study.description or '(study)'} — {n_series} series"
                    + (f", acc. {study.accession_number}" if study.accession_number else ""),
                    _date(study.date), "/".join(study.modalities),
                    "" if study.instances is None else str(study.instances), ""])
                s_item.setData(0, KEY_ROLE, ("study", study.uid, ""))
                s_item.setToolTip(0, study.uid)
                self._mark(s_item, study)
                for series in study.series:
                    number = "" if series.series_number is None else f"#{series.series_number} "
                    r_item = QTreeWidgetItem(s_item, [
                        f"{number}{series.description or '(series)'}", "", series.modality,
                        "" if series.instances is None else str(series.instances), ""])
                    r_item.setData(0, KEY_ROLE, ("series", study.uid, series.uid))
                    r_item.setToolTip(0, series.uid)
                    self._mark(r_item, series)
        self.expandAll()

    def _mark(self, item: QTreeWidgetItem, entry) -> None:
        col = len(COLUMNS) - 1
        item.setText(col, local_text(entry.in_catalog, entry.local_instances, entry.instances))
        colour = _LOCAL_COLOURS.get(entry.in_catalog)
        item.setForeground(col, QBrush(colour) if colour is not None else QBrush())

    def update_local(self, catalog) -> None:
        """Re-count what ``catalog`` holds of every shown study and series (after a
        retrieve) and update the marks."""
        for patient in self.patients:
            for study in patient.studies:
                total = 0
                for series in study.series:
                    series.local_instances = len(catalog.instances(series.uid))
                    total += series.local_instances
                if study.series:
                    study.local_instances = total
        for item in self.items():
            level, study_uid, series_uid = item.data(0, KEY_ROLE)
            entry = self.entry(study_uid, series_uid) if level != "patient" else None
            if entry is not None:
                self._mark(item, entry)

    def items(self) -> list[QTreeWidgetItem]:
        out = []
        stack = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            out.append(item)
            stack[:0] = [item.child(i) for i in range(item.childCount())]
        return out

    def entry(self, study_uid: str, series_uid: str = ""):
        """The PacsStudy or PacsSeries shown for these UIDs (None if not shown)."""
        for patient in self.patients:
            for study in patient.studies:
                if study.uid != study_uid:
                    continue
                if not series_uid:
                    return study
                return next((s for s in study.series if s.uid == series_uid), None)
        return None

    def item_for(self, study_uid: str, series_uid: str = "") -> QTreeWidgetItem | None:
        for item in self.items():
            level, st, se = item.data(0, KEY_ROLE)
            if level != "patient" and (st, se) == (study_uid, series_uid):
                return item
        return None

    def selected_key(self) -> tuple[str, str, str] | None:
        items = self.selectedItems()
        return tuple(items[0].data(0, KEY_ROLE)) if items else None
