"""Jobs on a Dask distributed cluster: the input and the result travel in chunks.

Memory on the server is bounded by a chunk, never by a job's size: a worker that sees the
server's job folder (same machine, shared file system; proved per job with a random token
written there) reads ``input.bin`` itself and writes the result into the job folder; any other
worker gets the input scattered straight to it in ``chunk_bytes`` pieces and keeps its result
in its spool folder, from which the server fetches it in chunks
(:mod:`medview.server.dask_fetch`). Either way each step's output is written as the step makes
it and the server announces it at once (fetched: as it fetches it), so the client downloads it
while the later steps still compute (:mod:`medview.server.streams`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

from medview.core.progress import Cancelled
from medview.server.dask_fetch import SpoolFetch
from medview.server.executors import OnProgress, OnResult, WorkerLost

__all__ = ["DaskExecutor"]

log = logging.getLogger("medview.server")
_POLL_S = 0.25


class DaskExecutor:
    """Jobs as tasks on the Dask distributed cluster whose scheduler is at ``address``.

    Each job is one task, so a batch of series (several jobs) spreads over the workers.
    Progress comes back as worker events (``medview-progress``), cancellation goes out as a
    Dask ``Event``. A task first runs without its input: on a worker that sees the job folder
    it reads the input there; otherwise it returns at once, the input is scattered to that
    worker in ``chunk_bytes`` pieces and the task runs again with them. A result in a worker's
    spool is fetched in ``chunk_bytes`` pieces (``fetch_window`` at a time), each within
    ``chunk_timeout_s``; the server holds at most the window, never the result.
    """

    def __init__(self, address: str, *, timeout_s: float = 20.0, fetch_always: bool = False,
                 chunk_bytes: int = 8 << 20, chunk_timeout_s: float = 120.0,
                 fetch_window: int = 4, worker_timeout_s: float = 60.0):
        from distributed import Client

        from medview.server.dask_spool_reader import spool_reader
        from medview.server.dask_tasks import PROGRESS_TOPIC, spool_sweeper

        self.address = address
        self.name = f"dask {address}"
        #: fetch results from the workers even when they see the job folder (tests, benchmarks)
        self.fetch_always = fetch_always
        self.chunk_bytes = int(chunk_bytes)
        self.chunk_timeout_s = float(chunk_timeout_s)
        self.fetch_window = max(1, int(fetch_window))
        #: how long a job waits while the cluster has no worker at all before it is retried
        self.worker_timeout_s = float(worker_timeout_s)
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except OSError as exc:
            raise OSError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._progress: dict[str, dict] = {}
        self._futures: dict[str, object] = {}
        self._cancelled: set[str] = set()
        self._announce: dict[str, tuple[int, OnResult, Path]] = {}
        self._fetches: dict[str, tuple[int, SpoolFetch]] = {}
        self._workers_lock = threading.Lock()
        self._workers_seen = (0.0, 1)  # (when asked, how many workers)
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_event)
        try:
            self.client.register_plugin(spool_sweeper(), name="medview-spool-sweeper")
        except Exception as exc:  # a worker that cannot: its spool's own sweep remains
            log.warning("the spool sweeper could not be installed on the workers: %s", exc)
        try:  # the spool's bytes go straight from the worker, not behind its task thread
            self.client.register_plugin(spool_reader(), name="medview-spool-reader")
        except Exception as exc:  # such a worker's results cannot be fetched: WorkerLost
            log.warning("the spool reader could not be installed on the workers: %s", exc)

    @property
    def slots(self) -> int:
        """Jobs running at once: the threads of the workers connected now (at least 1)."""
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception:  # the scheduler is away: a batch still gets one job at a time
            return 1
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def _n_workers(self) -> int:
        """Workers connected now, asked at most once a second for all jobs together."""
        with self._workers_lock:
            when, n = self._workers_seen
            if time.monotonic() - when > 1.0:
                try:
                    n = len(self.client.scheduler_info(n_workers=-1).get("workers", {}))
                except Exception:  # the scheduler is away: as good as no worker
                    n = 0
                self._workers_seen = (time.monotonic(), n)
            return n

    def _on_event(self, event) -> None:
        _, msg = event
        if not isinstance(msg, dict) or "job" not in msg:
            return
        job_id = str(msg["job"])
        said = msg.get("result_ready", msg.get("result_bytes"))
        if "spool" in msg:  # a result spooled on the worker: fetched as it is written
            fetch = self._fetches.get(job_id)
            if fetch is not None and said is not None and msg.get("attempt") == fetch[0]:
                size = msg.get("result_bytes")
                fetch[1].announce(str(msg.get("worker")), str(msg["spool"]), int(said),
                                  None if size is None else int(size))
            return
        want = self._announce.get(job_id)
        if want is not None and said is not None and msg.get("attempt") == want[0]:
            attempt, on_result, job_dir = want
            size = msg.get("result_bytes")
            # the path is the server's own, never one a worker names
            on_result(job_dir / f"result.{attempt}.part", None if size is None else int(size),
                      int(said))
        if "fraction" in msg:  # not only how far the result file will reach
            self._progress[job_id] = msg

    def run(self, job_id: str, job_dir: Path, attempt: int, on_progress: OnProgress,
            on_result: OnResult | None = None) -> Path:
        import secrets

        from medview.server.dask_tasks import run_on_dask

        job_dir = job_dir.resolve()
        nonce = "" if self.fetch_always else secrets.token_hex(16)
        if nonce:  # a worker that reads it back sees this folder: input and result go there
            (job_dir / "dask-nonce").write_text(nonce)
        self._progress.pop(job_id, None)
        if on_result is not None:
            self._announce[job_id] = (attempt, on_result, job_dir)
        fetch = SpoolFetch(self.client, job_dir / f"result.{attempt}.part",
                           chunk_bytes=self.chunk_bytes, chunk_timeout_s=self.chunk_timeout_s,
                           window=self.fetch_window, on_result=on_result)
        self._fetches[job_id] = (attempt, fetch)
        held: list = []
        try:
            info = self._await(job_id, self.client.submit(
                run_on_dask, job_id, None, str(job_dir), nonce, attempt,
                key=f"medview-job-{job_id}-{attempt}", pure=False), on_progress)
            if info.get("need_input"):
                if job_id in self._cancelled:
                    raise Cancelled("cancelled")
                # that worker does not see the folder: the input goes to it in chunks (the
                # task depends on them, so its loss cancels the task: WorkerLost, run again)
                held = self._scatter_input(job_dir / "input.bin", str(info["worker"]))
                info = self._await(job_id, self.client.submit(
                    run_on_dask, job_id, held, str(job_dir), "", attempt,
                    key=f"medview-job-{job_id}-{attempt}-input", pure=False), on_progress)
        except BaseException:
            self._drop_fetch(fetch)
            raise
        finally:
            for h in held:
                h.release()
            self._fetches.pop(job_id, None)
            self._announce.pop(job_id, None)
            (job_dir / "dask-nonce").unlink(missing_ok=True)
            (job_dir / f"started.{attempt}").unlink(missing_ok=True)
        if info.get("orphan") or info.get("rerun") or info["shared"]:
            self._drop_fetch(fetch)
        if info.get("orphan"):  # never for a live server; said rather than assumed
            raise WorkerLost(f"the scheduler dropped the job on {info['worker']}")
        if info.get("rerun"):
            raise WorkerLost(f"the Dask worker running the job died (the scheduler started it "
                             f"again on {info['worker']})")
        if info["shared"]:
            part = Path(info["path"])
            if part.parent != job_dir or not part.is_file() or \
                    part.stat().st_size != info["size"]:
                raise WorkerLost(f"the result file {part} written by {info['worker']} is "
                                 "missing or incomplete")
            return part
        return self._fetch(job_id, info, fetch, on_progress)

    def _scatter_input(self, path: Path, worker: str) -> list:
        """``path`` scattered to ``worker`` in ``chunk_bytes`` pieces (one in memory here)."""
        held = []
        try:
            with open(path, "rb") as f:
                while chunk := f.read(self.chunk_bytes):
                    held.append(self.client.scatter(chunk, workers=[worker], direct=True,
                                                    hash=False, timeout=self.worker_timeout_s))
                    del chunk
        except Exception as exc:
            for h in held:
                h.release()
            raise WorkerLost(f"the input could not be sent to the Dask worker {worker} "
                             f"({type(exc).__name__}: {exc})", started=False) from None
        return held

    def _await(self, job_id: str, fut, on_progress: OnProgress) -> dict:
        """The task's (small) summary; WorkerLost, JobFailed or Cancelled otherwise."""
        from distributed import KilledWorker
        from distributed import wait as dask_wait
        from distributed.client import FutureCancelledError

        from medview.server.worker import JobFailed

        self._futures[job_id] = fut
        if job_id in self._cancelled:  # cancelled between two tasks of the job
            fut.cancel()
        last = None
        no_worker_since = None
        try:
            while True:
                # wait on completion; never poll result(timeout=…), which drops a transfer
                # in flight on every timeout (the task's value is small here anyway)
                with contextlib.suppress(TimeoutError, CancelledError), \
                        self.client.as_current():
                    dask_wait(fut, timeout=_POLL_S)
                p = self._progress.get(job_id)
                if p is not None and p is not last:
                    last = p
                    on_progress(float(p["fraction"]), str(p["message"]), str(p["worker"]))
                if fut.status == "pending":
                    if p is None and self._n_workers() == 0:
                        no_worker_since = no_worker_since or time.monotonic()
                        if time.monotonic() - no_worker_since > self.worker_timeout_s:
                            raise WorkerLost(f"no Dask worker was there to take the job within "
                                             f"{self.worker_timeout_s:g} s", started=False)
                    else:
                        no_worker_since = None
                    continue
                try:
                    return fut.result()
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

    def _fetch(self, job_id: str, info: dict, fetch: SpoolFetch,
               on_progress: OnProgress) -> Path:
        """The rest of a result spooled on a worker (what was announced while the chain ran
        may be here already), straight from that worker (not through the scheduler)."""
        from medview.server.dask_tasks import remove_spooled

        size, worker, path = int(info["size"]), str(info["worker"]), str(info["path"])
        t0 = time.perf_counter()
        try:
            fetch.finish(worker, path, size, on_progress,
                         cancelled=lambda: job_id in self._cancelled)
            log.info("fetched %d result bytes from %s (%.2f s after the chain)", size, worker,
                     time.perf_counter() - t0)
        except BaseException:
            self._drop_fetch(fetch, worker, path)
            raise
        # deleted before the job is done (a server killed right after must not leave it),
        # in the worker's event loop: not behind a job its task thread may have started
        try:
            self.client.run(remove_spooled, path, workers=[worker], on_error="ignore")
        except Exception as exc:  # the worker's own sweep remains
            log.warning("the spooled result %s on %s was not deleted: %s", path, worker, exc)
        return fetch.part

    def _drop_fetch(self, fetch: SpoolFetch, worker: str | None = None,
                    path: str | None = None) -> None:
        """The attempt has no result: stop fetching, delete the part file and what the
        worker spooled (a worker that failed deletes its own; this is for the others)."""
        from distributed import fire_and_forget

        from medview.server.dask_tasks import remove_spooled

        fetch.abort()
        worker, path = worker or fetch.worker, path or fetch.path
        if worker and path:
            with contextlib.suppress(Exception):
                fire_and_forget(self.client.submit(remove_spooled, path, workers=[worker],
                                                   allow_other_workers=False, pure=False))

    def forget(self, job_id: str) -> None:
        """The job ended after more than one attempt: delete what earlier attempts left in
        the workers' spools (asked of every worker; one that does not answer is skipped)."""
        from medview.server.dask_tasks import remove_job_spool

        try:
            self.client.run(remove_job_spool, job_id, on_error="ignore")
        except Exception as exc:  # the scheduler is away: the spool's own sweep remains
            log.warning("job %s: spooled results of earlier attempts not removed (%s)",
                        job_id, exc)

    def cancel(self, job_id: str, job_dir: Path) -> None:
        from distributed import Event

        self._cancelled.add(job_id)
        Event(f"medview-cancel-{job_id}", client=self.client).set()
        fut = self._futures.get(job_id)
        if fut is not None and fut.status == "pending":
            fut.cancel()

    def close(self) -> None:
        self.client.close()
