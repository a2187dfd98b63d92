"""A series shown while its files arrive (a PACS retrieve): laid out before they come.

The PACS lists each instance's Image Position and Orientation (Patient) before it sends the
files (:func:`medview.pacs.listing.instance_table`). From those the whole grid is known —
the slice order along the normal, origin, spacing and direction exactly as
:func:`medview.dicom.series.assemble.plan_series` will find them — so the Volume is allocated at
once and each file, whatever order it arrives in, is read into the slice its own position gives::

    series = ArrivingSeries.plan(series_uid, {sop: (position, orientation), ...})
    if series is not None:                      # None: the listed geometry is not a plain stack
        series.add(path)                        # per arrived file (any thread, one at a time)
        series.volume, series.loaded            # the views poll these, as for ProgressiveLoad

Pixels and rows/columns/pixel spacing come from the files (read with :func:`medview.load`,
so the values are those of a local load). When every file is in, the caller loads the series
from the catalog as usual and swaps that volume in (same grid: the view stays).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medview.core.volume import Volume

__all__ = ["ArrivingSeries"]

#: slices whose spacing differs from the mean step by more than this are not a plain stack
#: (missing or doubled positions: the local load resamples or splits; wait for the files)
_STEP_TOL = 0.01
#: a file lands on the listed slice within this distance (mm) along the normal
_PLACE_TOL_MM = 0.05


class ArrivingSeries:
    """One series being filled in file by file. Use :meth:`plan`.

    Attributes
    ----------
    volume : Volume or None
        None until the first file is read (it gives rows, columns and pixel spacing); then a
        Volume of the whole series, unread slices 0. Replaced by a new Volume when a file's
        values need a wider dtype (compare by identity).
    loaded : ndarray of bool, shape (z,)
        Which slices hold their values.
    failures : list of (path, reason)
        Files that could not be read or placed (the final load from the catalog decides).
    """

    def __init__(self, series_uid: str, t: np.ndarray, origin: np.ndarray,
                 direction: np.ndarray, step: float):
        self.series_uid = series_uid
        self._t = t
        self._origin = origin
        self._direction = direction
        self._step = step
        self.volume: Volume | None = None
        self.loaded = np.zeros(len(t), dtype=bool)
        self.failures: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    @classmethod
    def plan(cls, series_uid: str,
             geometry: Mapping[str, tuple[Sequence[float] | None, Sequence[float] | None]]
             ) -> ArrivingSeries | None:
        """Lay out ``series_uid`` from SOP Instance UID → (position, orientation).

        Returns None (the caller then waits for the files) unless every instance has both,
        they share one orientation, and the positions form one evenly spaced line along the
        slice normal: what the local load turns into a stack without resampling, splitting
        or shearing.
        """
        if len(geometry) < 2:
            return None
        items = list(geometry.values())
        if any(p is None or o is None or len(p) != 3 or len(o) != 6 for p, o in items):
            return None
        orient = np.array([o for _p, o in items], dtype=float)
        if np.abs(orient - orient[0]).max() > 1e-4:
            return None
        row, col = orient[0, :3], orient[0, 3:]
        normal = np.cross(row, col)
        if not 0.99 < np.linalg.norm(normal) < 1.01:
            return None
        positions = np.array([p for p, _o in items], dtype=float)
        t = positions @ normal
        order = np.argsort(t, kind="stable")
        t, positions = t[order], positions[order]
        steps = np.diff(t)
        step = float((t[-1] - t[0]) / (len(t) - 1))
        if step <= 0 or np.abs(steps - step).max() > _STEP_TOL * step:
            return None
        # one straight line along the normal (no tilt: a sheared grid is the local load's)
        off = positions - positions[0] - np.outer(t - t[0], normal)
        if np.linalg.norm(off, axis=1).max() > 0.05:
            return None
        direction = np.column_stack([row, col, normal])
        return cls(series_uid, t, positions[0], direction, step)

    @property
    def n_slices(self) -> int:
        return len(self._t)

    @property
    def n_loaded(self) -> int:
        return int(np.count_nonzero(self.loaded))

    def add(self, path: str | Path) -> int | None:
        """Read one arrived file into its slice; returns the slice index (None when it could
        not be read or does not belong to the listed grid: see ``failures``)."""
        import medview

        try:
            one = medview.load(Path(path))
        except Exception as exc:  # any reader error: the final load reports it properly
            self.failures.append((str(path), str(exc)))
            return None
        normal = self._direction[:, 2]
        t = float(np.asarray(one.origin) @ normal)
        k = int(np.argmin(np.abs(self._t - t)))
        if abs(self._t[k] - t) > _PLACE_TOL_MM or one.shape[0] != 1 or one.is_rgb:
            self.failures.append((str(path), f"not on the listed grid (at {t:.2f} mm)"))
            return None
        with self._lock:
            if self.volume is None:
                self.volume = self._allocate(one)
            elif self.volume.shape[1:3] != one.shape[1:3]:
                self.failures.append((str(path), f"{one.shape[1:3]} pixels, the series has "
                                                 f"{self.volume.shape[1:3]}"))
                return None
            arr = self.volume.array
            if not np.can_cast(one.array.dtype, arr.dtype, "safe") \
                    and not np.array_equal(one.array.astype(arr.dtype), one.array):
                arr = arr.astype(np.result_type(arr.dtype, one.array.dtype, np.float32))
                self.volume = self.volume.with_array(arr)
            arr[k] = one.array[0]
            self.loaded[k] = True
        return k

    def _allocate(self, one: Volume) -> Volume:
        shape = (self.n_slices, *one.shape[1:3])
        spacing = (float(one.spacing[0]), float(one.spacing[1]), self._step)
        meta = dict(one.metadata)
        for key in ("source_files", "source_frames", "source_sop_instance_uids"):
            meta.pop(key, None)  # of one file: the final load says them for the series
        return Volume(np.zeros(shape, one.array.dtype), spacing, tuple(self._origin),
                      self._direction, meta)
