"""The Qt-free job runner: outcome events in order, partial results, throttled progress,
cancel, and delivery through the dispatch (at once, or from a queue the owner drains)."""

from __future__ import annotations

import threading

import pytest

from medview.app.tasks import (
    PROGRESS_INTERVAL_S,
    DispatchQueue,
    JobRunner,
    TaskError,
    current_job,
)
from medview.core.progress import Cancelled


@pytest.fixture
def queued():
    queue = DispatchQueue()
    runner = JobRunner(queue)
    yield runner, queue
    assert runner.shutdown(30)
    queue.drain()


def _record(job):
    events = []
    for name in ("progress", "partial", "finished", "failed", "cancelled", "done"):
        getattr(job.events, name).connect(
            lambda *args, n=name: events.append((n, args, threading.current_thread())))
    return events


def test_events_arrive_on_the_draining_thread_in_order(queued):
    runner, queue = queued
    worker = []

    def work(progress):
        worker.append(threading.current_thread())
        current_job().post_partial("first slice")
        for i in range(1000):
            progress.update((i + 1) / 1000, "step")
        return 42

    job = runner.start("Counting", work)
    events = _record(job)
    queue.run_until(lambda: job.is_done)
    names = [n for n, _a, _t in events]
    assert names[0] == "partial" and names[-2:] == ["finished", "done"]
    assert events[-2][1] == (42,) and job.result == 42 and job.outcome == "finished"
    assert {t for _n, _a, t in events} == {threading.main_thread()}
    assert worker[0] is not threading.main_thread()
    progress = [a for n, a, _t in events if n == "progress"]
    # 1000 updates in far less than 1000 intervals: throttled, the last (1.0) always sent
    assert 1 <= len(progress) < 1000 and progress[-1] == (1.0, "step")
    assert PROGRESS_INTERVAL_S > 0
    assert runner.running == ()


def test_an_error_is_a_failed_event_with_the_traceback(queued):
    runner, queue = queued
    job = runner.start("Importing", lambda progress: 1 / 0)
    events = _record(job)
    queue.run_until(lambda: job.is_done)
    assert [n for n, _a, _t in events] == ["failed", "done"]
    error = events[0][1][0]
    assert isinstance(error, TaskError) and error.title == "Importing"
    assert "ZeroDivisionError" in error.traceback and error.message == "division by zero"


def test_cancel_stops_a_job_that_checks_and_no_partial_follows(queued):
    runner, queue = queued
    started = threading.Event()

    def work(progress):
        started.set()
        while True:
            progress.check()
            threading.Event().wait(0.01)

    job = runner.start("Waiting", work)
    events = _record(job)
    assert started.wait(10)
    job.cancel()
    job.post_partial("too late")  # after a cancel: dropped
    queue.run_until(lambda: job.is_done)
    assert [n for n, _a, _t in events] == ["cancelled", "done"]


def test_cancelled_raised_inside_is_a_cancel_and_call_now_delivers_in_the_worker():
    def work(progress):
        raise Cancelled("stop")

    runner = JobRunner()  # the headless default: events delivered at once, in the worker
    job = runner.make_job("Stopping", work)
    events = _record(job)  # connected before it runs
    runner.submit(job)
    assert runner.wait(30)
    assert [n for n, _a, _t in events] == ["cancelled", "done"]
    assert {t for _n, _a, t in events} != {threading.main_thread()}
    assert job.outcome == "cancelled" and job.is_done
    assert runner.shutdown(10)
