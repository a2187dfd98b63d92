"""The main window's PACS parts: Settings ▸ PACS…, the PACS dock beside the local browser,
File ▸ Send to PACS…, File ▸ Back up to archive…, and opening a series while it is being
retrieved.

A retrieved series opens as soon as its first instances are in the catalog; when the
retrieve ends (complete, failed or cancelled) it is read again with everything that arrived,
on the same slice.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget

from medview.gui.pacs_dock import PacsPanel

__all__ = ["PacsActionsMixin"]

log = logging.getLogger(__name__)


class PacsActionsMixin:
    """Mixed into :class:`~medview.gui.main_window.MainWindow`."""

    def _build_pacs(self) -> None:
        self.pacs_panel = PacsPanel(self.tasks, lambda: self.catalog, self)
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
        panel.instances_arrived.connect(self._on_pacs_instances_arrived)
        panel.retrieve_finished.connect(self._on_pacs_retrieve_ended)
        panel.retrieve_stopped.connect(lambda _text: self._on_pacs_retrieve_ended(None))
        self._pacs_wanted: str | None = None  # "" = the first series of a study
        self._pacs_opened: str | None = None  # opened while arriving

    # -- nodes -------------------------------------------------------------------------
    def open_pacs_dialog(self):
        from medview.gui.pacs_dialog import PacsNodesDialog

        dialog = PacsNodesDialog(self.tasks, self)
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
        dialog = SendDialog(self.tasks, sources, self)
        dialog.open()
        self.send_dialog = dialog
        return dialog

    def open_backup_dialog(self):
        """File ▸ Back up to archive… (the open study, or every study in the catalog)."""
        from medview.gui.backup_dialog import BackupDialog

        vol = self.state.volume
        study = str(vol.metadata.get("StudyInstanceUID") or "") if vol is not None else ""
        dialog = BackupDialog(self.tasks, lambda: self.catalog, study, self)
        dialog.open()
        self.backup_dialog = dialog
        return dialog

    # -- open while arriving -----------------------------------------------------------
    def _on_pacs_retrieve_started(self, study_uid: str, series_uid: str) -> None:
        self._pacs_wanted = series_uid
        self._pacs_opened = None

    def _on_pacs_instances_arrived(self, study_uid: str, series_uid: str, n: int) -> None:
        if self._pacs_opened is not None or self._pacs_wanted not in ("", series_uid):
            return
        self._pacs_opened = series_uid
        self.refresh_browser()
        if self.open_series_asking(series_uid) is None and not self._is_shown(series_uid):
            self._pacs_opened = ""  # the reader kept the open series: do not reopen later

    def _on_pacs_retrieve_ended(self, report) -> None:
        self.refresh_browser()
        opened, self._pacs_opened = self._pacs_opened, None
        if opened:
            self.reload_series(opened)
        elif opened is None and report is not None and report.series_uid and report.paths:
            self.open_series_asking(report.series_uid)  # was all here already

    def _is_shown(self, series_uid: str) -> bool:
        vol = self.state.volume
        return vol is not None and vol.metadata.get("SeriesInstanceUID") == series_uid

    def reload_series(self, series_uid: str):
        """Read ``series_uid`` again from the catalog (it grew), on the same slice."""
        from medview.gui.main_window import _load_title

        keep = self.state.plane_slice(self.state.native_plane) \
            if self._is_shown(series_uid) else None
        self.volume_cache.remove(series_uid)  # a partial volume must not be reused
        if self._load_task is not None and self._load_task.title == _load_title(series_uid):
            self._load_task.cancel()
            self._load_task = None
            self.state.stop_loading()
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
