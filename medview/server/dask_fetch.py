"""The server's copy of a result spooled on a Dask worker, fetched while it is written.

A worker that cannot see the server's job folder writes each step's output into its spool
as the step makes it (header-last, :mod:`medview.server.result_writer`) and says how far the
file will reach (worker events with ``spool``, ``result_ready`` and, once known,
``result_bytes``). :class:`SpoolFetch` copies what is announced into the job's part file,
``chunk_bytes`` at a time and ``window`` requests at once, straight from that worker's RPC
server (:mod:`medview.server.dask_spool_reader`; never through the scheduler, never behind
the worker's task thread, which still runs the chain), and the server announces the same
bytes to its :class:`~medview.server.streams.ResultStream`, so the client downloads them
meanwhile. Memory here is bounded by the window, never by the result. An attempt that ends
without its result leaves no part file (the client, reading a bundle without its footer,
never takes what it got for a result either).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from medview.core.progress import Cancelled
from medview.server.executors import OnProgress, OnResult, WorkerLost
from medview.server.worker import SyncBehind

__all__ = ["SpoolFetch"]

_WAIT_S = 0.1


class SpoolFetch:
    """One attempt's spooled result copied into ``part`` as it is announced.

    :meth:`announce` (from the events) says where it is and how far it will reach and
    starts the copy; :meth:`finish` (once the task has returned) waits for all of it;
    :meth:`abort` stops and deletes the part file.
    """

    def __init__(self, client, part: Path, *, chunk_bytes: int, chunk_timeout_s: float,
                 window: int, on_result: OnResult | None):
        self.client = client
        self.part = Path(part)
        self.chunk_bytes = int(chunk_bytes)
        self.chunk_timeout_s = float(chunk_timeout_s)
        self.window = max(1, int(window))
        self._on_result = on_result
        self.worker: str | None = None
        self.path: str | None = None
        self.ready = 0
        self.size: int | None = None
        self.have = 0  # bytes in the part file (the worker may release them from its spool)
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def announce(self, worker: str, path: str, ready: int, size: int | None) -> None:
        """The spooled file ``path`` on ``worker`` will reach ``ready`` bytes (``size`` once
        final). Announcements of another file than the first are ignored (never mixed)."""
        with self._cond:
            if self._stop:
                return
            if self.worker is None:
                self.worker, self.path = worker, path
            elif (worker, path) != (self.worker, self.path):
                return
            if self.size is None:
                self.ready = max(self.ready, int(ready))
                if size is not None:
                    self.size = self.ready = int(size)
            ready, size = self.ready, self.size
            if self._thread is None:
                self._thread = threading.Thread(target=self._copy, daemon=True,
                                                name=f"medview-fetch-{self.part.parent.name}")
                self._thread.start()
            self._cond.notify_all()
        if self._on_result is not None:  # the server has them soon: the client may ask
            self._on_result(self.part, size, ready)

    def _copy(self) -> None:
        asked: deque = deque()
        pos = 0  # the next byte asked for
        try:
            # the part goes to disk as it grows
            with open(self.part, "wb") as f, SyncBehind(f.fileno()) as syncer:
                while True:
                    with self._cond:
                        while not (self._stop or asked or pos < self.ready or
                                   (self.size is not None and pos >= self.size)):
                            self._cond.wait(_WAIT_S)
                        if self._stop:
                            return
                        ready, size = self.ready, self.size
                    if size is not None and pos >= size and not asked:
                        f.flush()
                        syncer.finish()
                        return
                    while pos < ready and len(asked) < self.window:
                        n = min(self.chunk_bytes, ready - pos)
                        asked.append((pos, n, self._ask(pos, n)))
                        pos += n
                    offset, n, fut = asked.popleft()
                    chunk = self._take(fut, offset, n)
                    f.write(chunk)
                    del chunk
                    self.have = offset + n
                    syncer.wrote(n)
        except BaseException as exc:  # said by finish()
            self.error = exc
        finally:
            for *_, fut in asked:
                fut.cancel()

    def _ask(self, offset: int, n: int):
        from medview.server.dask_spool_reader import HANDLER

        async def read():
            rpc = self.client.rpc(self.worker)
            return await getattr(rpc, HANDLER)(
                path=self.path, offset=offset, size=n, timeout_s=self.chunk_timeout_s,
                release_below=self.have)

        return asyncio.run_coroutine_threadsafe(read(), self.client.loop.asyncio_loop)

    def _take(self, fut, offset: int, n: int):
        import concurrent.futures

        what = f"the result could not be fetched from {self.worker}"
        end = time.monotonic() + self.chunk_timeout_s
        while True:
            if self._stop:
                raise Cancelled("the fetch was stopped")
            try:
                got = fut.result(timeout=_WAIT_S)
                break
            except concurrent.futures.TimeoutError:
                if time.monotonic() > end:
                    raise WorkerLost(f"{what}: no answer for bytes {offset}-{offset + n} "
                                     f"within {self.chunk_timeout_s:g} s") from None
            except Exception as exc:
                raise WorkerLost(f"{what} ({type(exc).__name__}: {exc})") from None
        if not isinstance(got, dict) or "data" not in got:
            why = got.get("error") if isinstance(got, dict) else repr(got)[:200]
            raise WorkerLost(f"{what}: {why}")
        chunk = got["data"]
        if len(chunk) != n:
            raise WorkerLost(f"the result on {self.worker} holds {offset + len(chunk)} bytes "
                             f"where {offset + n} were announced")
        return chunk

    def finish(self, worker: str, path: str, size: int, on_progress: OnProgress,
               cancelled: Callable[[], bool]) -> None:
        """Wait until all ``size`` bytes (the task's own word) are in the part file.

        Raises
        ------
        WorkerLost
            If the result could not be fetched (its worker died, or it is not what was
            announced).
        Cancelled
            If the job was cancelled meanwhile.
        """
        # events and the task's value travel separately: this may be the first word of it
        self.announce(worker, path, size, size)
        if (self.worker, self.path, self.size) != (worker, path, size):
            raise WorkerLost(f"the result announced ({self.worker}, {self.path}, {self.size} "
                             f"bytes) is not the one {worker} returned ({path}, {size} bytes)")
        said = time.perf_counter()
        while self._thread.is_alive():
            if cancelled():
                raise Cancelled("cancelled while its result was fetched")
            self._thread.join(_WAIT_S)
            if time.perf_counter() - said > 0.5:  # the job store writes each one
                said = time.perf_counter()
                on_progress(1.0, f"fetching the result {self.have >> 20}/{size >> 20} MiB",
                            worker)
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Stop fetching and delete the part file if this fetch wrote one (the attempt has
        no result; a worker that sees the job folder writes it there itself)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            started = self._thread
        if started is not None:
            started.join()
            with contextlib.suppress(OSError):
                self.part.unlink(missing_ok=True)
