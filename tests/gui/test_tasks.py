"""Background tasks: results, errors and cancel come back on the GUI thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from medview.app.messages import TaskError
from medview.core.progress import Cancelled
from medview.gui.tasks import TaskRunner


@pytest.fixture
def runner(app):
    runner = TaskRunner()
    yield runner
    assert runner.shutdown(timeout_ms=10_000)


def test_result_and_progress_arrive_on_the_gui_thread(qtbot, runner):
    gui_thread = QThread.currentThread()
    worker_threads = []
    delivered_on = []

    def work(progress):
        worker_threads.append(threading.current_thread())
        for i in range(5):
            progress.update((i + 1) / 5, f"step {i}")
        return 42

    task = runner.start("Counting", work)
    task.signals.progress.connect(lambda f, m: delivered_on.append(QThread.currentThread()))
    with qtbot.waitSignal(task.signals.finished, timeout=10_000) as blocker:
        pass
    assert blocker.args == [42]
    assert worker_threads[0] is not threading.main_thread()
    assert all(t is gui_thread for t in delivered_on)
    qtbot.waitUntil(lambda: not runner.running, timeout=5_000)


def test_errors_become_a_failed_signal_with_the_traceback(qtbot, runner):
    def work(progress):
        raise ValueError("the folder holds no DICOM")

    task = runner.start("Importing", work)
    with qtbot.waitSignal(task.signals.failed, timeout=10_000) as blocker:
        pass
    error = blocker.args[0]
    assert isinstance(error, TaskError)
    assert error.title == "Importing"
    assert error.message == "the folder holds no DICOM"
    assert "ValueError" in error.traceback


def test_cancel_stops_a_task_that_checks_progress(qtbot, runner):
    started = threading.Event()

    def work(progress):
        started.set()
        while True:
            progress.check()
            threading.Event().wait(0.01)

    task = runner.start("Waiting", work)
    assert started.wait(10)
    finished = []
    task.signals.finished.connect(finished.append)
    with qtbot.waitSignals([task.signals.cancelled, task.signals.done], timeout=10_000):
        task.cancel()
    assert finished == []
    assert task.is_done


def test_cancelled_raised_inside_is_a_cancel_not_an_error(qtbot, runner):
    def work(progress):
        raise Cancelled("stop")

    task = runner.start("Stopping", work)
    failed = []
    task.signals.failed.connect(failed.append)
    with qtbot.waitSignal(task.signals.cancelled, timeout=10_000):
        pass
    assert failed == []


def test_partial_results_arrive_on_the_gui_thread_before_the_result(qtbot, runner):
    from medview.gui.tasks import current_task

    gui_thread = QThread.currentThread()
    events = []

    def work(progress):
        task = current_task()
        task.post_partial("first slice")
        task.post_partial("second slice")
        return "volume"

    task = runner.start("Loading", work)
    task.signals.partial.connect(lambda p: events.append((p, QThread.currentThread())))
    task.signals.finished.connect(lambda r: events.append((r, QThread.currentThread())))
    with qtbot.waitSignal(task.signals.done, timeout=10_000):
        pass
    assert [e[0] for e in events] == ["first slice", "second slice", "volume"]
    assert all(e[1] is gui_thread for e in events)
    assert current_task() is None  # not inside a task on the GUI thread
