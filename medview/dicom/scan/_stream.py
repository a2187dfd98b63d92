"""Streaming header scan for imports of any size: batches of paths in, headers out.

:func:`medview.dicom.scan.scanner.scan_batches` takes the whole list of files; an import of a
100,000-file tree must not hold one. Here the paths arrive as an iterator of batches (from a
folder walk), at most a few batches per worker are in flight, and results are handed on as
they complete, so memory stays flat in the number of files. The process pool is started only
once enough files have queued up to be worth its start-up (:data:`POOL_MIN_FILES`): a re-index
that finds ten changed files scans them here.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator

from medview.dicom.scan.header import InstanceHeader
from medview.dicom.scan.scanner import (
    POOL_MIN_FILES,
    _scan_batch,
    _scan_batch_packed,
    _unpack,
)

__all__ = ["scan_stream"]

log = logging.getLogger(__name__)

_IN_FLIGHT_PER_WORKER = 3  # keeps the workers busy while the parent writes the catalog


def _pool_workers(workers: int | None) -> int:
    if workers is not None:
        return max(1, int(workers))
    return max(1, min(os.cpu_count() or 1, 4))


def scan_stream(
    batches: Iterable[list[str]], *, workers: int | None = None
) -> Iterator[tuple[list[InstanceHeader], list[tuple[str, str]], int]]:
    """Scan batches of paths as they come; yields (headers, errors, files) per batch.

    Parameters
    ----------
    batches : iterable of list of str
        Paths to read, a batch at a time (consumed lazily).
    workers : int, optional
        Processes; 1 scans here. Default: up to 4 (the CPUs), started only after
        :data:`~medview.dicom.scan.scanner.POOL_MIN_FILES` files queued up.

    Notes
    -----
    Results come in completion order. Closing the generator (a cancelled import) drops the
    pending batches and stops the pool.
    """
    it = iter(batches)
    n_workers = _pool_workers(workers)
    if n_workers <= 1:
        for b in it:
            yield (*_scan_batch(b), len(b))
        return
    # queue batches until the pool is worth starting, or the stream ends
    queued: deque[list[str]] = deque()
    n_queued = 0
    for b in it:
        queued.append(b)
        n_queued += len(b)
        if workers is not None or n_queued >= POOL_MIN_FILES:
            break
    else:
        for b in queued:
            yield (*_scan_batch(b), len(b))
        return
    yield from _pooled(queued, it, n_workers)


def _pooled(queued: deque[list[str]], rest: Iterator[list[str]], n_workers: int):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from medview.children import die_with_parent

    limit = n_workers * _IN_FLIGHT_PER_WORKER
    pending: dict = {}  # future → batch
    exhausted = False
    try:
        pool = ProcessPoolExecutor(
            max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent, initargs=(os.getpid(),),
        )
        try:
            while True:
                while len(pending) < limit and not exhausted:
                    if queued:
                        b = queued.popleft()
                    else:
                        b = next(rest, None)
                        if b is None:
                            exhausted = True
                            break
                    pending[pool.submit(_scan_batch_packed, b)] = b
                if not pending:
                    return
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    packed, errors = fut.result()
                    b = pending.pop(fut)
                    yield [_unpack(v) for v in packed], errors, len(b)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    except (BrokenProcessPool, OSError) as exc:
        # e.g. a __main__ that cannot be re-imported (python - < script): finish here
        log.warning("header scan process pool failed (%s); scanning in this process", exc)
    for b in [*pending.values(), *queued]:
        yield (*_scan_batch(b), len(b))
    for b in rest:
        yield (*_scan_batch(b), len(b))
