"""Background work for the GUI: the jobs of :mod:`medview.app.tasks`, delivered on the GUI
thread as Qt signals.

The request is captured on the GUI thread (the function and its arguments); a worker calls
it with a :class:`~medview.core.progress.Progress`; the job's events are marshalled onto the
GUI thread through a queued Qt signal and re-emitted there as the task's Qt signals. Widgets
are never touched from the worker.

Exactly one of ``finished(result)``, ``failed(error)`` or ``cancelled()`` is emitted per
task, then ``done()``. Before that, the function may send intermediate results with
:meth:`Task.post_partial` (``partial(payload)``), e.g. the first slice of a series.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from medview.app.messages import TaskError
from medview.app.tasks import PROGRESS_INTERVAL_S, Job, JobRunner, current_job
from medview.core.progress import Progress

__all__ = ["PROGRESS_INTERVAL_S", "Task", "TaskRunner", "current_task"]


class _Signals(QObject):
    """The task's Qt signals, emitted on the GUI thread (where the job's events arrive)."""

    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()
    #: an intermediate result the function chose to share (e.g. the first slice of a load)
    partial = Signal(object)


class Task(Job):
    """A :class:`~medview.app.tasks.Job` whose events are also Qt signals (``signals``), for
    ``qtbot.waitSignal`` and Qt connections."""

    def __init__(self, title: str, function: Callable[[Progress], Any]):
        super().__init__(title, function)
        self.signals = _Signals()
        events = self.events
        events.progress.connect(self.signals.progress.emit)
        events.partial.connect(self.signals.partial.emit)
        events.finished.connect(self.signals.finished.emit)
        events.failed.connect(self.signals.failed.emit)
        events.cancelled.connect(self.signals.cancelled.emit)
        events.done.connect(self.signals.done.emit)


def current_task() -> Task | None:
    """The task running in this worker thread (None outside tasks), e.g. for
    :meth:`Task.post_partial` from a function that was not given its task."""
    job = current_job()
    return job if isinstance(job, Task) else None


class _Marshal(QObject):
    """Runs callables posted from any thread on the thread this object lives on (the GUI's).

    The worker only emits ``_posted``; its receiver is this object, so Qt queues the call
    and ``_run`` runs on the GUI thread, in the order posted.
    """

    _posted = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def __call__(self, callback: Callable[[], None]) -> None:
        self._posted.emit(callback)

    @Slot(object)
    def _run(self, callback: Callable[[], None]) -> None:
        callback()


class _QtJobRunner(JobRunner):
    def make_job(self, title: str, function: Callable[[Progress], Any]) -> Job:
        return Task(title, function)


class TaskRunner(QObject):
    """Starts tasks on worker threads (a :class:`~medview.app.tasks.JobRunner` whose events
    arrive on the GUI thread) and keeps them alive until they are done."""

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 2):
        super().__init__(parent)
        self._marshal = _Marshal(self)
        #: the Qt-free runner; a :class:`~medview.app.session.Session` starts its jobs here
        self.jobs = _QtJobRunner(self._marshal, max_threads=max_threads)

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
        """Run ``function(progress)`` in a worker; the callbacks run on the GUI thread."""
        return self.jobs.start(title, function, on_finished=on_finished, on_failed=on_failed,
                               on_cancelled=on_cancelled, on_progress=on_progress)

    @property
    def running(self) -> tuple[Task, ...]:
        return self.jobs.running

    def cancel_all(self) -> None:
        self.jobs.cancel_all()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel every task and wait for the workers; False if one is still running."""
        return self.jobs.shutdown(timeout_ms / 1000.0)
