"""What the user does, without Qt: import, open (progressive, cached), label maps and SEGs,
fuse, classify, run a chain, export, send.

Label editing (brush, fill, undo) is not here: :class:`~medview.app.state.ViewerState` owns it
(one editor per label map shown, painted through the views' geometries and cursor).

A :class:`Session` works on one catalog. Each action captures its request on the caller's
thread, runs the work as a job of its runner (:mod:`medview.app.tasks`: a worker thread with
progress and cancel) and tells what happened through its events (psygnal signals, delivered
through the runner's dispatch: on the GUI thread in the window, at once or from a queue the
test drains headless). The window binds its widgets to these events and calls these methods;
it does no work of its own.

Processing actions run as registered steps on the executor of :attr:`Session.run_on` ("Run
on: Local / Remote: NAME"), see :mod:`medview.app.processing`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from psygnal import Signal

from medview.app import library, series_loading
from medview.app.annotation_actions import AnnotationsMixin
from medview.app.messages import TaskError
from medview.app.series_loading import FirstImage, LoadedSeries
from medview.app.session_actions import ActionsMixin
from medview.app.session_disclosure import DisclosureMixin
from medview.app.session_pacs import PacsMixin
from medview.app.session_thumbnails import ThumbnailsMixin
from medview.app.tasks import Job, JobRunner, format_traceback
from medview.app.volume_cache import VolumeCache
from medview.core.progress import Progress
from medview.core.volume import Volume

__all__ = ["Session", "cache_key", "load_title"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def cache_key(series_uid: str, stack: int | None) -> Hashable:
    """The volume cache's key of a stack: the UID alone for the default stack (0)."""
    return series_uid if not stack else (series_uid, int(stack))


def load_title(series_uid: str, stack: int | None = None) -> str:
    """The title of the job loading ``series_uid`` (``stack``)."""
    return f"Loading series {series_uid}" + ("" if stack is None else f", stack {stack}")


class Session(ActionsMixin, AnnotationsMixin, DisclosureMixin, PacsMixin,
              ThumbnailsMixin):
    """The user's work on one catalog.

    Parameters
    ----------
    catalog_path : path, optional
        The catalog file; default the user's (``$MEDVIEW_DB`` or the data folder). A catalog
        that cannot be opened leaves :attr:`catalog` None and the reason in
        :attr:`catalog_error`; the actions that need it then fail with that message.
    runner : JobRunner, optional
        Where the jobs run and how their events are delivered (default: a runner delivering
        in the worker thread).
    cache_cap_bytes : int, optional
        The volume cache's cap (default a quarter of the RAM, or ``$MEDVIEW_CACHE_MB``).
    run_on : ExecutorChoice, optional
        The "Run on" choice shared with the widgets (default a new one, at Local).

    Events
    ------
    job_started(Job)
        A background job of this session started (for a progress area).
    import_finished(ImportResult), import_failed(TaskError), import_cancelled()
        An import ended (batches imported before a cancel stay in the catalog).
    series_first_image(FirstImage)
        The first slice of the series being opened is read (the volume fills in after);
        unless :attr:`first_paint_by_listener`, the session lets the reader go on at once.
    series_progress(float, str)
        Progress of the series being opened (at most every ``PROGRESS_INTERVAL_S``).
    series_loaded(str, object, object, bool)
        ``(series_uid, requested stack, LoadedSeries, from_cache)``: the series is complete.
    series_failed(TaskError), series_cancelled(str, bool)
        Opening failed; opening ``series_uid`` was cancelled (``True``: superseded by
        another open).
    label_map_opened(LabelMap, str)
        A label map was read from a file (its path).
    seg_read(LabelMap, str)
        A DICOM SEG was read onto a volume (with a note on overlapping segments).
    fused(Fused), classified(Classified), chain_finished(ChainRun)
        A processing action finished.
    action_failed(TaskError), action_cancelled(str)
        A processing action (fuse, classify, chain, SEG) or a disclosure (send, share,
        backup) failed or was cancelled.
    exported(list), export_failed(TaskError), export_cancelled()
        An export wrote these paths; or failed, leaving nothing half-written.
    series_exported(Path), series_export_failed(TaskError), series_export_cancelled()
        A catalog series was written to a volume file (:meth:`export_series`), or not.
    series_removed(str, int)
        A series was removed from the catalog (its UID, the instances forgotten).
    sent(SendReport), shared(ShareReport), backed_up(BackupReport)
        A send to a PACS node, a de-identified share, a backup ended (a send's report
        lists the files that failed).
    annotations_saved(list)
        Annotations and key images were saved with the study (the documents' paths).
    pacs_found(str, list), retrieved(RetrieveReport)
        A search of a PACS node ended (its name, the PacsPatient found); a retrieve ended,
        complete or listing what is missing (``app/session_pacs.py``; their jobs' ``failed``
        and ``cancelled`` say when not).
    node_verified(str, bool, str), endpoint_checked(str, bool, str)
        A PACS node or an offload endpoint answered or not: its name, ok, the line to show.
    run_on_changed(str)
        The executor chosen in "Run on".
    cache_cap_changed(int)
        The volume cache's cap, in bytes.
    """

    job_started = Signal(object)
    import_finished = Signal(object)
    import_failed = Signal(object)
    import_cancelled = Signal()
    series_first_image = Signal(object)
    series_progress = Signal(float, str)
    series_loaded = Signal(str, object, object, bool)
    series_failed = Signal(object)
    series_cancelled = Signal(str, bool)
    label_map_opened = Signal(object, str)
    seg_read = Signal(object, str)
    fused = Signal(object)
    classified = Signal(object)
    chain_finished = Signal(object)
    action_failed = Signal(object)
    action_cancelled = Signal(str)
    exported = Signal(list)
    export_failed = Signal(object)
    export_cancelled = Signal()
    series_exported = Signal(object)
    series_export_failed = Signal(object)
    series_export_cancelled = Signal()
    series_removed = Signal(str, int)
    sent = Signal(object)
    annotations_saved = Signal(list)
    shared = Signal(object)
    backed_up = Signal(object)
    pacs_found = Signal(str, list)
    retrieved = Signal(object)
    node_verified = Signal(str, bool, str)
    endpoint_checked = Signal(str, bool, str)
    run_on_changed = Signal(str)
    cache_cap_changed = Signal(int)

    def __init__(self, catalog_path: PathLike | None = None, *,
                 runner: JobRunner | None = None, cache_cap_bytes: int | None = None,
                 run_on=None):
        from medview.pipeline.executors import ExecutorChoice

        self.runner = runner if runner is not None else JobRunner()
        self.cache = VolumeCache(cache_cap_bytes)
        #: the one "Run on" choice of the chain panel, the Segmentation and the Fusion dock
        self.run_on = run_on if run_on is not None else ExecutorChoice()
        self._run_on_off = self.run_on.on_changed(
            lambda name: self.run_on_changed.emit(name))
        #: True when a listener of ``series_first_image`` sets ``FirstImage.shown`` itself
        #: once it drew the slice (the window); else the reader goes on at once
        self.first_paint_by_listener = False
        self.import_job: Job | None = None
        self.load_job: Job | None = None
        self.export_job: Job | None = None
        self.series_export_job: Job | None = None
        self._load_uid = ""
        self.catalog = None
        self.catalog_error: TaskError | None = None
        self.catalog_path = Path(catalog_path) if catalog_path is not None else None
        try:  # one catalog for the session's life: each thread gets its own connection
            self.catalog = library.open_catalog(self.catalog_path)
        except Exception as exc:  # error boundary: the session goes on without a catalog
            self.catalog_error = TaskError("Opening the catalog", exc, format_traceback(exc))
        else:
            self.catalog_path = self.catalog.path

    # -- jobs --------------------------------------------------------------------------
    def _start(self, title: str, work: Callable[[Progress], Any]) -> Job:
        job = self.runner.start(title, work)
        self.job_started.emit(job)
        return job

    def _start_action(self, title: str, work: Callable[[Progress], Any],
                      on_finished: Callable[[Any], None]) -> Job:
        """A processing job: its result to ``on_finished``, failure and cancel to the
        session's ``action_failed`` / ``action_cancelled``."""
        job = self.runner.start(title, work, on_finished=on_finished,
                                on_failed=lambda error: self.action_failed.emit(error),
                                on_cancelled=lambda: self.action_cancelled.emit(title))
        self.job_started.emit(job)
        return job

    def require_catalog(self, action: str):
        """The catalog.

        Raises
        ------
        RuntimeError
            If it could not be opened (the message says what to do).
        """
        if self.catalog is None:
            raise RuntimeError(
                f"{action}: the catalog could not be opened; set MEDVIEW_DB or start medview "
                "with --db PATH to use another catalog file")
        return self.catalog

    def cancel_all(self) -> None:
        """Cancel every running job of the runner (the Cancel button)."""
        for job in (self.import_job, self.load_job, self.export_job, self.series_export_job):
            if job is not None:
                job.cancel()

    def close(self, timeout: float = 10.0) -> bool:
        """Cancel the jobs, wait for them, close the catalog; False if one still runs."""
        self._run_on_off()
        self.run_on.close()
        stopped = self.stop_thumbnails(timeout)
        stopped = self.runner.shutdown(timeout) and stopped
        if stopped and self.catalog is not None:
            self.catalog.close()
            self.catalog = None
        return stopped

    # -- catalog -----------------------------------------------------------------------
    def patients(self) -> list:
        """The catalog as a Patient → Study → Series tree (:func:`library.list_patients`)."""
        return library.list_patients(self.require_catalog("Reading the catalog"))

    def import_paths(self, paths: PathLike | Sequence[PathLike]) -> Job | None:
        """Import ``paths`` (a folder, files, or a list of them) into the catalog in the
        background; None when an import is already running (one at a time).

        Unreadable files do not stop it: the result's ``errors`` name each with its reason.

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        if self.import_job is not None:
            return None
        catalog = self.require_catalog("Importing")
        paths = ([Path(p) for p in paths] if isinstance(paths, list | tuple)
                 else [Path(paths)])
        path = paths[0]
        what = f"{path.name or path}" + (f" and {len(paths) - 1} more" if len(paths) > 1
                                         else "")

        def ended() -> None:
            # before any event goes out, so that a listener can start the next import
            self.import_job = None

        job = self.runner.start(f"Importing {what}",
                                lambda progress: library.import_paths(catalog, paths,
                                                                      progress=progress))
        job.events.finished.connect(lambda result: (ended(), self.import_finished.emit(result)))
        job.events.failed.connect(lambda error: (ended(), self.import_failed.emit(error)))
        job.events.cancelled.connect(lambda: (ended(), self.import_cancelled.emit()))
        self.import_job = job
        self.job_started.emit(job)
        return job

    # -- opening a series --------------------------------------------------------------
    @property
    def loading_uid(self) -> str:
        """The series being opened ("" when none is)."""
        return self._load_uid if self.load_job is not None else ""

    def open_series(self, series_uid: str, stack: int | None = None, *,
                    reread: bool = False) -> Job | None:
        """Open catalog series ``series_uid`` (``stack``: a phase or time point of a 4D
        series; default the series' default stack).

        From the cache at once (``series_loaded(..., True)`` before this returns None);
        else in the background: ``series_first_image`` as soon as its first slice is read,
        ``series_progress`` while the rest fills in, ``series_loaded`` when complete (a
        complete volume is cached, least recently used out beyond the cap). Opening another
        series cancels the one loading (``series_cancelled(uid, True)``); asking again for
        the one loading lets it go on (its job is returned).

        ``reread``: read it again from the catalog whole (it grew: files arrived), past the
        cache and without a first image (the listeners show it already).

        Raises
        ------
        RuntimeError
            Without a catalog (and not cached).
        """
        title = load_title(series_uid, stack)
        if self.load_job is not None:
            if self.load_job.title == title and not reread:
                return self.load_job  # already on its way (a second double-click)
            self._drop_load(superseded=True)
        if reread:
            self.cache.remove(cache_key(series_uid, stack))
        cached = self.cache.get(cache_key(series_uid, stack))
        if cached is not None:
            volume, windows = cached
            self.series_loaded.emit(series_uid, stack,
                                    LoadedSeries(volume, windows, stack=int(stack or 0)), True)
            return None
        catalog = self.require_catalog("Opening the series")
        which = {} if stack is None else {"stack": stack}

        def work(progress):
            on_first = None if reread else _current().post_partial
            # through the module: a test may replace the reader there
            return series_loading.load_series_progressively(
                catalog, series_uid, progress=progress, on_first=on_first, **which)

        job = self.runner.start(title, work)
        job.events.partial.connect(lambda first: self._on_first_image(job, first))
        job.events.progress.connect(
            lambda f, m: self.series_progress.emit(f, m) if job is self.load_job else None)
        job.events.finished.connect(
            lambda result: self._on_series_loaded(job, series_uid, stack, result))
        job.events.failed.connect(lambda error: self._on_series_failed(job, error))
        job.events.cancelled.connect(lambda: self._on_series_cancelled(job, series_uid))
        self.load_job, self._load_uid = job, series_uid
        self.job_started.emit(job)
        return job

    def cancel_open(self) -> None:
        """Cancel the series being opened (what was read stays with the listeners); its
        ``series_cancelled(uid, False)`` follows when the worker stopped."""
        if self.load_job is not None:
            self.load_job.cancel()

    def stop_open(self) -> None:
        """Drop the series being opened now (``series_cancelled(uid, True)`` at once), as
        opening another one does: something else is about to be shown."""
        if self.load_job is not None:
            self._drop_load(superseded=True)

    def _drop_load(self, *, superseded: bool) -> None:
        job, uid = self.load_job, self._load_uid
        self.load_job = None
        job.cancel()
        self.series_cancelled.emit(uid, superseded)

    def _on_first_image(self, job: Job, first: FirstImage) -> None:
        if job is not self.load_job:
            first.shown.set()
            return  # superseded by a later request
        try:
            self.series_first_image.emit(first)
        finally:
            if not self.first_paint_by_listener:
                first.shown.set()

    def _on_series_loaded(self, job: Job, series_uid: str, stack: int | None,
                          result: LoadedSeries) -> None:
        if job is not self.load_job:
            return  # superseded by a later request
        self.load_job = None
        volume = result.volume
        if result.failures:
            for failure in result.failures:  # an incomplete volume is not cached
                log.error("unreadable slice: %s", failure)
        elif not self.cache.put(cache_key(series_uid, result.stack), (volume, result.windows),
                                volume.nbytes):
            log.info("series not cached: %.0f MiB is more than the cache's %.0f MiB",
                     volume.nbytes / 2**20, self.cache.cap_bytes / 2**20)
        log.info("opened series %s: %s", series_uid, volume)
        for warning in volume.warnings:
            log.warning("%s", warning)
        self.series_loaded.emit(series_uid, stack, result, False)

    def _on_series_failed(self, job: Job, error: TaskError) -> None:
        if job is self.load_job:
            self.load_job = None
        self.series_failed.emit(error)

    def _on_series_cancelled(self, job: Job, series_uid: str) -> None:
        if job is self.load_job:
            self.load_job = None
            self.series_cancelled.emit(series_uid, False)

    def cached_volume(self, series_uid: str) -> Volume | None:
        """The decoded volume of ``series_uid`` if the cache holds it."""
        entry = self.cache.get(series_uid)
        return None if entry is None else entry[0]

    def set_cache_cap(self, cap_bytes: int) -> None:
        """Hold at most ``cap_bytes`` of decoded volumes (0: none), evicting the least
        recently used now."""
        self.cache.set_cap(cap_bytes)
        self.cache_cap_changed.emit(self.cache.cap_bytes)


def _current() -> Job:
    from medview.app.tasks import current_job

    job = current_job()
    if job is None:  # pragma: no cover - only called from a job's function
        raise RuntimeError("not inside a job")
    return job
