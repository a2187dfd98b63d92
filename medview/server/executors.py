"""Where jobs run: a local process pool (spawn) or a Dask distributed cluster.

Both have one blocking method, ``run(job_id, job_dir, attempt, on_progress)``, that returns the
path of a complete result part file (not yet in place) or raises :class:`WorkerLost` (the
process or Dask worker running the job died: the manager retries once), ``JobFailed`` (the job
cannot succeed) or ``Cancelled``.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from medview.core.progress import Cancelled

__all__ = ["DaskExecutor", "PoolExecutor", "WorkerLost"]

OnProgress = Callable[[float, str, str], None]  # fraction, message, worker
_POLL_S = 0.25


class WorkerLost(Exception):
    """The process running a job died (killed, out of memory, machine lost)."""

    def __init__(self, message: str, *, started: bool = True):
        super().__init__(message)
        self.started = started


class PoolExecutor:
    """Jobs in a pool of ``workers`` spawned processes on this machine."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers: need at least 1, got {workers}")
        self.workers = workers
        self.name = f"process pool ({workers} worker{'s' if workers > 1 else ''})"
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._futures: dict[str, object] = {}

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        from medview.server.worker import init_pool_process

        # the machine's cores shared among the processes, unless MEDVIEW_THREADS says otherwise
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        # spawn, never fork: fork is unsafe in a process with threads (uvicorn, SQLite); the
        # initializer makes each process end with the server, also after a kill -9
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_pool_process,
                                   initargs=(threads, os.getpid()))

    def warm_up(self) -> None:
        """Start the pool's processes now (imports take seconds), not with the first job."""
        from medview.server.worker import warm_up

        with self._lock:
            for _ in range(self.workers):
                self._pool.submit(warm_up)

    def run(self, job_id: str, job_dir: Path, attempt: int, on_progress: OnProgress) -> Path:
        from medview.server.worker import run_in_pool

        progress_file = job_dir / "progress.json"
        progress_file.unlink(missing_ok=True)
        with self._lock:
            pool = self._pool
            fut = pool.submit(run_in_pool, str(job_dir), attempt)
        self._futures[job_id] = fut
        last = None
        try:
            while True:
                try:
                    return Path(fut.result(timeout=_POLL_S))
                except FutureTimeout:
                    pass
                except BrokenProcessPool:
                    with self._lock:
                        if self._pool is pool:  # the first job to notice replaces the pool
                            pool.shutdown(wait=False, cancel_futures=True)
                            self._pool = self._new_pool()
                    raise WorkerLost("the pool process running the job died",
                                     started=progress_file.exists()) from None
                except CancelledError:
                    raise Cancelled("cancelled before it started") from None
                try:
                    p = json.loads(progress_file.read_text())
                except (OSError, ValueError):
                    continue
                if p != last:
                    last = p
                    on_progress(float(p["fraction"]), str(p["message"]), str(p["worker"]))
        finally:
            self._futures.pop(job_id, None)

    def cancel(self, job_id: str, job_dir: Path) -> None:
        (job_dir / "cancel").touch()
        fut = self._futures.get(job_id)
        if fut is not None:
            fut.cancel()

    def close(self) -> None:
        """Stop now: running jobs are abandoned (their state stays "running", so the next
        server start runs them again) rather than holding up the shutdown."""
        with self._lock:
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()


class DaskExecutor:
    """Jobs as tasks on the Dask distributed cluster whose scheduler is at ``address``.

    Each job is one task, so a batch of series (several jobs) spreads over the workers.
    Progress comes back as
    worker events (``medview-progress``), cancellation goes out as a Dask ``Event``.
    """

    def __init__(self, address: str, *, timeout_s: float = 20.0):
        from distributed import Client

        from medview.server.worker import PROGRESS_TOPIC

        self.address = address
        self.name = f"dask {address}"
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except OSError as exc:
            raise OSError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._progress: dict[str, dict] = {}
        self._futures: dict[str, object] = {}
        self._cancelled: set[str] = set()
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_event)

    def _on_event(self, event) -> None:
        _, msg = event
        if isinstance(msg, dict) and "job" in msg:
            self._progress[str(msg["job"])] = msg

    def run(self, job_id: str, job_dir: Path, attempt: int, on_progress: OnProgress) -> Path:
        from distributed import Future, KilledWorker
        from distributed.client import FutureCancelledError

        from medview.server.worker import JobFailed, run_on_dask

        data = (job_dir / "input.bin").read_bytes()
        self._progress.pop(job_id, None)
        # the bundle goes with the task (not scattered to one worker): the scheduler keeps it,
        # so when the worker running the job dies the scheduler can run it elsewhere
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            fut: Future = self.client.submit(run_on_dask, job_id, data,
                                             key=f"medview-job-{job_id}-{attempt}", pure=False)
        del data
        self._futures[job_id] = fut
        last = None
        try:
            while True:
                try:
                    result = fut.result(timeout=_POLL_S)
                    break
                except TimeoutError:
                    pass
                except KilledWorker as exc:
                    raise WorkerLost(f"the Dask worker running the job died ({exc})") from None
                except (CancelledError, FutureCancelledError) as exc:
                    if job_id in self._cancelled:
                        raise Cancelled("cancelled") from None
                    raise WorkerLost(f"the Dask scheduler lost the job ({exc})",
                                     started=job_id in self._progress) from None
                except (JobFailed, Cancelled):
                    raise
                except Exception as exc:
                    if fut.status == "error":  # the task itself raised: not a lost worker
                        raise
                    # e.g. the worker holding a finished result died while it was fetched
                    raise WorkerLost(f"the result was lost on the way back from the Dask "
                                     f"worker ({type(exc).__name__}: {exc})") from None
                p = self._progress.get(job_id)
                if p is not None and p is not last:
                    last = p
                    on_progress(float(p["fraction"]), str(p["message"]), str(p["worker"]))
        finally:
            self._futures.pop(job_id, None)
            fut.release()
        part = job_dir / f"result.{attempt}.part"
        with open(part, "wb") as f:
            f.write(result)
            f.flush()
            os.fsync(f.fileno())
        return part

    def cancel(self, job_id: str, job_dir: Path) -> None:
        from distributed import Event

        self._cancelled.add(job_id)
        Event(f"medview-cancel-{job_id}", client=self.client).set()
        fut = self._futures.get(job_id)
        if fut is not None and fut.status == "pending":
            fut.cancel()

    def close(self) -> None:
        self.client.close()
