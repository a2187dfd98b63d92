"""The workstation window: series browser (left), the views (centre: one view or a 2×2 grid
of axial, coronal and sagittal), tools, status and progress.

What the user does (import, open, cache, export, label maps, "Run on") is done by a
:class:`~medview.app.session.Session` without Qt; the window calls its methods and binds to
its events, which arrive on the GUI thread (:mod:`medview.gui.tasks`). Each user action has
one error boundary: a failure becomes a message box (with the traceback as details) and a
status message, never a crash.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.messages import TaskError
from medview.app.session import Session
from medview.app.state import ViewerState
from medview.app.tasks import format_traceback as _format_tb
from medview.core.volume import Volume
from medview.gui.annotation_actions import AnnotationActions
from medview.gui.audit_dialog import install_audit_action
from medview.gui.browser_actions import BrowserActionsMixin
from medview.gui.export_actions import ExportActionsMixin
from medview.gui.help_menu import install_help_menu
from medview.gui.overlays import format_sample
from medview.gui.pacs_actions import PacsActionsMixin
from medview.gui.phases import PhaseNavigator
from medview.gui.series_browser import SeriesBrowser
from medview.gui.share_actions import ShareActionsMixin
from medview.gui.slab_controls import install_view_tools
from medview.gui.slice_viewer import SliceViewer
from medview.gui.tasks import Task, TaskRunner
from medview.gui.unsaved import UnsavedGuard
from medview.gui.view_grid import ViewGrid
from medview.gui.window_docks import DocksMixin
from medview.gui.window_menus import MenusMixin
from medview.gui.window_session import SessionViewMixin
from medview.gui.window_settings import SettingsMixin

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

STATUS_MESSAGE_MS = 8000


class MainWindow(SessionViewMixin, ExportActionsMixin, BrowserActionsMixin,
                 PacsActionsMixin, ShareActionsMixin, SettingsMixin, DocksMixin,
                 MenusMixin, QMainWindow):
    """The main window on one catalog.

    Parameters
    ----------
    catalog_path : path, optional
        The catalog file; default the user's (``$MEDVIEW_DB`` or the data folder).
    settings_path : path, optional
        An ini file for the window's settings; default ``$MEDVIEW_SETTINGS`` or the user's
        (:mod:`medview.gui.window_settings`).
    thumbnail_dir : path, optional
        Where thumbnails are cached; default ``$MEDVIEW_CACHE_DIR`` or the user cache folder.

    Signals
    -------
    first_image_shown(object)
        The first slice of a series being loaded is shown (its Volume, still filling in).
    series_opened(object)
        A series' Volume is shown complete (after the viewer updated).
    series_failed(object)
        Opening a series failed (a :class:`~medview.app.messages.TaskError`).
    import_finished(object)
        An import finished (a :class:`~medview.app.library.ImportResult`), browser refreshed.
    import_failed(object)
        An import failed (a :class:`~medview.app.messages.TaskError`).
    exported(list)
        File ▸ Export wrote these paths.
    exported_failed(object)
        An export failed (a TaskError); nothing was left half-written.
    seg_opened(object)
        A DICOM SEG opened from the browser is shown as the label map (the LabelMap).
    """

    first_image_shown = Signal(object)
    series_opened = Signal(object)
    series_failed = Signal(object)
    import_finished = Signal(object)
    import_failed = Signal(object)
    exported = Signal(list)
    exported_failed = Signal(object)
    seg_opened = Signal(object)

    def __init__(self, catalog_path: str | os.PathLike | None = None,
                 parent: QWidget | None = None, *,
                 settings_path: str | os.PathLike | None = None,
                 thumbnail_dir: str | os.PathLike | None = None):
        super().__init__(parent)
        self._init_settings(settings_path)
        self.setWindowTitle("medview")
        self.state = ViewerState()
        self.tasks = TaskRunner(self)
        #: what the user does, without Qt; its jobs run on self.tasks (events on this thread)
        self.session = Session(catalog_path, runner=self.tasks.jobs,
                               cache_cap_bytes=self._volume_cache_cap())
        self.session.first_paint_by_listener = True  # _on_first_image lets the reader go on
        self.catalog_path = self.session.catalog_path
        #: the one "Run on" choice of the chain panel, the Segmentation and the Fusion dock
        self.run_on = self.session.run_on
        self.destroyed.connect(lambda *a, c=self.run_on: c.close())
        self._import_open_first = False
        self._progress_task: Task | None = None
        self.last_error: TaskError | None = None
        self.error_box: QMessageBox | None = None

        self.view_grid = ViewGrid(self.state, self)
        self.views = self.view_grid.views
        self.setCentralWidget(self.view_grid)
        self.cine_timer = QTimer(self)
        self.cine_timer.timeout.connect(self._cine_step)

        self.browser = SeriesBrowser(self)
        self.browser_dock = QDockWidget("Series", self)
        self.browser_dock.setObjectName("browser_dock")
        self.browser_search = QLineEdit(self)
        self.browser_search.setObjectName("browser_search")
        self.browser_search.setPlaceholderText("Search name, ID, date, modality, description")
        self.browser_search.setClearButtonEnabled(True)
        self.browser_search.textChanged.connect(self.browser.set_filter)
        browser_panel = QWidget(self)
        layout = QVBoxLayout(browser_panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.browser_search)
        layout.addWidget(self.browser)
        # names, dates and descriptions beside the thumbnails need this much room
        browser_panel.setMinimumWidth(440)
        self.browser_dock.setWidget(browser_panel)
        self.browser_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser_dock)
        self.resizeDocks([self.browser_dock], [420], Qt.Orientation.Horizontal)
        self.browser.series_activated.connect(self.open_series_asking)

        self._build_segment_dock()
        self._build_status_bar()
        self._build_actions()
        self._build_chain_docks()
        self._build_browser_extras(thumbnail_dir=thumbnail_dir)
        self._build_export_action()
        self._build_settings_actions()
        self._build_cache_action()
        self.phases = PhaseNavigator(self)  # the phases of a 4D series, one at a time
        self._build_remote_actions()
        self._build_pacs()
        self._build_share()
        self.annotation_actions = AnnotationActions(self)  # tools, Save Annotations, key images
        self.unsaved = UnsavedGuard(self)  # Save/Discard/Cancel, autosave, recovery
        install_help_menu(self)  # before the shortcuts are restored: F1 is configurable too
        install_audit_action(self)  # Help ▸ Audit Log…
        install_view_tools(self)  # thick slab, reference lines, oblique reset (issue 17)
        self._restore_settings()
        for view in self.views.values():
            view.cursor_sample.connect(self._on_cursor_sample)
            view.tool_refused.connect(
                lambda text: self.statusBar().showMessage(text, STATUS_MESSAGE_MS))
        self.state.volume_changed.connect(self._on_volume_changed)
        self._on_volume_changed(None)
        self._bind_session()
        if self.session.catalog_error is not None:  # the window opens, without a catalog
            self._show_error(self.session.catalog_error)
        self.refresh_browser()

    @property
    def viewer(self) -> SliceViewer:
        """The active view: the one shown alone, or the one last focused in the grid."""
        return self.view_grid.active_view

    @property
    def catalog(self):
        """The session's catalog (None when it could not be opened)."""
        return self.session.catalog

    @property
    def volume_cache(self):
        """Decoded volumes, least recently used first out (the session's)."""
        return self.session.cache

    @property
    def _load_task(self) -> Task | None:
        return self.session.load_job

    def _catalog_or_error(self, action: str):
        if self.catalog is None:
            self._show_error(TaskError(action, RuntimeError(
                "the catalog could not be opened (see the first message); set MEDVIEW_DB or "
                "start medview with --db PATH to use another catalog file"), ""))
        return self.catalog

    # -- construction ------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QLabel("", self)
        self.cursor_label.setObjectName("cursor_readout")
        self.cursor_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.cursor_label, 1)
        self.progress_label = QLabel("", self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Cancel the running import or load")
        self.cancel_button.clicked.connect(self.cancel_running)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            bar.addPermanentWidget(widget)
            widget.setVisible(False)

    # -- cine --------------------------------------------------------------------------
    def set_cine(self, on: bool) -> None:
        """Play (True) or stop the active view's slices at the frame rate of the tool bar."""
        if on and self.state.volume is not None:
            self.cine_timer.start(int(round(1000.0 / self.cine_fps.value())))
        else:
            self.cine_timer.stop()
        if self.cine_action.isChecked() != self.cine_timer.isActive():
            self.cine_action.setChecked(self.cine_timer.isActive())

    def _on_cine_fps_changed(self, fps: int) -> None:
        if self.cine_timer.isActive():
            self.cine_timer.setInterval(int(round(1000.0 / fps)))

    def _cine_step(self) -> None:
        plane = self.view_grid.active_plane
        n = self.state.plane_n_slices(plane)
        if n <= 0:
            self.set_cine(False)
            return
        self.state.set_plane_slice(plane, (self.state.plane_slice(plane) + 1) % n)

    # -- browser -----------------------------------------------------------------------
    def refresh_browser(self) -> bool:
        """Re-read the catalog into the browser; False (with a message) if that failed."""
        if self.catalog is None:
            return False
        try:
            patients = self.session.patients()
        except Exception as exc:  # error boundary: a broken catalog must not stop the window
            log.exception("reading the catalog failed")
            self._show_error(TaskError("Reading the catalog", exc, _format_tb(exc)))
            return False
        self.browser.set_patients(patients)
        self._after_browser_refresh()
        return True

    # -- viewer ------------------------------------------------------------------------
    def apply_preset(self, key: int) -> None:
        preset = self.state.apply_preset(key)
        if self.state.volume is None:
            return
        if preset is not None:
            text = f"{preset.name}: W {preset.width:g} / L {preset.center:g}"
        else:
            text = "Automatic window (1–99 %)"
        self.statusBar().showMessage(text, 2000)

    def _on_invert_changed(self, inverted: bool) -> None:
        if self.invert_action.isChecked() != inverted:
            self.invert_action.setChecked(inverted)

    def choose_png_to_save(self) -> None:
        """File ▸ Save View as PNG: ask for a file name, then :meth:`save_view_png`."""
        path, _ = QFileDialog.getSaveFileName(self, "Save the view as PNG", "view.png",
                                              "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.save_view_png(path)

    def save_view_png(self, path: str | os.PathLike) -> Path | None:
        """Save the slice view with its overlays to ``path``; None (with a message) on error."""
        try:
            saved = self.view_grid.save_png(path)
        except Exception as exc:  # error boundary: a full disk is a message, not a crash
            self._show_error(TaskError("Saving the view", exc, _format_tb(exc)))
            return None
        self.statusBar().showMessage(f"Saved {saved}", STATUS_MESSAGE_MS)
        return saved

    def _on_cursor_sample(self, sample) -> None:
        self.cursor_label.setText(format_sample(sample))

    def _on_volume_changed(self, volume: Volume | None) -> None:
        self.cursor_label.setText("")
        if volume is None:
            self.setWindowTitle("medview")
            return
        meta = volume.metadata
        what = " · ".join(str(v) for v in (meta.get("PatientName"),
                                           meta.get("SeriesDescription")) if v)
        self.setWindowTitle(f"{what} — medview" if what else "medview")

    # -- errors ------------------------------------------------------------------------
    def _show_error(self, error: TaskError) -> None:
        self.last_error = error
        log.error("%s failed: %s", error.title, error.message)
        self.statusBar().showMessage(f"{error.title} failed: {error.message}", STATUS_MESSAGE_MS)
        self._show_message(f"{error.title} failed", error.message, error.traceback,
                           icon=QMessageBox.Icon.Critical)

    def _show_message(self, title: str, text: str, details: str = "", *,
                      icon=QMessageBox.Icon.Warning) -> None:
        # not exec(): a modal loop would block tests and nested event processing
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()
        self.error_box = box

    def request_close(self) -> bool:
        """File ▸ Quit: Save / Discard / Cancel of unsaved work, then close; False when
        the reader cancelled."""
        if not self.unsaved.confirm("quitting"):
            return False
        self._close_confirmed = True
        return self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        # the reader's close (the title bar's button, the window manager) asks first;
        # close() called by a program (or after request_close asked) does not
        if (event.spontaneous() and not getattr(self, "_close_confirmed", False)
                and not self.unsaved.confirm("closing medview")):
            event.ignore()
            return
        self.unsaved.end_session()  # a clean exit: this session's autosaves go
        # its dialogs (share, backup, export … opened window-modal) go with it: one left
        # open would outlive the window and keep blocking input to the application
        for dialog in self.findChildren(QDialog):
            if dialog.isVisible():
                dialog.reject()
        self._save_settings()
        self.thumbnails.shutdown(timeout_ms=10_000)
        if not self.session.close(timeout=10.0):  # and the catalog, once the jobs stopped
            log.warning("a background task did not stop within 10 s")
        super().closeEvent(event)
