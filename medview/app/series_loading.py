"""Opening a series the way the window does it, in plain Python (no Qt): first image early.

:func:`load_series_progressively` runs in a worker. It reads the slice the viewer will show
first (the middle one), hands it to ``on_first`` with a window to show it with, then fills
the rest of the volume outwards from there (the views poll ``FirstImage.loaded``), and
returns the whole volume with its final windows. Stacks that cannot be read slice by slice
(resampled, multi-frame, mosaic: see :mod:`medview.dicom.series.progressive`) are read whole, and
``on_first`` is not called.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medview.app.windowing import default_window, initial_windows
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = ["FirstImage", "LoadedSeries", "load_series_progressively"]

Window = tuple[float, float]

#: How long the worker waits, at most, for the GUI to draw the first image before it reads
#: on. Drawing it takes ~10 ms alone, but >100 ms while two reading threads hold the GIL most
#: of the time: the GUI thread gets it back only at their switch points, once per Python
#: call into Qt.
FIRST_PAINT_WAIT_S = 0.5


@dataclass(frozen=True)
class FirstImage:
    """The volume as soon as its first slice is read (the array fills in afterwards)."""

    volume: Volume
    #: which slices hold their values; written by the worker, read by the views
    loaded: np.ndarray
    #: the slice read first
    first: int
    #: the default window, from the DICOM header or the first slice
    window: Window
    #: set by the GUI once the first image is drawn; the worker waits for it (a little)
    shown: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True)
class LoadedSeries:
    """The outcome of a load: the volume, its windows and the slices that failed."""

    volume: Volume
    windows: tuple[Window, Window | None]
    #: ``str`` of each :class:`~medview.dicom.series.progressive.SliceFailure` (empty: complete)
    failures: tuple[str, ...] = ()
    #: the stack read (a phase or time point of a 4D series) and how many the series has
    stack: int = 0
    n_stacks: int = 1

    @property
    def complete(self) -> bool:
        return not self.failures


def load_series_progressively(
    cat,
    series_uid: str,
    *,
    stack: int | None = None,
    on_first: Callable[[FirstImage], None] | None = None,
    progress: Progress = NO_PROGRESS,
) -> LoadedSeries:
    """Load catalog series ``series_uid``, calling ``on_first`` once its first slice is read.

    Parameters
    ----------
    cat : Catalog
        Where the series is.
    series_uid : str
        The series.
    stack : int, optional
        Which stack (a phase or time point of a 4D series) to read; default the series'
        default stack. Only that stack's pixels are read.
    on_first : callable, optional
        ``on_first(FirstImage)``, called in this thread after the first slice is read and
        before the others are; the others are read once ``FirstImage.shown`` is set (or
        :data:`FIRST_PAINT_WAIT_S` passed).
    progress : Progress, optional
        Progress ("loaded n of N slices") and cancellation.

    Returns
    -------
    LoadedSeries
        Slices that could not be decoded are listed in ``failures`` (they are zero in the
        volume); the rest is read.

    Raises
    ------
    Cancelled
        If ``progress`` was cancelled.
    SeriesError, PixelDataError
        If the series cannot be assembled, or its first slice (or, for a stack read whole,
        any slice) cannot be decoded.
    """
    from medview.dicom.series.progressive import open_progressive

    load = open_progressive(series_uid, catalog=cat, stack=stack,
                            progress=progress.sub(0.0, 0.02))
    if load.progressive:
        k = load.read_first()
        if on_first is not None:
            first = FirstImage(load.volume, load.loaded, k, default_window(load.volume, z=k))
            on_first(first)
            deadline = time.monotonic() + FIRST_PAINT_WAIT_S
            while (not first.shown.wait(0.01) and not progress.cancelled
                   and time.monotonic() < deadline):
                pass
    # one reading thread: two are barely faster here (the page cache is the limit) but take
    # the GIL from the GUI thread twice as often, and the event loop must keep answering
    for _ in load.fill(progress=progress.sub(0.02, 0.98), threads=1):
        pass
    progress.update(0.98, "choosing the window")
    volume = load.volume
    windows = initial_windows(volume)
    progress.update(1.0, "loaded")
    return LoadedSeries(volume, windows, tuple(str(f) for f in load.failures),
                        stack=load.plan.chosen, n_stacks=len(load.plan.stacks))
