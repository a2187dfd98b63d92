# Over 400 lines on purpose: ProgressiveLoad is one class (allocate, read, cancel).
"""Progressive loading: the Volume is allocated at once and filled slice by slice.

A viewer shows the slice at the current position as soon as it is decoded and the rest as
it arrives, instead of a blank window until the whole series is read::

    load = open_progressive(series_uid, catalog=cat)      # plan only: no pixels yet
    load.read_first()                                     # the middle slice (or ``first=``)
    show(load.volume)                                     # same array object, filled in place
    for n_loaded in load.fill(progress=progress):         # outward from the first slice
        refresh()                                         # load.loaded says which slices
    volume = load.result()                                # equal to medview.load(...)

Reading uses the same per-slice reader as :func:`medview.dicom.pixels.read.read_stack`
(:class:`~medview.dicom.pixels.slice_reader.SliceReader`), so the values are the same. Stacks whose
slices can be read one by one are read progressively: single-frame files and uncompressed
multi-frame files (each frame read at its offset), with no resampling.
Mosaics, compressed multi-frame files and stacks that must be resampled (missing slices,
varying spacing between slices) are read whole by :func:`read_stack` inside :meth:`fill` (the
first call reads everything; ``progressive`` is False): a resampled slice depends on two
acquired ones, and a mosaic or a compressed multi-frame file is decoded whole anyway, so there
is no cheap "one slice first". A gantry-tilted stack with even spacing is sheared, not
resampled, and is read progressively.

No Qt here: the GUI runs :meth:`ProgressiveLoad.fill` in a worker and polls ``loaded``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.dicom.errors import PixelDataError
from medview.dicom.pixels._stand_in import SLICE_ERRORS, fill_stand_ins, stand_in_warnings
from medview.dicom.pixels.read import allocate_volume, read_stack, series_metadata, stack_volume
from medview.dicom.pixels.slice_reader import (
    DtypeTooSmall,
    SliceReader,
    failure_reason,
    reads_slice_by_slice,
)
from medview.dicom.series.assemble import SeriesPlan
from medview.dicom.series.loading import Source, plan_load, with_load_warnings

__all__ = ["ProgressiveLoad", "SliceFailure", "open_progressive", "outward_order"]

#: slices per task of a reading thread: small, so that the slices near the first one come
#: first and cancel answers quickly, but not one, so that thread hand-offs stay rare
_CHUNK = 8
#: reading threads by default (two saturate these machines, as for read_stack)
_THREADS = 2


class _Inline:
    """A chunk read in the calling thread when it is asked for: a future without a pool."""

    def __init__(self, fn, arg):
        self._fn, self._arg = fn, arg

    def result(self):
        return self._fn(self._arg)

    def cancel(self) -> bool:
        return True


@dataclass(frozen=True)
class SliceFailure:
    """A slice that could not be read: its index ``k`` in the volume, file and reason."""

    k: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"slice {self.k + 1}: {self.path}: {self.reason}"


def outward_order(n: int, first: int) -> list[int]:
    """``first``, then alternately the next slice after and before it, outwards: for
    ``n=5, first=2`` → ``[2, 3, 1, 4, 0]``."""
    if not 0 <= first < n:
        raise ValueError(f"first: expected a slice index in 0..{n - 1}, got {first}")
    order = [first]
    for d in range(1, n):
        for k in (first + d, first - d):
            if 0 <= k < n:
                order.append(k)
    return order


class ProgressiveLoad:
    """One series being read into a Volume that exists from the start.

    Do not create it directly: use :func:`open_progressive`.

    Attributes
    ----------
    plan : SeriesPlan
        The series; ``plan.stack`` is the stack read.
    volume : Volume
        The volume being filled (its array is written in place; unread slices are 0).
        Replaced by a new Volume when a slice does not fit the optimistic dtype (rare:
        stored values outside the declared bits); compare by identity to notice.
    loaded : ndarray of bool, shape (z,)
        Which slices hold their final values.
    failures : list of SliceFailure
        Slices that could not be read (the rest is read anyway). They stay 0 while reading;
        when :meth:`fill` ends they are interpolated from their neighbours (stand-ins, listed
        in the Volume's warnings and ``metadata["made_up_slices"]``).
    progressive : bool
        False when the stack is read whole (see the module docstring).
    """

    def __init__(self, plan: SeriesPlan, extra_warnings: Sequence[str], *,
                 first: int | None = None, stack_named: bool = False):
        self.plan = plan
        self._extra = list(extra_warnings)
        # stacks still to try when none of the chosen one's slices can be read (as load does)
        self._untried = [] if stack_named else [
            i for i in range(len(plan.stacks)) if i != plan.chosen]
        self._setup(first)

    def _setup(self, first: int | None) -> None:
        st = self.plan.stack
        self._n_warnings = len(st.warnings)
        self._stack = st
        self._meta = series_metadata(st.slices[0].header)
        self.progressive = reads_slice_by_slice(st)
        n = st.shape[0]
        shape = st.shape + ((3,) if st.is_rgb else ())
        self.first = n // 2 if first is None else int(first)
        self.order = outward_order(n, self.first)
        # zeros, not empty: calloc'd pages cost nothing until written, and a slice not read
        # yet (or unreadable) shows as a flat image rather than leftover memory
        self.volume = self._wrap(allocate_volume(shape, st.dtype, zeros=True))
        self.loaded = np.zeros(n, dtype=bool)
        self.failures: list[SliceFailure] = []
        # one frame at its offset: no file cache, so the reading threads can share it
        self._reader = SliceReader(st, whole_files=False)
        self._lock = threading.Lock()
        self._complete = False

    def _next_stack(self) -> bool:
        """Move to the next stack after none of this one's slices could be read."""
        if not self._untried:
            return False
        why = "; ".join(str(f) for f in self.failures[:3]) or "no slice could be read"
        label = self.plan.stack.label
        self.plan.chosen = self._untried.pop(0)
        self._extra.append(f"stack '{label}' could not be read ({why}): loaded stack "
                           f"[{self.plan.chosen}] '{self.plan.stack.label}' instead")
        self._setup(None)
        return True

    def _wrap(self, array: np.ndarray) -> Volume:
        return with_load_warnings(stack_volume(self._stack, array, self._meta), self.plan,
                                  self._extra)

    # -- queries -----------------------------------------------------------------------
    @property
    def n_slices(self) -> int:
        return len(self.loaded)

    @property
    def n_loaded(self) -> int:
        return int(np.count_nonzero(self.loaded))

    @property
    def complete(self) -> bool:
        """True when every slice was read (failures included: they were tried)."""
        return self._complete

    # -- reading -----------------------------------------------------------------------
    def read_first(self) -> int:
        """Read the first slice (the middle one unless ``first`` was given) and return its
        index. For a stack read whole this reads nothing and returns ``first``.

        If that slice cannot be decoded it is recorded in ``failures`` (it becomes a stand-in
        when :meth:`fill` ends) and the nearest readable slice is read and returned instead.

        Raises
        ------
        PixelDataError
            If no slice can be decoded (nothing would be shown).
        """
        if not self.progressive or self.loaded[self.first]:
            return self.first
        # an unreadable first slice is a stand-in like any other: show the nearest readable
        for k in self.order:
            self._read(k)
            if self.loaded[k]:
                return k
        if self._next_stack():
            return self.read_first()
        listed = "; ".join(str(f) for f in self.failures[:5])
        raise PixelDataError(f"none of the {self.n_slices} slice(s) could be read: {listed}")

    def _read(self, k: int) -> None:
        """Read slice ``k``; a decoding error is recorded in ``failures``."""
        try:
            self._reader.read_into(k, self.volume.array)
        except SLICE_ERRORS as exc:
            self._failed(k, exc)
            return
        except DtypeTooSmall:
            self._widen()
            self._reader.read_into(k, self.volume.array)
        self.loaded[k] = True

    def _failed(self, k: int, exc: Exception) -> None:
        """Record slice ``k`` as unreadable and clear what a partial read left in it."""
        self.volume.array[k] = 0
        with self._lock:
            path = self._stack.slices[k].header.path
            self.failures.append(SliceFailure(k, path, failure_reason(exc, path)))

    def _widen(self) -> None:
        """Move to the fallback dtype (the values read so far fit it exactly)."""
        fallback = self._stack.fallback_dtype
        if fallback is None or self.volume.array.dtype == fallback:
            raise PixelDataError(
                f"series {self.plan.series_uid}: stored values do not fit {fallback}")
        self.volume = self._wrap(self.volume.array.astype(fallback))

    def fill(self, *, progress: Progress = NO_PROGRESS, threads: int = _THREADS
             ) -> Iterator[int]:
        """Read every slice not read yet, nearest to the first slice first.

        A generator: it yields the number of slices loaded after each small batch (at least
        once), so the caller can refresh a view (and should not do much more per step).
        Unreadable slices are recorded in ``failures`` and skipped. ``threads=1`` reads in
        the calling thread: slower on an idle machine, but it leaves the GIL free more often
        for a GUI thread.

        Raises
        ------
        Cancelled
            If ``progress`` was cancelled (the slices read so far stay).
        PixelDataError
            For a stack read whole (see the module docstring), if a file cannot be decoded.
        """
        n = self.n_slices
        if not self.progressive:
            try:
                vol = read_stack(self._stack, metadata=self._meta, progress=progress)
            except PixelDataError as exc:
                if not str(exc).startswith("none of the") or not self._next_stack():
                    raise
                yield from self.fill(progress=progress, threads=threads)
                return
            self.volume = with_load_warnings(vol, self.plan, self._extra)
            self.loaded[:] = True
            self._complete = True
            yield n
            return
        yielded = False
        while True:
            failed = {f.k for f in self.failures}
            todo = [k for k in self.order if not self.loaded[k] and k not in failed]
            if not todo:
                break
            chunks = [todo[i:i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
            stop = threading.Event()
            widened = False

            def read_chunk(chunk: list[int], stop: threading.Event = stop) -> None:
                for k in chunk:
                    if stop.is_set() or progress.cancelled:
                        return
                    try:
                        self._reader.read_into(k, self.volume.array)
                    except SLICE_ERRORS as exc:
                        self._failed(k, exc)
                        continue
                    self.loaded[k] = True

            pool = ThreadPoolExecutor(threads) if threads > 1 else contextlib.nullcontext()
            with pool:
                if threads > 1:
                    futures = [pool.submit(read_chunk, c) for c in chunks]
                else:
                    futures = [_Inline(read_chunk, c) for c in chunks]
                try:
                    for f in futures:
                        try:
                            f.result()
                        except DtypeTooSmall:
                            widened = True
                            stop.set()
                            continue
                        if stop.is_set():
                            continue
                        progress.check()
                        done = self.n_loaded
                        progress.update(done / n, f"loaded {done} of {n} slices")
                        yielded = True
                        yield done
                finally:
                    stop.set()
                    for f in futures:
                        f.cancel()
            if widened:
                # the reading threads have stopped (the pool was joined): widen and go on
                self._widen()
                continue
            progress.check()
        if len(self.failures) == n and self._next_stack():
            yield from self.fill(progress=progress, threads=threads)
            return
        self._stand_in()
        self._complete = True
        progress.update(1.0, "done")
        if not yielded:  # everything was read already (e.g. a single slice): say so once
            yield self.n_loaded

    def _stand_in(self) -> None:
        """Interpolate the failed slices from their neighbours, as :func:`read_stack` does,
        and mark them in the Volume (warnings, ``metadata["made_up_slices"]``)."""
        if not self.failures or len(self.failures) == self.n_slices:
            if len(self._stack.warnings) != self._n_warnings:  # a repeat stood in for a file
                self.volume = self._wrap(self.volume.array)
            return
        failed = {f.k: f.reason for f in self.failures}
        st = self._stack
        t = st.acquired_t if st.acquired_t is not None else np.arange(self.n_slices, dtype=float)
        made_up = fill_stand_ins(st, self.volume.array, failed, t)
        self.volume = with_load_warnings(
            stack_volume(st, self.volume.array, self._meta, made_up=made_up,
                         warnings=stand_in_warnings(st, failed)),
            self.plan, self._extra)
        self.loaded[list(failed)] = True

    def result(self) -> Volume:
        """The loaded Volume.

        Raises
        ------
        RuntimeError
            If :meth:`fill` has not run to its end.
        PixelDataError
            If no slice could be read (the message lists why). Slices that could not be read
            while others could are stand-ins (see ``failures`` and the Volume's warnings).
        """
        if not self._complete:
            raise RuntimeError(f"series {self.plan.series_uid}: not loaded completely "
                               f"({self.n_loaded} of {self.n_slices} slices)")
        if len(self.failures) == self.n_slices:
            listed = "; ".join(str(f) for f in sorted(self.failures, key=lambda f: f.k)[:5])
            raise PixelDataError(f"none of the {len(self.failures)} slice(s) could be read: "
                                 f"{listed}")
        return self.volume


def open_progressive(
    source: Source,
    *,
    series: str | int | None = None,
    stack: int | None = None,
    catalog=None,
    first: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> ProgressiveLoad:
    """Plan a series for progressive reading (no pixels read yet).

    Parameters
    ----------
    source, series, stack, catalog
        As :func:`medview.load`.
    first : int, optional
        The slice (z index) to read first; default the middle one.
    progress : Progress, optional
        Progress and cancellation of finding and planning the series.

    Returns
    -------
    ProgressiveLoad
        Its ``volume`` is allocated; :meth:`~ProgressiveLoad.read_first` and
        :meth:`~ProgressiveLoad.fill` read the pixels.

    Raises
    ------
    As :func:`medview.load`, and ValueError if ``first`` is outside the stack.
    """
    plan, extra = plan_load(source, series=series, stack=stack, catalog=catalog,
                            progress=progress)
    return ProgressiveLoad(plan, extra, first=first, stack_named=stack is not None)
