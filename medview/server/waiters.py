"""Status long-polls that wake when their job changes, not on a timer.

``GET /jobs/{id}?wait=…`` holds its answer until the job ends (or its result streams). It
looked every 20 ms: on average 10 ms between a worker announcing a result and the client
hearing of it, more under load. Now the job store and manager call :meth:`Waiters.notify` (from
whatever thread changed the job) and the waiting request reads the status again at once; a
slow look every :data:`RECHECK_S` stays as a safety net. No FastAPI here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["RECHECK_S", "Waiters"]

#: a waiting request also looks again this often, notified or not
RECHECK_S = 0.25


class Waiters:
    """asyncio events of the requests waiting on each job, set from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, set[asyncio.Event]] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """The server's event loop (None when it stops: notifications are dropped)."""
        self._loop = loop

    def notify(self, job_id: str) -> None:
        """Job ``job_id`` changed: wake its waiting requests (thread-safe, never blocks)."""
        with self._lock:
            waiting = bool(self._events.get(job_id))
        loop = self._loop
        if waiting and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake, job_id)

    def _wake(self, job_id: str) -> None:
        with self._lock:
            events = list(self._events.get(job_id, ()))
        for ev in events:
            ev.set()

    @contextlib.contextmanager
    def watch(self, job_id: str):
        """An event set whenever ``job_id`` changes while the ``with`` lasts: clear it before
        reading the status, then wait on it (no change is missed in between)."""
        ev = asyncio.Event()
        with self._lock:
            self._events.setdefault(job_id, set()).add(ev)
        try:
            yield ev
        finally:
            with self._lock:
                evs = self._events.get(job_id)
                if evs is not None:
                    evs.discard(ev)
                    if not evs:
                        del self._events[job_id]

    async def wait(self, ev: asyncio.Event, timeout_s: float) -> None:
        """Until ``ev`` is set or ``min(timeout_s, RECHECK_S)`` has passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), max(0.0, min(timeout_s, RECHECK_S)))
