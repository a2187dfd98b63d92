"""Where jobs run: a local process pool (spawn) or a Dask distributed cluster.

Both have one blocking method, ``run(job_id, job_dir, attempt, on_progress)``, that returns the
path of a complete result part file (not yet in place) or raises :class:`WorkerLost` (the
process or Dask worker running the job died: the manager retries once), ``JobFailed`` (the job
cannot succeed) or ``Cancelled``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from medview.core.progress import Cancelled

__all__ = ["DaskExecutor", "PoolExecutor", "WorkerLost"]

log = logging.getLogger("medview.server")
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
                # wait on completion, then take the (small) value: never result(timeout=…)
                if wait_futures([fut], timeout=_POLL_S).done:
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
    Progress comes back as worker events (``medview-progress``), cancellation goes out as a
    Dask ``Event``. The result is a file: in the job folder when the worker sees it (same
    machine, shared file system), else in the worker's spool folder, fetched from there
    in ``chunk_bytes`` pieces straight from the worker (``fetch_window`` at a time), each
    within ``chunk_timeout_s``; the server holds at most the window, never the result.
    """

    def __init__(self, address: str, *, timeout_s: float = 20.0, fetch_always: bool = False,
                 chunk_bytes: int = 16 << 20, chunk_timeout_s: float = 120.0,
                 fetch_window: int = 4, worker_timeout_s: float = 60.0):
        from distributed import Client

        from medview.server.dask_tasks import PROGRESS_TOPIC

        self.address = address
        self.name = f"dask {address}"
        #: fetch results from the workers even when they see the job folder (tests, benchmarks)
        self.fetch_always = fetch_always
        self.chunk_bytes = int(chunk_bytes)
        self.chunk_timeout_s = float(chunk_timeout_s)
        self.fetch_window = max(1, int(fetch_window))
        #: how long a job waits for a worker to take its input before it is retried
        self.worker_timeout_s = float(worker_timeout_s)
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except OSError as exc:
            raise OSError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._progress: dict[str, dict] = {}
        self._futures: dict[str, object] = {}
        self._cancelled: set[str] = set()
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_event)

    @property
    def slots(self) -> int:
        """Jobs running at once: the threads of the workers connected now (at least 1)."""
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception:  # the scheduler is away: a batch still gets one job at a time
            return 1
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def _on_event(self, event) -> None:
        _, msg = event
        if isinstance(msg, dict) and "job" in msg:
            self._progress[str(msg["job"])] = msg

    def run(self, job_id: str, job_dir: Path, attempt: int, on_progress: OnProgress) -> Path:
        import secrets

        from distributed import Future, KilledWorker
        from distributed import wait as dask_wait
        from distributed.client import FutureCancelledError

        from medview.server.dask_tasks import run_on_dask
        from medview.server.worker import JobFailed

        job_dir = job_dir.resolve()
        data = (job_dir / "input.bin").read_bytes()
        nonce = "" if self.fetch_always else secrets.token_hex(16)
        if nonce:  # a worker that reads it back sees this folder and writes the result here
            (job_dir / "dask-nonce").write_text(nonce)
        self._progress.pop(job_id, None)
        # the bundle goes straight to one worker (not into the scheduler's task graph, which
        # would hold several copies of it); when that worker dies before the job ends, the
        # input is lost with it and the job is run again (WorkerLost), scattered anew
        try:
            held = self.client.scatter(data, direct=True, hash=False,
                                       timeout=self.worker_timeout_s)
        except Exception as exc:  # no worker within the timeout: said, and retried (bounded)
            raise WorkerLost(f"the input could not be sent to a Dask worker within "
                             f"{self.worker_timeout_s:g} s ({type(exc).__name__}: {exc})",
                             started=False) from None
        del data
        fut: Future = self.client.submit(run_on_dask, job_id, held, str(job_dir), nonce,
                                         attempt, key=f"medview-job-{job_id}-{attempt}",
                                         pure=False)
        self._futures[job_id] = fut
        last = None
        try:
            while True:
                # wait on completion; never poll result(timeout=…), which drops a transfer
                # in flight on every timeout (the task's value is small here anyway)
                # (a cancelled future ends the wait with CancelledError: result() says why)
                with contextlib.suppress(TimeoutError, CancelledError), \
                        self.client.as_current():
                    dask_wait(fut, timeout=_POLL_S)
                p = self._progress.get(job_id)
                if p is not None and p is not last:
                    last = p
                    on_progress(float(p["fraction"]), str(p["message"]), str(p["worker"]))
                if fut.status == "pending":
                    continue
                try:
                    info = fut.result()
                    break
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
                    raise WorkerLost(f"the job's summary was lost on the way back from the "
                                     f"Dask worker ({type(exc).__name__}: {exc})") from None
        finally:
            self._futures.pop(job_id, None)
            fut.release()
            held.release()
            (job_dir / "dask-nonce").unlink(missing_ok=True)
        if info["shared"]:
            part = Path(info["path"])
            if part.parent != job_dir or not part.is_file() or \
                    part.stat().st_size != info["size"]:
                raise WorkerLost(f"the result file {part} written by {info['worker']} is "
                                 "missing or incomplete")
            return part
        return self._fetch(info, job_dir / f"result.{attempt}.part", on_progress)

    def _fetch(self, info: dict, part: Path, on_progress: OnProgress) -> Path:
        """Copy a result spooled on a worker into ``part`` in chunks, straight from that
        worker (not through the scheduler). ``fetch_window`` chunks are asked for at once (the
        most this process holds), each must arrive within ``chunk_timeout_s``."""
        from collections import deque

        from distributed import fire_and_forget

        from medview.server.dask_tasks import read_chunk, remove_spooled

        size, worker, path = int(info["size"]), str(info["worker"]), str(info["path"])
        where = dict(workers=[worker], allow_other_workers=False, pure=False)
        t0 = time.perf_counter()
        spans = deque((o, min(self.chunk_bytes, size - o))
                      for o in range(0, size, self.chunk_bytes))
        asked: deque = deque()
        try:
            with open(part, "wb") as f:
                while spans or asked:
                    while spans and len(asked) < self.fetch_window:
                        offset, n = spans.popleft()
                        asked.append((offset, n, self.client.submit(read_chunk, path, offset,
                                                                    n, **where)))
                    offset, n, fut = asked.popleft()
                    try:
                        chunk = self._gather_chunk(fut, worker, size, offset, n)
                    finally:
                        fut.release()
                    f.write(chunk)
                    del chunk
                    on_progress(1.0, f"fetching the result {(offset + n) >> 20}/{size >> 20} "
                                "MiB", worker)
                f.flush()
                os.fsync(f.fileno())
            log.info("fetched %d result bytes from %s in %.2f s", size, worker,
                     time.perf_counter() - t0)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            for *_, fut in asked:
                fut.release()
            with contextlib.suppress(Exception):
                fire_and_forget(self.client.submit(remove_spooled, path, **where))
        return part

    def _gather_chunk(self, fut, worker: str, size: int, offset: int, n: int) -> bytes:
        from distributed import wait as dask_wait

        what = f"the result ({size} bytes) could not be fetched from {worker}"
        try:
            with contextlib.suppress(TimeoutError, CancelledError), self.client.as_current():
                dask_wait(fut, timeout=self.chunk_timeout_s)
            if fut.status != "finished":
                raise WorkerLost(f"{what}: no answer for bytes {offset}-{offset + n} within "
                                 f"{self.chunk_timeout_s:g} s (task {fut.status})")
            chunk = self.client.gather(fut, direct=True)
        except WorkerLost:
            raise
        except Exception as exc:
            raise WorkerLost(f"{what} ({type(exc).__name__}: {exc})") from None
        if len(chunk) != n:
            raise WorkerLost(f"the result on {worker} holds {offset + len(chunk)} bytes where "
                             f"{size} were announced")
        return chunk

    def cancel(self, job_id: str, job_dir: Path) -> None:
        from distributed import Event

        self._cancelled.add(job_id)
        Event(f"medview-cancel-{job_id}", client=self.client).set()
        fut = self._futures.get(job_id)
        if fut is not None and fut.status == "pending":
            fut.cancel()

    def close(self) -> None:
        self.client.close()
