"""What the main window does around the series browser: thumbnails, the failed-files dock,
the series context menu (open, export, remove from catalog, DICOM tags) and drag and drop.

A mixin of :class:`~medview.gui.main_window.MainWindow`, kept apart so that the window's own
file stays about the layout, the import and the loading.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMenu, QMessageBox, QToolButton

from medview.app.messages import TaskError
from medview.app.series_export import EXPORT_FILTERS, export_suffix
from medview.gui.failed_files import FailedFilesPanel
from medview.gui.tag_browser import TagBrowserDialog
from medview.gui.tasks import Task
from medview.gui.thumbnail_loader import ThumbnailLoader, thumbnail_icon

__all__ = ["BrowserActionsMixin", "dropped_paths"]

log = logging.getLogger(__name__)

_STATUS_MS = 8000


def dropped_paths(mime) -> list[Path]:
    """The local files and folders in a drag's QMimeData (other URLs are ignored)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class BrowserActionsMixin:
    """Mixed into MainWindow (before QMainWindow); call :meth:`_build_browser_extras` once
    the browser dock and the menus exist."""

    #: a series was removed from the catalog (its UID), browser refreshed
    series_removed = Signal(str)
    #: an export finished (the path written)
    export_finished = Signal(object)
    export_failed = Signal(object)

    def _build_browser_extras(self, *, thumbnail_dir: str | os.PathLike | None = None) -> None:
        self.session.set_thumbnail_cache(thumbnail_dir)
        self.thumbnails = ThumbnailLoader(self.session, self)
        self.thumbnails.thumbnail_ready.connect(self._on_thumbnail_ready)
        self.browser.series_menu_requested.connect(self._on_series_menu)
        self.import_finished.connect(self._on_import_result)
        self.series_menu: QMenu | None = None
        self.confirm_box: QMessageBox | None = None
        self.tag_dialog: TagBrowserDialog | None = None
        self._bind_browser_session()

        self.failed_panel = FailedFilesPanel(self)
        self.failed_dock = QDockWidget("Failed files", self)
        self.failed_dock.setObjectName("failed_dock")
        self.failed_dock.setWidget(self.failed_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.failed_dock)
        self.failed_panel.count_changed.connect(
            lambda n: self.failed_dock.setWindowTitle(f"Failed files ({n})"))
        self.failed_dock.hide()  # shown on demand; its title counts the files

        # Ctrl+E is File ▸ Export… (what is open: labels, fused image, measurements, view)
        self.export_action = QAction("Export &Selected Series…", self)
        self.export_action.setObjectName("action_export_series")
        self.export_action.triggered.connect(self._export_selected)
        self.show_failed_action = QAction("Show &Failed Files", self)
        self.show_failed_action.setObjectName("action_show_failed_files")
        self.show_failed_action.triggered.connect(self.show_failed_files)
        file_menu = self.menuBar().actions()[0].menu()
        first = file_menu.actions()[1] if len(file_menu.actions()) > 1 else None
        file_menu.insertAction(first, self.export_action)
        file_menu.insertAction(first, self.show_failed_action)
        toggle = self.failed_dock.toggleViewAction()
        toggle.setObjectName("action_view_failed_files")  # its text counts the files
        for action in self.menuBar().actions():
            if action.menu() is not None and action.text().replace("&", "") == "View":
                action.menu().addAction(toggle)
        # the import-finished message offers the list through this button
        self.failed_button = QToolButton(self)
        self.failed_button.setObjectName("failed_files_button")
        self.failed_button.setAutoRaise(True)
        self.failed_button.setToolTip("Show the files that could not be read, and why")
        self.failed_button.clicked.connect(self.show_failed_files)
        self.statusBar().addPermanentWidget(self.failed_button)
        self.failed_button.setVisible(False)
        self.setAcceptDrops(True)
        self.refresh_failed_files()

    # -- refresh -----------------------------------------------------------------------
    def _after_browser_refresh(self) -> None:
        """Thumbnails for the series listed without one; the failed files again."""
        if self.catalog is not None:
            missing = [u for u in self.browser.series_uids() if self.browser.thumbnail(u) is None]
            self.thumbnails.request(missing)
        self.refresh_failed_files()

    def _on_import_result(self, result) -> None:
        # the imported series may have changed files: their key tells (a cache hit if not)
        if self.catalog is not None:
            self.thumbnails.request(result.series_uids)

    def refresh_failed_files(self) -> None:
        try:
            errors = self.session.failed_files()
        except Exception as exc:  # error boundary: a broken catalog must not stop the window
            log.exception("reading the failed files failed")
            self._show_error(TaskError("Reading the failed files", exc, repr(exc)))
            return
        self.failed_panel.set_errors(errors)

    def _offer_failed_files(self, n_failed: int) -> None:
        """After an import: a status-bar button to the failed files when some failed."""
        self.refresh_failed_files()
        self.failed_button.setText(f"{n_failed} file(s) failed — show")
        self.failed_button.setVisible(n_failed > 0)

    def show_failed_files(self) -> None:
        self.failed_dock.show()
        self.failed_dock.raise_()

    def _on_thumbnail_ready(self, series_uid: str, array) -> None:
        self.browser.set_thumbnail(series_uid, thumbnail_icon(array))

    # -- context menu ------------------------------------------------------------------
    def _on_series_menu(self, series_uid: str, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.setObjectName("series_menu")
        menu.addAction("Open", lambda: self.open_series(series_uid))
        menu.addAction("Compare with…", lambda: self.compare_with(series_uid))
        menu.addAction("Export…", lambda: self.choose_export_file(series_uid))
        menu.addAction("Show DICOM Tags…", lambda: self.show_tags(series_uid))
        menu.addSeparator()
        menu.addAction("Remove from Catalog…", lambda: self.ask_remove_series(series_uid))
        if self.series_menu is not None:
            self.series_menu.deleteLater()
        self.series_menu = menu
        menu.popup(global_pos)

    def compare_with(self, series_uid: str):
        """Series side by side (:mod:`medview.gui.compare_actions`)."""
        from medview.gui.compare_actions import compare_with

        return compare_with(self, series_uid)

    def menu_action(self, text: str) -> QAction | None:
        """The action of the last context menu whose text starts with ``text``."""
        if self.series_menu is None:
            return None
        for action in self.series_menu.actions():
            if action.text().startswith(text):
                return action
        return None

    # -- export ------------------------------------------------------------------------
    def _export_selected(self) -> None:
        uid = self.browser.selected_series_uid()
        if uid is None:
            self.statusBar().showMessage("Select a series in the browser to export it.",
                                         _STATUS_MS)
            return
        self.choose_export_file(uid)

    def choose_export_file(self, series_uid: str) -> None:
        """Ask for a file name, then :meth:`export_series`."""
        start = self.settings_value("export/last_folder", "")  # SettingsMixin
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export the series", str(Path(start or ".") / "series.nii.gz"),
            ";;".join(EXPORT_FILTERS))
        if path:
            path = export_suffix(path, chosen)
            self.set_settings_value("export/last_folder", str(path.parent))
            self.export_series(series_uid, path)

    def export_series(self, series_uid: str, path: str | os.PathLike) -> Task | None:
        """Write catalog series ``series_uid`` to ``path`` in the background (atomic)."""
        if self._catalog_or_error("Exporting") is None:
            return None
        task = self.session.export_series(series_uid, path)
        if task is None:
            self.statusBar().showMessage("An export is already running; wait or cancel it.",
                                         _STATUS_MS)
        return task

    def _bind_browser_session(self) -> None:
        self.session.series_exported.connect(self._on_export_finished)
        self.session.series_export_failed.connect(self._on_export_failed)
        self.session.series_export_cancelled.connect(lambda: self._on_cancelled("Export"))

    @property
    def _export_task(self) -> Task | None:
        return self.session.series_export_job

    def _on_export_finished(self, path: Path) -> None:
        self.statusBar().showMessage(f"Exported {path}", _STATUS_MS)
        self.export_finished.emit(path)

    def _on_export_failed(self, error: TaskError) -> None:
        self._show_error(error)
        self.export_failed.emit(error)

    # -- remove from catalog -----------------------------------------------------------
    def ask_remove_series(self, series_uid: str) -> QMessageBox:
        """Ask for confirmation (the files stay on disk), then :meth:`remove_series`."""
        if self.confirm_box is not None:
            self.confirm_box.close()
        item = self.browser.item_for_series(series_uid)
        what = item.text(0) if item is not None else series_uid
        box = QMessageBox(QMessageBox.Icon.Question, "Remove from catalog",
                          f"Remove the series “{what}” from the catalog?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setInformativeText("Its files stay on disk; importing them again brings it back.")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self.remove_series(series_uid)

        box.finished.connect(answered)
        box.open()
        self.confirm_box = box
        return box

    def remove_series(self, series_uid: str) -> int | None:
        """Forget ``series_uid`` in the catalog (files untouched); the number of instances
        removed, or None (with a message) on error."""
        if self._catalog_or_error("Removing the series") is None:
            return None
        try:
            n = self.session.remove_series(series_uid)
        except Exception as exc:  # error boundary: a locked catalog is a message
            self._show_error(TaskError("Removing the series", exc, repr(exc)))
            return None
        self.browser.forget_series(series_uid)
        self.refresh_browser()
        self.statusBar().showMessage(
            f"Removed a series of {n} file(s) from the catalog (files kept).", _STATUS_MS)
        self.series_removed.emit(series_uid)
        return n

    # -- DICOM tags --------------------------------------------------------------------
    def show_tags(self, series_uid: str) -> TagBrowserDialog | None:
        """Open the tag browser on the instances of ``series_uid`` (the middle one first)."""
        if self._catalog_or_error("Showing the DICOM tags") is None:
            return None
        try:
            paths = self.session.instance_paths(series_uid)
        except Exception as exc:  # error boundary
            self._show_error(TaskError("Showing the DICOM tags", exc, repr(exc)))
            return None
        item = self.browser.item_for_series(series_uid)
        title = item.text(0) if item is not None else series_uid
        if self.tag_dialog is not None:
            self.tag_dialog.close()
            self.tag_dialog.deleteLater()
        dialog = TagBrowserDialog(paths, title, self)
        if len(paths) > 1:
            dialog.show_instance(len(paths) // 2)
        dialog.show()
        self.tag_dialog = dialog
        return dialog

    # -- drag and drop -----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_folder(paths if len(paths) > 1 else paths[0])
