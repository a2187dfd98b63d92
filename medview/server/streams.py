"""A job's result as it is written: served to the client while the worker still writes it.

An executor announces a result as soon as its first bytes are about to be written (the worker
writes each step's output as soon as the step has made it, or encoded the whole result and is
about to write it, or the server is about to fetch it from a worker): the manager keeps a
:class:`ResultStream` for it and ``GET …/result`` sends the bytes as they reach the part file,
so computing, writing, fetching and downloading overlap instead of following each other.
While the chain still runs the result's size is not known: the status says ``result_ready``
(how far the file will reach) and ``GET`` with ``Range: bytes=N-`` sends ``N`` up to there
(206, ``Content-Range: bytes N-M/*``); once the size is known the status says ``streaming``
and responses carry the full length. The same code serves the finished
``result.bin``. Every response carries the ETag ``"<job>.<attempt>"``: a client resuming with
``Range`` + ``If-Range`` gets the rest of the same attempt's bytes, or the whole result anew
when the attempt changed (a worker died and the job was run again). No FastAPI here.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["STALL_S", "ResultStream", "parse_range", "read_growing"]

#: a stream whose file has not grown for this long ends the response early (the client
#: resumes with Range; the job's own retries decide whether it goes on)
STALL_S = 30.0
#: how long a reader waits between looks at a file that has not grown yet
_WAIT_S = 0.005


class ResultStream:
    """The result of one attempt of a job: ``path`` grows to ``size`` bytes.

    ``size`` is None while it is not known yet (the chain still runs and its outputs are
    written as they come); ``ready`` is how far the file will certainly reach (all of it once
    ``size`` is known). ``state`` is ``writing`` (the file grows), ``complete`` (all of it is
    there; ``path`` is then the job's ``result.bin``) or ``failed`` (the attempt ended without
    a result: readers stop).
    """

    def __init__(self, job_id: str, path: Path, size: int | None, attempt: int,
                 ready: int | None = None):
        self.job_id = job_id
        self.path = Path(path)
        self.size = None if size is None else int(size)
        self.ready = int(ready if ready is not None else size or 0)
        self.attempt = int(attempt)
        self.state = "writing"
        self._lock = threading.Lock()

    def announce(self, ready: int, size: int | None = None) -> None:
        """The file will reach ``ready`` bytes (``size`` once it is final)."""
        with self._lock:
            if self.state == "writing" and self.size is None:
                self.ready = max(self.ready, int(ready))
                if size is not None:
                    self.size = self.ready = int(size)

    @property
    def etag(self) -> str:
        return etag_for(self.job_id, self.attempt)

    def complete(self, final: Path, size: int | None = None) -> None:
        """The part file was renamed to ``final``, ``size`` bytes (call with the rename done;
        its final size may not have been announced: announcements and the job's end travel
        separately)."""
        with self._lock:
            self.path = Path(final)
            if size is not None:
                self.size = self.ready = int(size)
            self.state = "complete"

    def fail(self) -> None:
        with self._lock:
            if self.state == "writing":
                self.state = "failed"

    def open(self):
        """The file opened for reading, or None while the writer has not created it yet."""
        with self._lock:  # never between a rename and the path's update
            try:
                return open(self.path, "rb")  # closed by read_growing
            except FileNotFoundError:
                return None


def etag_for(job_id: str, attempt: int) -> str:
    return f'"{job_id}.{attempt}"'


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n``
    range within ``size`` bytes; None for no or an unusable header (send it all);
    ``(size, size)`` for a range that starts at or past the end (416)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:  # the last n bytes
            n = int(last)
            return (max(0, size - n), size) if n > 0 else None
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        return (size, size)
    if end <= start:
        return None
    return start, min(end, size)


async def read_growing(stream: ResultStream, start: int, end: int, *,
                       chunk_bytes: int = 1 << 20, stall_s: float = STALL_S
                       ) -> AsyncIterator[bytes]:
    """Bytes ``start:end`` of the stream's file, waiting for a writer that has not got there.

    Stops early (the response is then shorter than announced and the client resumes) when
    the attempt failed or the file did not grow for ``stall_s`` seconds. The file is read in
    a worker thread, ``chunk_bytes`` at a time: memory is bounded by a chunk.
    """
    from starlette.concurrency import run_in_threadpool

    f = None
    pos = start
    last_growth = time.monotonic()
    seen = start
    try:
        while pos < end:
            if f is None:
                f = await run_in_threadpool(stream.open)
                if f is None and stream.state != "writing":
                    return  # failed before it was written, or deleted (acknowledged) since
            got = b""
            want = min(chunk_bytes, end - pos)
            if f is not None:
                got = await run_in_threadpool(os.pread, f.fileno(), want, pos)
            if pos + len(got) > seen:
                seen = pos + len(got)
                last_growth = time.monotonic()
            if len(got) == want or (got and stream.state != "writing"):
                pos += len(got)
                yield got
                continue
            # right behind the writer: wait for a whole chunk rather than send crumbs (a
            # few KiB per send made a streamed download 3× slower than a finished one)
            if stream.state == "failed" or time.monotonic() - last_growth > stall_s:
                if got:
                    yield got
                return  # cut short: the client sees fewer bytes than announced and resumes
            if stream.state == "complete":
                # complete yet nothing more: a file shorter than announced (never written so)
                return
            await asyncio.sleep(_WAIT_S)
    finally:
        if f is not None:
            f.close()
