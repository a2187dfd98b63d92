"""The job manager: queue, run (with one retry when a worker dies), cancel, deliver, expire.

Plain Python with threads, no FastAPI: the routes in :mod:`medview.server.app` call it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from medview.core.progress import Cancelled
from medview.remote.schemas import JobStatus
from medview.server.executors import WorkerLost
from medview.server.store import JobStore, new_job_id
from medview.server.streams import ResultStream
from medview.server.worker import JobFailed

__all__ = ["JobManager"]


class _ServerStopping(Exception):
    """The executor went away because the server is shutting down."""

log = logging.getLogger("medview.server")
#: a job whose worker dies is run at most this many times
MAX_ATTEMPTS = 2
#: retries that do not count (the worker died before the job had started) stop here
_MAX_TRIES = 5


class JobManager:
    """Runs the jobs of ``store`` on ``executor``."""

    def __init__(self, store: JobStore, executor, *, retention_s: float = 24 * 3600.0,
                 owns_executor: bool = True):
        self.store = store
        self.executor = executor
        self._owns_executor = owns_executor
        self.retention_s = float(retention_s)
        self._threads: dict[str, threading.Thread] = {}
        #: results being written, served while they are (:mod:`medview.server.streams`)
        self._streams: dict[str, ResultStream] = {}
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Resume the jobs a previous server left queued or running; start the sweeper."""
        warm = getattr(self.executor, "warm_up", None)
        if warm is not None:
            warm()
        self._remove_leftovers()
        for job_id in self.store.list(states=("queued", "running")):
            done = self.store.job_dir(job_id) / "result.bin"
            if done.is_file():  # stopped between the rename and the database: it is done
                self._succeeded(job_id, done)
                forget = getattr(self.executor, "forget", None)
                if forget is not None:  # what its worker spooled may not have been deleted
                    forget(job_id)
                continue
            log.info("job %s: resumed after a restart", job_id)
            self.store.update(job_id, state="queued", message="resumed after a server restart")
            self._launch(job_id)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="medview-sweeper",
                                         daemon=True)
        self._sweeper.start()

    def _remove_leftovers(self) -> None:
        """What a server that was killed left behind: job folders of no job (stopped between
        the upload and the job's creation) or of a job that has nothing more to deliver."""
        keep = set(self.store.list(states=("queued", "running", "succeeded")))
        for folder in (self.store.folder / "jobs").iterdir():
            if folder.name not in keep:
                log.info("removing %s, left by a server that stopped", folder)
                shutil.rmtree(folder, ignore_errors=True)

    def shutdown(self) -> None:
        self._stop.set()
        if self._owns_executor:
            self.executor.close()

    # -- jobs ---------------------------------------------------------------------------
    def submit(self, *, owner: str, idem_key: str | None, upload: Path, steps: int
               ) -> tuple[JobStatus, bool]:
        """Queue the uploaded bundle ``upload`` (moved into the store) as a job.

        Returns the job and whether it is new; with a known idempotency key the existing job
        comes back and ``upload`` is deleted.
        """
        size = upload.stat().st_size
        # the input is in its folder before the job exists: a server stopped in between
        # leaves a folder without a job (deleted at the next start), never a job without input
        job_id = new_job_id()
        folder = self.store.job_dir(job_id)
        folder.mkdir(parents=True)
        os.replace(upload, folder / "input.bin")
        job_id, created = self.store.create(owner=owner, idem_key=idem_key, steps=steps,
                                            input_bytes=size, job_id=job_id)
        if not created:
            shutil.rmtree(folder, ignore_errors=True)
            return self.store.get(job_id), False
        self._launch(job_id)
        return self.store.get(job_id), True

    def _launch(self, job_id: str) -> None:
        t = threading.Thread(target=self._run, args=(job_id,), name=f"job-{job_id[:8]}",
                             daemon=True)
        self._threads[job_id] = t
        t.start()

    def _run(self, job_id: str) -> None:
        folder = self.store.job_dir(job_id)
        status = self.store.get(job_id)
        attempts = status.attempts if status else 0
        first = attempts + 1
        tries = 0
        try:
            while True:
                if (folder / "cancel").exists():
                    raise Cancelled("cancelled before it started")
                tries += 1
                attempts += 1
                # "queued" until a worker has really started it
                self.store.update(job_id, state="queued", attempts=attempts, progress=0.0,
                                  message="waiting for a worker")

                def on_progress(fraction: float, message: str, worker: str) -> None:
                    self.store.update(job_id, state="running", progress=fraction,
                                      message=message, worker=worker)

                def on_result(path: Path, size: int | None, ready: int | None = None, *,
                              attempt: int = attempts) -> None:
                    stream = self._streams.get(job_id)
                    if stream is None or stream.attempt != attempt:
                        self._streams[job_id] = ResultStream(job_id, path, size, attempt, ready)
                    else:
                        stream.announce(size if ready is None else ready, size)
                    self.store.on_change(job_id)  # a status long-poll answers now

                try:
                    part = self.executor.run(job_id, folder, attempts, on_progress,
                                             on_result=on_result)
                except WorkerLost as exc:
                    self._end_stream(job_id)
                    if self._stop.is_set():
                        raise _ServerStopping from None
                    if not exc.started and tries < _MAX_TRIES:
                        attempts -= 1  # it never ran: that attempt does not count
                        log.warning("job %s: %s before it started; queued again", job_id, exc)
                        continue
                    if attempts < MAX_ATTEMPTS:
                        log.warning("job %s: %s; retrying once", job_id, exc)
                        continue
                    raise JobFailed(f"{exc}, on {attempts} attempts; the job was given up "
                                    "(check the workers' memory and logs)") from None
                stream = self._streams.get(job_id)
                if stream is not None and stream.attempt == attempts:
                    size = part.stat().st_size
                    with stream._lock:  # readers never open the path between the two
                        os.replace(part, folder / "result.bin")
                        stream.path, stream.state = folder / "result.bin", "complete"
                        stream.size = stream.ready = size
                else:
                    os.replace(part, folder / "result.bin")
                self._succeeded(job_id, folder / "result.bin", attempts)
                break
        except _ServerStopping:
            log.info("job %s: left for the next start (the server is stopping)", job_id)
            return
        except Cancelled:
            if self._stop.is_set() and not (folder / "cancel").exists():
                log.info("job %s: left for the next start (the server is stopping)", job_id)
                return  # the pool dropped it on shutdown; nobody cancelled it
            self.store.update(job_id, state="cancelled", message="cancelled")
            log.info("job %s: cancelled", job_id)
        except JobFailed as exc:
            self.store.update(job_id, state="failed", error=str(exc), message="failed")
            log.info("job %s: failed: %s", job_id, exc)
        except Exception as exc:  # the boundary of a job thread: record it, never lose it
            log.exception("job %s: internal error", job_id)
            self.store.update(job_id, state="failed", message="failed",
                              error=f"internal server error: {type(exc).__name__}: {exc}")
        finally:
            self._threads.pop(job_id, None)
            self._end_stream(job_id)
            forget = getattr(self.executor, "forget", None)
            if forget is not None and (attempts > first or first > 1 or tries > 1):
                # earlier attempts (or a killed server's) may have left some; so may a try
                # that was not counted (the worker was lost before it said it started), whose
                # attempt number the next try reused
                forget(job_id)
            for p in folder.glob("result.*.part"):
                p.unlink(missing_ok=True)
            status = self.store.get(job_id)
            if status is not None and status.done:  # a stopping server keeps it for later
                (folder / "input.bin").unlink(missing_ok=True)
                if status.state != "succeeded":  # nothing left to deliver: no folder either
                    shutil.rmtree(folder, ignore_errors=True)

    def _succeeded(self, job_id: str, result: Path, attempts: int | None = None) -> None:
        size = result.stat().st_size
        fields = {"attempts": attempts} if attempts is not None else {}
        # the completion is counted with the state (the soak test checks that no job is
        # ever completed twice)
        self.store.update(job_id, state="succeeded", progress=1.0, message="done",
                          result_bytes=size, completed=True, **fields)
        log.info("job %s: succeeded (%d result bytes, attempt %s)", job_id, size,
                 attempts if attempts is not None else "before the restart")

    def _end_stream(self, job_id: str) -> None:
        stream = self._streams.pop(job_id, None)
        if stream is not None:
            stream.fail()  # no-op once complete
            self.store.on_change(job_id)

    def stream(self, job_id: str) -> ResultStream | None:
        """The result of the running attempt while it is being written, if announced."""
        return self._streams.get(job_id)

    def cancel(self, job_id: str) -> JobStatus | None:
        status = self.store.get(job_id)
        if status is None or status.done:
            return status
        folder = self.store.job_dir(job_id)
        (folder / "cancel").touch()
        self.executor.cancel(job_id, folder)
        return self.store.get(job_id)

    def result_path(self, job_id: str) -> Path:
        return self.store.job_dir(job_id) / "result.bin"

    def acknowledge(self, job_id: str) -> JobStatus | None:
        """The client has the result: delete it; the job stays listed as delivered."""
        status = self.store.get(job_id)
        if status is None or status.state != "succeeded":
            return status
        # the whole folder goes: nothing of a delivered job stays on the server. Renamed
        # now, deleted behind the answer (unlinking hundreds of MB takes a while); a server
        # stopped meanwhile deletes it at its next start (a folder of no job)
        folder = self.store.job_dir(job_id)
        trash = folder.with_name(f".delivered-{job_id}")
        try:
            os.replace(folder, trash)
        except OSError:
            trash = folder
        threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True},
                         name=f"rm-{job_id[:8]}").start()
        self.store.update(job_id, state="delivered", message="result delivered and deleted")
        return self.store.get(job_id)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> JobStatus | None:
        """Block until the job ends (for tests and benchmarks in-process)."""
        t = self._threads.get(job_id)
        if t is not None:
            t.join(timeout_s)
        return self.store.get(job_id)

    # -- retention ----------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> list[str]:
        """Delete results older than the retention period; returns the expired jobs."""
        now = time.time() if now is None else now
        expired = self.store.finished_before(now - self.retention_s)
        for job_id in expired:
            shutil.rmtree(self.store.job_dir(job_id), ignore_errors=True)
            self.store.update(job_id, state="expired",
                              message="result deleted after the retention period")
            log.info("job %s: result expired", job_id)
        return expired

    def _sweep_loop(self) -> None:
        every = max(1.0, min(60.0, self.retention_s / 4))
        while not self._stop.wait(every):
            try:
                self.sweep()
            except Exception:  # keep sweeping; the next round may succeed
                log.exception("retention sweep failed")
