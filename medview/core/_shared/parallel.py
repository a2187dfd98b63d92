"""Per-slice work on all cores: OpenCV, SciPy and SimpleITK release the GIL, so threads work."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from medview.core.progress import NO_PROGRESS, Progress

__all__ = ["map_slices", "worker_count"]


def worker_count() -> int:
    """Threads for per-slice work: $MEDVIEW_THREADS or the number of usable cores."""
    env = os.environ.get("MEDVIEW_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def map_slices(func: Callable[[np.ndarray], np.ndarray], src: np.ndarray, out: np.ndarray, *,
               axis: int = 0, progress: Progress = NO_PROGRESS, message: str = "") -> np.ndarray:
    """``out[k] = func(src[k])`` along ``axis`` for every k, in threads, with progress/cancel.

    Slices are handed out in chunks; cancellation is checked before every chunk.
    """
    n = src.shape[axis]
    threads = worker_count()
    chunk = max(1, n // (threads * 8))
    starts = list(range(0, n, chunk))

    def work(start: int) -> int:
        progress.check()
        for k in range(start, min(n, start + chunk)):
            idx = (slice(None),) * axis + (k,)
            out[idx] = func(src[idx])
        return min(n, start + chunk) - start

    done = 0
    if threads == 1 or n < 4:
        for s in starts:
            done += work(s)
            progress.update(done / n, message)
        return out
    with ThreadPoolExecutor(threads) as pool:
        for count in pool.map(work, starts):
            done += count
            progress.update(done / n, message)
    return out
