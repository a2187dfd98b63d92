"""The series browser: the catalog as a Patient → Study → Series tree."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from medview.app.library import PatientEntry, SeriesEntry, StudyEntry
from medview.gui.overlays import format_date, format_person_name

__all__ = ["SERIES_MIME", "SeriesBrowser", "series_mime"]

COLUMNS = ("Patient / Study / Series", "ID", "Date", "Modality", "Images")
UID_ROLE = Qt.ItemDataRole.UserRole
KIND_ROLE = Qt.ItemDataRole.UserRole + 1
#: what a series dragged from the browser carries: its SeriesInstanceUID (ASCII)
SERIES_MIME = "application/x-medview-series-uid"


def series_mime(series_uid: str) -> QMimeData:
    """The drag data of series ``series_uid`` (dropped on a comparison pane)."""
    mime = QMimeData()
    mime.setData(SERIES_MIME, series_uid.encode("ascii"))
    mime.setText(series_uid)
    return mime
#: lower-case text the search box matches (name, ID, dates as shown and as DICOM, …)
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2
#: series rows show their thumbnail in the ID column, which is empty for them: the
#: description keeps the width of the first column
THUMBNAIL_COLUMN = 1


def _search_text(*values) -> str:
    return " ".join(str(v) for v in values if v).lower()


class SeriesBrowser(QTreeWidget):
    """Patients, their studies and their series; double-click (or Enter) opens a series.

    Signals
    -------
    series_activated(str)
        The SeriesInstanceUID the user asked to open.
    series_menu_requested(str, QPoint)
        Right-click on a series: its UID and the global position for a context menu.
    """

    series_activated = Signal(str)
    series_menu_requested = Signal(str, QPoint)

    #: size the thumbnails are shown at (they are made at most this large)
    ICON_PX = 64

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("series_browser")
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # series rows carry a thumbnail, patient and study rows do not
        self.setUniformRowHeights(False)
        self.setIconSize(QSize(self.ICON_PX, self.ICON_PX))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu)
        self.setAlternatingRowColors(True)
        self.setIndentation(12)  # three levels deep: keep the series' description visible
        self.setSortingEnabled(False)  # the catalog order (date, series number) is the order
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(2, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        # patient IDs can be long: a fixed, user-resizable column (full ID in the tooltip)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, max(90, self.ICON_PX + 16))
        header.setMinimumSectionSize(40)
        self.itemActivated.connect(self._on_item_activated)
        # a series is dragged onto a comparison pane (medview.gui.compare_view)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._icons: dict[str, QIcon] = {}
        self._filter = ""

    def set_patients(self, patients: list[PatientEntry]) -> None:
        """Show ``patients`` (replacing what was shown), keeping the selected series."""
        selected = self.selected_series_uid()
        self.clear()
        self._items = {}
        for patient in patients:
            p_item = QTreeWidgetItem(self, [
                format_person_name(patient.name) or "(no name)", patient.patient_id,
                "", "", str(patient.image_count),
            ])
            p_item.setData(0, KIND_ROLE, "patient")
            p_item.setData(0, SEARCH_ROLE, _search_text(
                patient.name, format_person_name(patient.name), patient.patient_id,
                patient.birth_date, format_date(patient.birth_date)))
            tip = f"{patient.name or '(no name)'}\nID {patient.patient_id or '-'}"
            if patient.birth_date:
                tip += f"\nborn {format_date(patient.birth_date)}"
            p_item.setToolTip(0, tip)
            p_item.setToolTip(1, tip)
            for study in patient.studies:
                self._add_study(p_item, study)
            p_item.setExpanded(True)
        self._apply_filter()
        if selected in self._items:
            self.setCurrentItem(self._items[selected])

    def _add_study(self, parent: QTreeWidgetItem, study: StudyEntry) -> None:
        s_item = QTreeWidgetItem(parent, [
            study.description or "(no study description)", study.accession_number,
            format_date(study.date), " ".join(study.modalities), str(study.image_count),
        ])
        s_item.setData(0, KIND_ROLE, "study")
        s_item.setData(0, UID_ROLE, study.study_uid)
        s_item.setData(0, SEARCH_ROLE, _search_text(
            study.description, study.accession_number, study.date, format_date(study.date),
            *study.modalities))
        s_item.setToolTip(0, f"Study {study.study_uid}")
        for series in study.series:
            self._add_series(s_item, series)
        s_item.setExpanded(True)

    def _add_series(self, parent: QTreeWidgetItem, series: SeriesEntry) -> None:
        number = f"#{series.number} " if series.number is not None else ""
        item = QTreeWidgetItem(parent, [
            f"{number}{series.description or '(no description)'}", "",
            format_date(series.date), series.modality, str(series.image_count),
        ])
        item.setData(0, KIND_ROLE, "series")
        item.setData(0, UID_ROLE, series.series_uid)
        item.setData(0, SEARCH_ROLE, _search_text(
            series.description, series.modality, series.date, format_date(series.date),
            f"#{series.number}" if series.number is not None else ""))
        item.setToolTip(0, f"Series {series.series_uid}\nDouble-click to open")
        item.setTextAlignment(4, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(1, item.toolTip(0))
        icon = self._icons.get(series.series_uid)
        if icon is not None:
            item.setIcon(THUMBNAIL_COLUMN, icon)
        self._items[series.series_uid] = item

    def mimeData(self, items) -> QMimeData:
        uids = [i.data(0, UID_ROLE) for i in items if i.data(0, KIND_ROLE) == "series"]
        return series_mime(uids[0]) if uids else super().mimeData(items)

    # -- thumbnails --------------------------------------------------------------------
    def set_thumbnail(self, series_uid: str, icon: QIcon) -> None:
        """Show ``icon`` beside the series (kept across :meth:`set_patients`)."""
        self._icons[series_uid] = icon
        item = self._items.get(series_uid)
        if item is not None:
            item.setIcon(THUMBNAIL_COLUMN, icon)

    def thumbnail(self, series_uid: str) -> QIcon | None:
        """The thumbnail shown for the series, or None while there is none."""
        item = self._items.get(series_uid)
        if item is None or item.icon(THUMBNAIL_COLUMN).isNull():
            return None
        return item.icon(THUMBNAIL_COLUMN)

    def forget_series(self, series_uid: str) -> None:
        """Drop what the browser remembers of a series (its thumbnail) after a removal."""
        self._icons.pop(series_uid, None)

    # -- search ------------------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        """Show only the series matching ``text`` (the search box), with their study and
        patient.

        Case-insensitive; every word must occur in the series' own fields or in those of its
        study or patient (name, ID, date, modality, description), so "smith ct" finds the CT
        series of patient Smith. An empty text shows everything.
        """
        self._filter = str(text or "").strip().lower()
        self._apply_filter()

    def filter_text(self) -> str:
        return self._filter

    def _apply_filter(self) -> None:
        words = self._filter.split()
        for p in range(self.topLevelItemCount()):
            p_item = self.topLevelItem(p)
            p_text = p_item.data(0, SEARCH_ROLE) or ""
            p_shown = False
            for s in range(p_item.childCount()):
                s_item = p_item.child(s)
                s_text = p_text + " " + (s_item.data(0, SEARCH_ROLE) or "")
                s_shown = False
                for k in range(s_item.childCount()):
                    item = s_item.child(k)
                    text = s_text + " " + (item.data(0, SEARCH_ROLE) or "")
                    shown = all(word in text for word in words)
                    item.setHidden(not shown)
                    s_shown = s_shown or shown
                if s_item.childCount() == 0:
                    s_shown = all(word in s_text for word in words)
                s_item.setHidden(not s_shown)
                p_shown = p_shown or s_shown
            if p_item.childCount() == 0:
                p_shown = all(word in p_text for word in words)
            p_item.setHidden(not p_shown)

    def visible_series_uids(self) -> list[str]:
        """The series the filter lets through, in display order."""
        return [uid for uid, item in self._items.items() if not item.isHidden()]

    # -- queries -----------------------------------------------------------------------
    def series_uids(self) -> list[str]:
        """Every series shown, in display order."""
        return list(self._items)

    def item_for_series(self, series_uid: str) -> QTreeWidgetItem | None:
        return self._items.get(series_uid)

    def selected_series_uid(self) -> str | None:
        item = self.currentItem()
        if item is None or item.data(0, KIND_ROLE) != "series":
            return None
        return item.data(0, UID_ROLE)

    def select_series(self, series_uid: str) -> None:
        item = self._items.get(series_uid)
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def _on_context_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None or item.data(0, KIND_ROLE) != "series":
            return
        self.setCurrentItem(item)
        self.series_menu_requested.emit(item.data(0, UID_ROLE),
                                        self.viewport().mapToGlobal(pos))

    def _on_item_activated(self, item: QTreeWidgetItem, column: int) -> None:
        if item.data(0, KIND_ROLE) == "series":
            self.series_activated.emit(item.data(0, UID_ROLE))
