"""Background jobs without Qt: a function run in a worker thread with progress and cancel.

The request is captured on the caller's thread (the function and its arguments); a worker
calls it with a :class:`~medview.core.progress.Progress`; what happens next reaches the
listeners through the runner's ``dispatch``: a callable given one zero-argument callable to
run. Headless, :func:`call_now` runs it at once (in the worker) and a :class:`DispatchQueue`
keeps it for the owner's thread to :meth:`~DispatchQueue.drain`; the window passes one that
marshals it onto the Qt event loop (:mod:`medview.gui.tasks`).

Per job exactly one of ``finished(result)``, ``failed(error)`` or ``cancelled()`` is
emitted, then ``done()``. Before that the function may share intermediate results with
:meth:`Job.post_partial` (``partial(payload)``), e.g. the first slice of a series; progress
is forwarded at most every :data:`PROGRESS_INTERVAL_S`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from psygnal import Signal

from medview.app.messages import TaskError
from medview.core.progress import Cancelled, Progress

__all__ = ["PROGRESS_INTERVAL_S", "DispatchQueue", "Job", "JobRunner",
           "call_now", "current_job", "format_traceback"]

log = logging.getLogger(__name__)

#: Progress is forwarded at most this often (seconds); scanning calls update() once per
#: file, far more often than anyone can read a progress bar.
PROGRESS_INTERVAL_S = 0.05

Dispatch = Callable[[Callable[[], None]], None]


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` as text (for :class:`TaskError` outside a worker)."""
    return "".join(traceback.format_exception(exc))


def call_now(callback: Callable[[], None]) -> None:
    """The headless dispatch: run the callback at once, on the thread that posts it."""
    callback()


class DispatchQueue:
    """A dispatch that keeps callbacks for the owning thread, as an event loop would.

    The workers post; the owner runs them in order with :meth:`drain` or
    :meth:`run_until` (a test's stand-in for the GUI thread).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def __call__(self, callback: Callable[[], None]) -> None:
        self._queue.put(callback)

    def drain(self) -> int:
        """Run every callback posted so far; returns how many ran."""
        n = 0
        while True:
            try:
                callback = self._queue.get_nowait()
            except queue.Empty:
                return n
            callback()
            n += 1

    def run_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Run callbacks as they come until ``condition()`` holds.

        Raises
        ------
        TimeoutError
            If it does not hold within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not reached within {timeout:g} s")
            try:
                callback = self._queue.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            callback()


class Job:
    """``function(progress)`` run once in a worker thread.

    Parameters
    ----------
    title : str
        What the user sees in the progress area and in error messages ("Loading series").
    function : callable
        ``function(progress) -> result``; it must check ``progress.cancelled`` (or call
        ``progress.check()``) now and then so that Cancel works.

    Attributes
    ----------
    events
        The job's signals (psygnal), emitted through the runner's dispatch: ``progress(float,
        str)``, ``partial(object)``, ``finished(object)``, ``failed(TaskError)``,
        ``cancelled()``, ``done()``.
    """

    def __init__(self, title: str, function: Callable[[Progress], Any]):
        self.title = title
        self._function = function
        self.events = JobEvents()
        self.progress = Progress(self._forward_progress)
        self._last_emit = 0.0
        self._dispatch: Dispatch = call_now
        self.is_done = False
        self.result: Any = None
        self.error: TaskError | None = None
        #: "finished", "failed" or "cancelled" once the job ended (before ``done``)
        self.outcome = ""

    # worker thread -------------------------------------------------------------------
    def _post(self, kind: str, *args: Any) -> None:
        self._dispatch(lambda: self._deliver(kind, args))

    def _deliver(self, kind: str, args: tuple) -> None:
        if kind in ("finished", "failed", "cancelled"):
            self.outcome = kind
        elif kind == "done":
            self.is_done = True
        getattr(self.events, kind).emit(*args)

    def _forward_progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit = now
            self._post("progress", fraction, message)

    def run(self) -> None:
        """Run the function here, then post its outcome (the runner's workers call this)."""
        _current.job = self
        try:
            self.progress.check()
            result = self._function(self.progress)
        except Cancelled:
            self._post("cancelled")
        except BaseException as exc:  # one error boundary per job: report, never crash
            text = traceback.format_exc()
            log.error("%s failed:\n%s", self.title, text)
            self.error = TaskError(self.title, exc, text)
            self._post("failed", self.error)
        else:
            if self.progress.cancelled:
                self._post("cancelled")
            else:
                self.result = result
                self._post("finished", result)
        finally:
            _current.job = None
            self._post("done")

    def post_partial(self, payload: object) -> None:
        """From the function, in the worker: send ``payload`` to the listeners now, as
        ``partial(payload)`` (before ``finished``; never after a cancel)."""
        if not self.progress.cancelled:
            self._post("partial", payload)

    # any thread ----------------------------------------------------------------------
    def cancel(self) -> None:
        self.progress.cancel()

    def __repr__(self) -> str:
        return f"<Job {self.title!r} {self.outcome or 'running'}>"


class JobEvents:
    """The signals of one :class:`Job`."""

    progress = Signal(float, str)
    partial = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()


_current = threading.local()


def current_job() -> Job | None:
    """The job running in this worker thread (None outside jobs), e.g. for
    :meth:`Job.post_partial` from a function that was not given its job."""
    return getattr(_current, "job", None)


class JobRunner:
    """Starts jobs on its own worker threads and keeps them until they are done.

    Parameters
    ----------
    dispatch : callable, optional
        How the jobs' events reach the listeners (default :func:`call_now`: in the worker).
    max_threads : int
        Workers running at once; more jobs wait their turn.
    """

    def __init__(self, dispatch: Dispatch | None = None, *, max_threads: int = 2):
        self.dispatch: Dispatch = dispatch if dispatch is not None else call_now
        self._pool = ThreadPoolExecutor(max_workers=max_threads,
                                        thread_name_prefix="medview-job")
        self._running: dict[Job, Future] = {}
        self._lock = threading.Lock()

    def start(
        self,
        title: str,
        function: Callable[[Progress], Any],
        *,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[TaskError], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Job:
        """Run ``function(progress)`` in a worker; the callbacks run through ``dispatch``."""
        job = self.make_job(title, function)
        for signal, callback in ((job.events.progress, on_progress),
                                 (job.events.finished, on_finished),
                                 (job.events.failed, on_failed),
                                 (job.events.cancelled, on_cancelled)):
            if callback is not None:
                signal.connect(callback)
        return self.submit(job)

    def make_job(self, title: str, function: Callable[[Progress], Any]) -> Job:
        """The job object :meth:`start` runs (an adapter may return a subclass)."""
        return Job(title, function)

    def submit(self, job: Job) -> Job:
        """Run ``job`` in a worker; it leaves :attr:`running` when its ``done`` is delivered."""
        job._dispatch = self.dispatch
        # first among the done listeners: a listener of ``done`` sees the job gone
        job.events.done.connect(lambda: self._forget(job), priority=100)
        with self._lock:
            self._running[job] = self._pool.submit(job.run)
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self._running.pop(job, None)

    @property
    def running(self) -> tuple[Job, ...]:
        """Jobs started and not yet done (as far as the dispatched events tell)."""
        with self._lock:
            return tuple(self._running)

    def cancel_all(self) -> None:
        for job in self.running:
            job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the workers of the running jobs; False if one is still running."""
        with self._lock:
            futures = list(self._running.values())
        _, pending = wait_futures(futures, timeout=timeout)
        return not pending

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every job and wait for the workers; False if one is still running."""
        self.cancel_all()
        stopped = self.wait(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return stopped
