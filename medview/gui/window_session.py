"""The main window's side of the :class:`~medview.app.session.Session`: importing, opening
series (first image, progress, the cache), label maps, and the progress area with its Cancel
button. The session does the work; these methods ask it, and show what its events tell (on
the GUI thread). A mixin of :class:`~medview.gui.main_window.MainWindow`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog

from medview.app.messages import TaskError
from medview.app.series_loading import FirstImage, LoadedSeries
from medview.app.tasks import format_traceback as _format_tb
from medview.app.volume_cache import CAP_SETTING, default_cap_bytes
from medview.core.volume import Volume
from medview.gui.tasks import Task

__all__ = ["SessionViewMixin"]

log = logging.getLogger(__name__)

STATUS_MESSAGE_MS = 8000


class SessionViewMixin:
    """Mixed into MainWindow (before QMainWindow); :meth:`_bind_session` once the widgets
    exist."""

    def _bind_session(self) -> None:
        session = self.session
        session.job_started.connect(self._track_progress)
        session.import_finished.connect(self._on_import_finished)
        session.import_failed.connect(self._on_import_failed)
        session.import_cancelled.connect(self._on_import_cancelled)
        session.series_first_image.connect(self._on_first_image)
        session.series_progress.connect(self._on_load_progress)
        session.series_loaded.connect(self._on_series_loaded)
        session.series_failed.connect(self._on_series_failed)
        session.series_cancelled.connect(self._on_series_cancelled)
        session.exported.connect(self._on_dialog_exported)
        session.export_failed.connect(self._on_dialog_export_failed)
        session.export_cancelled.connect(lambda: self._on_cancelled("Export"))

    # -- label overlay -----------------------------------------------------------------
    def choose_label_map(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a label map on this series", "",
            "Label maps (*.nii *.nii.gz *.nrrd *.mha *.mhd);;All files (*)")
        if path:
            self.open_label_map(path)

    def open_label_map(self, path: str | os.PathLike) -> bool:
        """Show the label map in ``path`` over the open series; False (with a message) if it
        cannot be read or is not on the series' grid."""
        if self.state.volume is None:
            self._show_message("No series open", "Open a series before its label map.")
            return False
        try:
            self.state.set_labels(self.session.open_label_map(path))
        except Exception as exc:  # error boundary: a wrong file is a message
            self._show_error(TaskError("Opening the label map", exc, _format_tb(exc)))
            return False
        self.unsaved.work.mark_saved("labels")  # as it is in the file
        segments = self.state.labels.segments
        self.statusBar().showMessage(
            f"Label map {Path(path).name}: {len(segments)} segment(s)", STATUS_MESSAGE_MS)
        return True

    # -- import ------------------------------------------------------------------------
    def choose_folder_to_import(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of DICOM files",
                                                  self.last_import_folder())
        if folder:
            self.import_folder(folder)

    def import_folder(self, path: str | os.PathLike | list, *,
                      open_first: bool = False) -> Task | None:
        """Import ``path`` (or a list of paths) into the catalog in the background;
        optionally open its first series.

        Returns the task, or None when an import is already running (one at a time).
        """
        if self.session.import_job is not None:
            self.statusBar().showMessage("An import is already running; wait or cancel it.",
                                         STATUS_MESSAGE_MS)
            return None
        if self._catalog_or_error("Importing") is None:
            return None
        paths = [Path(p) for p in path] if isinstance(path, list | tuple) else [Path(path)]
        self._remember_import_folder(paths[0])
        self._import_open_first = open_first
        task = self.session.import_paths(paths)
        self.import_action.setEnabled(False)
        return task

    def _on_import_finished(self, result) -> None:
        self.import_action.setEnabled(True)
        self.refresh_browser()
        report = result.report
        errors = result.errors
        text = (f"Imported: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged; {len(result.series_uids)} series")
        if errors:
            text += f"; {len(errors)} file(s) could not be read (File ▸ Show Failed Files)"
            for path, reason in errors[:20]:
                log.warning("unreadable: %s: %s", path, reason)
        if report.warning_count:
            text += f"; {report.warning_count} file(s) imported with a warning"
        self.failed_panel.set_warnings(report.warnings)
        self.statusBar().showMessage(text, STATUS_MESSAGE_MS)
        self._offer_failed_files(len(errors))
        if not result.series_uids:
            self._show_message("Nothing to show",
                               "No DICOM image series was found in the imported folder.",
                               "\n".join(f"{p}: {r}" for p, r in errors[:50]))
        elif self._import_open_first:
            self.browser.select_series(result.series_uids[0])
            self.open_series_asking(result.series_uids[0])
        self.import_finished.emit(result)

    def _on_import_failed(self, error: TaskError) -> None:
        self.import_action.setEnabled(True)
        self._show_error(error)
        self.import_failed.emit(error)

    def _on_import_cancelled(self) -> None:
        self.import_action.setEnabled(True)
        self.refresh_browser()  # the batches imported before the cancel stay in the catalog
        self._on_cancelled("Import")

    # -- loading -----------------------------------------------------------------------
    def open_series_asking(self, series_uid: str) -> Task | None:
        """What the reader's "open" does (the browser, an import that opens its first
        series): Save / Discard / Cancel of unsaved work first (:mod:`medview.gui.unsaved`),
        then :meth:`open_series`; a DICOM SEG opens as the label map of the series it
        references (:mod:`medview.gui.seg_actions`). Returns None when the reader cancelled
        (and for a SEG)."""
        from medview.gui.seg_actions import open_seg_series

        if self.session.is_seg(series_uid):
            open_seg_series(self, series_uid)
            return None
        shown = self.state.volume
        other = shown is None or shown.metadata.get("SeriesInstanceUID") != series_uid
        if other and not self.unsaved.confirm("opening another series"):
            self.statusBar().showMessage("Kept the open series and its unsaved work.",
                                         STATUS_MESSAGE_MS)
            return None
        return self.open_series(series_uid)

    def open_series(self, series_uid: str, stack: int | None = None) -> Task | None:
        """Show catalog series ``series_uid`` (:meth:`Session.open_series
        <medview.app.session.Session.open_series>`): at once if it is in the volume cache,
        else loaded in the background, its middle slice shown as soon as it is read and the
        rest filled in as it arrives.

        ``stack`` picks a phase or time point of a 4D series (default: the series' default
        stack); only that stack is read, and it is cached on its own
        (:mod:`medview.gui.phases`).

        Opening another series while one loads cancels the first; only the last one asked
        for is shown; asking again for the one loading lets it go on. Returns the task (None
        for a cached series, or without a catalog).
        """
        try:
            return self.session.open_series(series_uid, stack)
        except RuntimeError as exc:  # no catalog: a message
            self._show_error(TaskError("Opening the series", exc, ""))
            return None

    def _volume_cache_cap(self) -> int:
        """``MEDVIEW_CACHE_MB``, else the setting ``cache/max_mb``, else 25 % of the RAM."""
        try:
            return default_cap_bytes(setting_mb=self.settings_value(CAP_SETTING, ""))
        except ValueError as exc:  # a bad value must not stop the window: say so, go on
            log.warning("%s; the volume cache uses a quarter of the RAM instead", exc)
            return default_cap_bytes({})

    def set_cache_cap_mb(self, mb: float) -> None:
        """Hold at most ``mb`` MiB of decoded volumes (0: none), now and in later sessions
        (``MEDVIEW_CACHE_MB``, when set, still wins at the next start)."""
        mb = float(mb)
        if not mb >= 0:
            raise ValueError(f"mb: expected a number of MiB ≥ 0, got {mb}")
        self.session.set_cache_cap(int(mb * 1024 * 1024))
        self.set_settings_value(CAP_SETTING, f"{mb:g}")

    def _show_volume(self, volume: Volume, windows) -> None:
        default, auto = windows
        self.set_cine(False)
        self.state.set_volume(volume, window=default, auto=auto)

    def _on_first_image(self, first: FirstImage) -> None:
        try:
            self.set_cine(False)
            self.state.set_volume(first.volume, window=first.window)
            self.state.set_loading(first.loaded)
            self._on_load_progress()
            # drawn now, while the worker waits: drawing later would compete with the
            # reading thread for the GIL (see series_loading.FIRST_PAINT_WAIT_S)
            self.view_grid.repaint()
        except BaseException:
            first.shown.set()
            raise
        # the events this queued (layout, overlays, progress) run before the timer fires
        QTimer.singleShot(0, first.shown.set)
        self.first_image_shown.emit(first.volume)

    def _on_load_progress(self, *_progress) -> None:
        # the session forwards progress at most every PROGRESS_INTERVAL_S: a bounded redraw
        if not self.state.is_loading:
            return
        self.state.notify_data_changed()
        if self._progress_task is not None and self._progress_task is self._load_task:
            self.progress_label.setText(f"Loading {self.state.n_loaded}/{self.state.n_slices}")

    def _on_series_loaded(self, series_uid: str, stack: int | None, result: LoadedSeries,
                          cached: bool) -> None:
        volume = result.volume
        if cached:
            self.phases.shown(series_uid, stack)
            self._show_volume(volume, result.windows)
            self._series_complete(volume)
            return
        self.phases.loaded(series_uid, result.stack, result.n_stacks)
        # shown since its first slice: now complete (or widened on the same grid)
        if not self.state.finish_loading(volume, *result.windows):
            self._show_volume(volume, result.windows)  # read whole: shown only now
        if result.failures:
            # the slices read stay shown; an incomplete volume is not cached
            shown = "\n".join(result.failures[:50])
            self._show_message("Some slices could not be read",
                               f"{len(result.failures)} slice(s) of this series could not be "
                               "read: each is interpolated from its neighbours (a made-up "
                               "slice); the others are shown as acquired.", shown)
        self._series_complete(volume)

    def _series_complete(self, volume: Volume) -> None:
        if volume.warnings:
            self.statusBar().showMessage(
                f"{len(volume.warnings)} warning(s): {volume.warnings[0]}", STATUS_MESSAGE_MS)
        self.series_opened.emit(volume)

    def _on_series_failed(self, error: TaskError) -> None:
        self._show_error(error)
        self.series_failed.emit(error)

    def _on_series_cancelled(self, series_uid: str, superseded: bool) -> None:
        self.state.stop_loading()  # what was read stays shown; nothing is cached
        if not superseded:
            self._on_cancelled("Loading")

    # -- progress and cancel -----------------------------------------------------------
    def _track_progress(self, task: Task) -> None:
        """Show ``task`` in the progress area (the latest task started is the one shown)."""
        self._progress_task = task
        self.progress_label.setText(task.title if len(task.title) < 60 else task.title[:57] + "…")
        self.progress_bar.setValue(0)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            widget.setVisible(True)
        task.signals.progress.connect(lambda f, m: self._on_progress(task, f, m))
        task.signals.done.connect(lambda: self._on_task_done(task))

    def _on_progress(self, task: Task, fraction: float, message: str) -> None:
        if task is self._progress_task:
            self.progress_bar.setValue(int(round(fraction * 1000)))
            if message:
                self.progress_bar.setToolTip(message)

    def _on_task_done(self, task: Task) -> None:
        if task is not self._progress_task:
            return
        others = [t for t in self.tasks.running if t is not task and not t.is_done]
        if others:
            self._track_progress(others[-1])
            return
        self._progress_task = None
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            widget.setVisible(False)

    def cancel_running(self) -> None:
        """Cancel the import, the load, the export and the task shown in the progress area
        (the Cancel button)."""
        self.session.cancel_all()
        if self._progress_task is not None:
            self._progress_task.cancel()

    def _on_cancelled(self, what: str) -> None:
        self.statusBar().showMessage(f"{what} cancelled.", STATUS_MESSAGE_MS)
