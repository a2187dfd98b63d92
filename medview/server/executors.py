"""Where jobs run: a local process pool (spawn) or a Dask distributed cluster
(:mod:`medview.server.dask_executor`).

Both have one blocking method, ``run(job_id, job_dir, attempt, on_progress, on_result)``, that
returns the path of a complete result part file (not yet in place) or raises
:class:`WorkerLost` (the process or Dask worker running the job died: the manager retries
once), ``JobFailed`` (the job cannot succeed) or ``Cancelled``. ``on_result(part, size, ready)``
is called as the part file is written: ``ready`` the bytes it will reach (each output is written
as soon as its step has made it), ``size`` its final size once known (else None); the server
streams it to the client from the first call on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from medview.core.progress import Cancelled

__all__ = ["OnProgress", "OnResult", "PoolExecutor", "WorkerLost"]  # DaskExecutor: lazily

log = logging.getLogger("medview.server")
OnProgress = Callable[[float, str, str], None]  # fraction, message, worker
#: the part file being written, its final size (None: not known yet), the bytes it will reach
OnResult = Callable[[Path, "int | None", int], None]
_POLL_S = 0.25
#: how often a started pool job's progress file is read (it announces the result's size)
_POLL_STARTED_S = 0.02


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

    @property
    def slots(self) -> int:
        """Jobs running at once."""
        return self.workers

    def warm_up(self) -> None:
        """Start the pool's processes now (imports take seconds), not with the first job."""
        from medview.server.worker import warm_up

        with self._lock:
            for _ in range(self.workers):
                self._pool.submit(warm_up)

    def run(self, job_id: str, job_dir: Path, attempt: int, on_progress: OnProgress,
            on_result: OnResult | None = None) -> Path:
        from medview.server.worker import run_in_pool

        progress_file = job_dir / "progress.json"
        progress_file.unlink(missing_ok=True)
        with self._lock:
            pool = self._pool
            fut = pool.submit(run_in_pool, str(job_dir), attempt)
        self._futures[job_id] = fut
        last = None
        announced: tuple = (None, None)
        started = False
        try:
            while True:
                # wait on completion, then take the (small) value: never result(timeout=…)
                if wait_futures([fut], timeout=_POLL_STARTED_S if started else _POLL_S).done:
                    try:
                        return Path(fut.result())
                    except BrokenProcessPool:
                        with self._lock:
                            if self._pool is pool:  # the first job to notice replaces it
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
                started = True
                if p != last:
                    last = p
                    on_progress(float(p["fraction"]), str(p["message"]), str(p["worker"]))
                    size = p.get("result_bytes")
                    said = (p.get("result_ready", size), size)
                    if said[0] is not None and p.get("attempt") == attempt and \
                            said != announced and on_result is not None:
                        announced = said
                        on_result(job_dir / f"result.{attempt}.part",
                                  None if size is None else int(size), int(said[0]))
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


def __getattr__(name: str):
    if name == "DaskExecutor":  # its own module (imported only with --dask)
        from medview.server.dask_executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
