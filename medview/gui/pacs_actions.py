"""The main window's PACS parts: Settings ▸ PACS…, the PACS dock beside the local browser,
File ▸ Send to PACS…, File ▸ Back up to archive…, and opening a series while it is being
retrieved.

A retrieved series shows as soon as its first instance is read and fills in as the others
arrive, each on the slice its position gives (:mod:`medview.gui.pacs_arriving`); when the
retrieve ends it is loaded from the catalog and swapped in on the same grid. A PACS that lists
no positions: the series opens with what is in the catalog and is read again at the end.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget

from medview.app.session import load_title
from medview.dicom.series.arriving import ArrivingSeries
from medview.gui.pacs_dock import PacsPanel

__all__ = ["PacsActionsMixin"]

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def _is_seg_listing(table: dict, series_uid: str) -> bool:
    """A SEG series opens as a label map over its source, not as an image."""
    return any(i.sop_class == SEG_STORAGE for i in table.values() if i.series_uid == series_uid)

log = logging.getLogger(__name__)


class PacsActionsMixin:
    """Mixed into :class:`~medview.gui.main_window.MainWindow`."""

    def _build_pacs(self) -> None:
        self.pacs_panel = PacsPanel(self.session, self)
        self.pacs_dock = QDockWidget("PACS", self)
        self.pacs_dock.setObjectName("pacs_dock")
        self.pacs_dock.setWidget(self.pacs_panel)
        self.pacs_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                   | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                                   | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.pacs_dock)
        self.tabifyDockWidget(self.browser_dock, self.pacs_dock)
        self.browser_dock.raise_()  # the local browser stays in front
        self._menu("View").addAction(self.pacs_dock.toggleViewAction())

        self.pacs_nodes_action = QAction("&PACS…", self)
        self.pacs_nodes_action.setObjectName("action_pacs_nodes")
        self.pacs_nodes_action.setToolTip("DICOM and DICOMweb nodes to query, retrieve from "
                                          "and send to")
        self.pacs_nodes_action.triggered.connect(self.open_pacs_dialog)
        self._menu("Settings").addAction(self.pacs_nodes_action)

        self.send_pacs_action = QAction("Send to &PACS…", self)
        self.send_pacs_action.setObjectName("action_send_pacs")
        self.send_pacs_action.setToolTip("Send the open series or the last DICOM export to a "
                                         "PACS node")
        self.send_pacs_action.triggered.connect(self.open_send_dialog)
        self._menu("File").insertAction(self.save_png_action, self.send_pacs_action)
        self.backup_action = QAction("&Back up to archive…", self)
        self.backup_action.setObjectName("action_backup")
        self.backup_action.setToolTip("Verified backup of studies and medview's results to a "
                                      "DICOMweb archive")
        self.backup_action.triggered.connect(self.open_backup_dialog)
        self._menu("File").insertAction(self.save_png_action, self.backup_action)

        self.last_export: list[Path] = []
        self.exported.connect(self._remember_export)
        panel = self.pacs_panel
        panel.retrieve_started.connect(self._on_pacs_retrieve_started)
        panel.instances_listed.connect(self._on_pacs_listed)
        panel.files_arrived.connect(self._on_pacs_files_arrived)
        panel.retrieve_finished.connect(self._on_pacs_retrieve_ended)
        panel.retrieve_stopped.connect(lambda _text: self._on_pacs_retrieve_ended(None))
        self._pacs_wanted: str | None = None  # "" = the first series of a study
        self._pacs_opened: str | None = None  # opened while arriving
        self._pacs_listed: dict | None = None  # the retrieve's instance list
        self._pacs_files: dict[str, list] = {}  # series UID → files arrived so far
        self.pacs_reader = None  # an ArrivingReader while a series fills in
        self._pacs_before = None  # what was shown when it started
        self._pacs_provisional: str | None = None  # opened before the PACS listed it

    # -- nodes -------------------------------------------------------------------------
    def open_pacs_dialog(self):
        from medview.gui.pacs_dialog import PacsNodesDialog

        dialog = PacsNodesDialog(self.session, self)
        dialog.changed.connect(self.pacs_panel.refresh_nodes)
        dialog.open()
        self.pacs_dialog = dialog
        return dialog

    # -- send --------------------------------------------------------------------------
    def _remember_export(self, written) -> None:
        from medview.gui.pacs_send import dicom_outputs

        dicom = dicom_outputs(written)
        if dicom:
            self.last_export = dicom
            self.statusBar().showMessage(
                f"Exported {dicom[0]} — File ▸ Send to PACS… sends it to a PACS node", 10_000)

    def add_send_button(self, export_dialog) -> None:
        """A "Send to PACS…" button in the Export dialog (it closes it and opens the send
        dialog: the open series, or the DICOM export just written)."""
        from PySide6.QtWidgets import QDialogButtonBox

        box = export_dialog.findChild(QDialogButtonBox)
        if box is None:
            return
        button = box.addButton("Send to PACS…", QDialogButtonBox.ButtonRole.ActionRole)
        button.setObjectName("send_to_pacs")

        def send() -> None:
            export_dialog.reject()
            self.open_send_dialog()

        button.clicked.connect(send)

    def send_sources(self) -> list[tuple[str, list[Path]]]:
        """What Send to PACS can send now: the open series' files, the last DICOM export."""
        sources = []
        vol = self.state.volume
        series = self.layers.series.value if getattr(self, "layers", None) is not None \
            and self.layers.series is not None else vol
        files = [Path(f) for f in (series.metadata.get("source_files") or [])] \
            if series is not None else []
        if files:
            # with the annotations and key images saved on it (SR, KOS)
            files += self.session.series_documents(
                str(series.metadata.get("SeriesInstanceUID") or ""))
            sources.append(("The open series", files))
        if self.last_export:
            names = ", ".join(p.name for p in self.last_export[:2])
            sources.append((f"The last export ({names})", list(self.last_export)))
        return sources

    def open_send_dialog(self):
        from medview.gui.pacs_send import SendDialog

        sources = self.send_sources()
        if not sources:
            self._show_message("Nothing to send", "Open a series, or export a SEG or a "
                               "DICOM series first.")
            return None
        dialog = SendDialog(self.session, sources, self)
        dialog.open()
        self.send_dialog = dialog
        return dialog

    def open_backup_dialog(self):
        """File ▸ Back up to archive… (the open study, or every study in the catalog)."""
        from medview.gui.backup_dialog import BackupDialog

        vol = self.state.volume
        study = str(vol.metadata.get("StudyInstanceUID") or "") if vol is not None else ""
        dialog = BackupDialog(self.session, study, self)
        dialog.open()
        self.backup_dialog = dialog
        return dialog

    # -- open while arriving -----------------------------------------------------------
    def _on_pacs_retrieve_started(self, study_uid: str, series_uid: str) -> None:
        self._stop_pacs_reader()
        self._pacs_wanted = series_uid
        self._pacs_opened = None
        self._pacs_provisional = None
        self._pacs_listed = None
        self._pacs_files = {}

    def _on_pacs_listed(self, table: dict) -> None:
        self._pacs_listed = table
        self._open_arriving()

    def _on_pacs_files_arrived(self, batch: list) -> None:
        for path, uids in batch:
            self._pacs_files.setdefault(uids[1], []).append(path)
        if self.pacs_reader is not None:
            self.pacs_reader.add(self._pacs_files.get(self.pacs_reader.series.series_uid, []))
        self._open_arriving()

    def _open_arriving(self) -> None:
        """Open the wanted series once its first files are here: laid out whole once the
        PACS listed its instances; until then (a slow listing) what is in the catalog."""
        if self._pacs_opened is not None or self._pacs_wanted is None:
            return
        series_uid = self._pacs_wanted or next(iter(self._pacs_files), "")
        if not series_uid or not self._pacs_files.get(series_uid):
            return  # wait: nothing of it here yet
        if self._pacs_listed is None:
            if self._pacs_provisional is None:  # the first image need not wait for the list
                self._pacs_provisional = series_uid
                self._pacs_before = self.state.volume
                self.refresh_browser()
                if self.open_series_asking(series_uid) is None \
                        and not self._is_shown(series_uid):
                    self._pacs_opened = ""  # the reader kept the open series
            return
        from medview.gui.pacs_arriving import ArrivingReader

        self._pacs_opened = series_uid
        geometry = {sop: (i.position, i.orientation) for sop, i in self._pacs_listed.items()
                    if i.series_uid == series_uid and i.frames <= 1}
        series = ArrivingSeries.plan(series_uid, geometry) \
            if not _is_seg_listing(self._pacs_listed, series_uid) else None
        if series is None:  # no usable layout: open what is here, read it again at the end
            if self._pacs_provisional is None:
                self.refresh_browser()
                if self.open_series_asking(series_uid) is None \
                        and not self._is_shown(series_uid):
                    self._pacs_opened = ""  # the reader kept the open series
            return
        if self._pacs_provisional is None:
            self._pacs_before = self.state.volume  # another volume shown later: the reader's
            self.refresh_browser()
            if not self._is_shown(series_uid) \
                    and not self.unsaved.confirm("opening another series"):
                self._pacs_opened = ""
                return
        self.pacs_reader = ArrivingReader(series, self._show_arriving, self._more_arriving,
                                          self)
        self.pacs_reader.add(self._pacs_files[series_uid])

    def _show_arriving(self, k: int) -> None:
        from medview.app.windowing import default_window

        series = self.pacs_reader.series
        volume = series.volume
        ours = self.state.volume is self._pacs_before or self._is_shown(series.series_uid)
        task = self.session.load_job
        if task is not None and task.title == load_title(series.series_uid):
            self.session.stop_open()  # the provisional open of what was here: the whole layout
        elif task is not None:
            ours = False
        if not ours:
            self._pacs_opened = ""  # the reader opened another series meanwhile: theirs stays
            self._stop_pacs_reader()
            return
        self.volume_cache.remove(series.series_uid)  # a provisional partial volume
        self.set_cine(False)
        self.state.set_volume(volume, window=default_window(volume, z=k))
        self.state.set_loading(series.loaded)
        self.state.set_plane_slice(self.state.native_plane, k)  # the slice that is in
        if self.view_grid.layout_name == "single":  # on its acquired plane, as an open does
            self.view_grid.set_active_plane(self.state.native_plane)
        if self._pacs_provisional is None:
            self.first_image_shown.emit(volume)

    def _more_arriving(self, replaced: bool) -> None:
        series = self.pacs_reader.series
        if self.state.loaded_mask is not series.loaded and not replaced:
            return  # another series is shown now
        if replaced:  # a wider dtype, same grid
            self.state.replace_volume(series.volume, window=self.state.window)
            self.state.set_loading(series.loaded)
        else:
            self.state.notify_data_changed()

    def _stop_pacs_reader(self) -> ArrivingSeries | None:
        reader, self.pacs_reader = self.pacs_reader, None
        if reader is None:
            return None
        reader.stop()
        reader.deleteLater()
        return reader.series

    def _on_pacs_retrieve_ended(self, report) -> None:
        self.refresh_browser()
        opened, self._pacs_opened = self._pacs_opened, None
        if opened is None and self._pacs_provisional:
            opened = self._pacs_provisional  # opened before the listing came, which never did
        self._pacs_wanted = self._pacs_provisional = None
        series = self._stop_pacs_reader()
        if series is not None:
            self._finish_arriving(series)
        elif opened:
            self.reload_series(opened)
        elif opened is None and report is not None and report.series_uid and report.paths:
            self.open_series_asking(report.series_uid)  # was all here already

    def _finish_arriving(self, series: ArrivingSeries) -> None:
        """Load the series from the catalog and swap it in (same grid: the view stays)."""
        uid = series.series_uid
        if series.volume is None or self.state.volume is not series.volume:
            if self._is_shown(uid):  # its provisional open: read it again, complete
                self.reload_series(uid)
            elif self.state.volume is self._pacs_before and self.session.load_job is None:
                self.open_series(uid)  # nothing of it was shown yet, nor anything else
            return
        self.session.open_series(uid, reread=True)

    def _is_shown(self, series_uid: str) -> bool:
        vol = self.state.volume
        return vol is not None and vol.metadata.get("SeriesInstanceUID") == series_uid

    def reload_series(self, series_uid: str):
        """Read ``series_uid`` again from the catalog (it grew), on the same slice."""
        keep = self.state.plane_slice(self.state.native_plane) \
            if self._is_shown(series_uid) else None
        self.volume_cache.remove(series_uid)  # a partial volume must not be reused
        job = self.session.load_job
        if job is not None and job.title == load_title(series_uid):
            self.session.stop_open()
        if keep is not None:
            def restore(volume) -> None:
                if volume.metadata.get("SeriesInstanceUID") != series_uid:
                    return
                self.series_opened.disconnect(restore)
                plane = self.state.native_plane
                n = self.state.plane_n_slices(plane)
                self.state.set_plane_slice(plane, min(keep, max(n - 1, 0)))

            self.series_opened.connect(restore)
        return self.open_series(series_uid)
