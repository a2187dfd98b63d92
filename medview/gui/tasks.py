"""Background work for the GUI: a function run in a QThreadPool with progress and cancel.

The request is captured on the GUI thread (the function and its arguments); the worker
calls it with a :class:`~medview.core.progress.Progress`; the outcome comes back to the GUI
thread through queued Qt signals. Widgets are never touched from the worker.

Exactly one of ``finished(result)``, ``failed(error)`` or ``cancelled()`` is emitted per
task, then ``done()``. Before that, the function may send intermediate results with
:meth:`Task.post_partial` (``partial(payload)``), e.g. the first slice of a series.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from medview.app.messages import TaskError
from medview.core.progress import Cancelled, Progress

__all__ = ["Task", "TaskRunner", "current_task"]

log = logging.getLogger(__name__)

#: Progress is forwarded to the GUI at most this often (seconds); scanning calls update()
#: once per file, far more often than anyone can read a progress bar.
PROGRESS_INTERVAL_S = 0.05


class _Signals(QObject):
    """The task's signals, re-emitted on the GUI thread.

    The worker only emits ``_posted``; its receiver is this object, which lives on the GUI
    thread, so Qt queues the call there and ``_deliver`` emits the public signals on the GUI
    thread. Listeners can then be any callable (lambdas included) and still run on the GUI
    thread, whatever Qt's rules for connections without a receiver object.
    """

    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()
    #: an intermediate result the function chose to share (e.g. the first slice of a load)
    partial = Signal(object)
    _posted = Signal(str, object)

    def __init__(self) -> None:
        super().__init__()
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def post(self, kind: str, payload: object = None) -> None:
        """Called from the worker thread."""
        self._posted.emit(kind, payload)

    @Slot(str, object)
    def _deliver(self, kind: str, payload: object) -> None:
        if kind == "progress":
            self.progress.emit(*payload)
        elif kind == "finished":
            self.finished.emit(payload)
        elif kind == "failed":
            self.failed.emit(payload)
        elif kind == "cancelled":
            self.cancelled.emit()
        elif kind == "done":
            self.done.emit()
        elif kind == "partial":
            self.partial.emit(payload)


class Task(QRunnable):
    """``function(progress)`` run once in a worker thread.

    Parameters
    ----------
    title : str
        What the user sees in the progress area and in error messages ("Loading series").
    function : callable
        ``function(progress) -> result``; it must check ``progress.cancelled`` (or call
        ``progress.check()``) now and then so that Cancel works.
    """

    def __init__(self, title: str, function: Callable[[Progress], Any]):
        super().__init__()
        # Python owns the runnable; the runner keeps it alive until done.
        self.setAutoDelete(False)
        self.title = title
        self._function = function
        self.signals = _Signals()
        self.progress = Progress(self._forward_progress)
        self._last_emit = 0.0
        self.is_done = False

    # worker thread -------------------------------------------------------------------
    def _forward_progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit = now
            self.signals.post("progress", (fraction, message))

    def run(self) -> None:
        _current.task = self
        try:
            self.progress.check()
            result = self._function(self.progress)
        except Cancelled:
            self.signals.post("cancelled")
        except BaseException as exc:  # one error boundary per task: report, never crash
            text = traceback.format_exc()
            log.error("%s failed:\n%s", self.title, text)
            self.signals.post("failed", TaskError(self.title, exc, text))
        else:
            if self.progress.cancelled:
                self.signals.post("cancelled")
            else:
                self.signals.post("finished", result)
        finally:
            _current.task = None
            self.signals.post("done")

    def post_partial(self, payload: object) -> None:
        """From the function, in the worker: send ``payload`` to the GUI thread now, as
        ``signals.partial(payload)`` (before ``finished``; never after a cancel)."""
        if not self.progress.cancelled:
            self.signals.post("partial", payload)

    # any thread ----------------------------------------------------------------------
    def cancel(self) -> None:
        self.progress.cancel()


_current = threading.local()


def current_task() -> Task | None:
    """The task running in this worker thread (None outside tasks), e.g. for
    :meth:`Task.post_partial` from a function that was not given its task."""
    return getattr(_current, "task", None)


class TaskRunner(QObject):
    """Starts tasks on its own thread pool and keeps them alive until they are done."""

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running: set[Task] = set()

    def start(
        self,
        title: str,
        function: Callable[[Progress], Any],
        *,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[TaskError], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Task:
        """Run ``function(progress)`` in the pool; the callbacks run on the GUI thread."""
        task = Task(title, function)
        if on_progress is not None:
            task.signals.progress.connect(on_progress)
        if on_finished is not None:
            task.signals.finished.connect(on_finished)
        if on_failed is not None:
            task.signals.failed.connect(on_failed)
        if on_cancelled is not None:
            task.signals.cancelled.connect(on_cancelled)
        task.signals.done.connect(lambda: self._on_task_done(task))  # runs on the GUI thread
        self._running.add(task)
        self.pool.start(task)
        return task

    def _on_task_done(self, task: Task) -> None:
        task.is_done = True
        self._running.discard(task)

    @property
    def running(self) -> tuple[Task, ...]:
        return tuple(self._running)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel every task and wait for the workers; False if one is still running."""
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)
