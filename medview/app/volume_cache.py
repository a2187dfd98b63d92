"""Decoded volumes kept in memory, least recently used first out, under a cap in bytes.

Plain Python (no Qt): the main window keeps one :class:`VolumeCache` so that reopening a
series is instant, while opening many series never holds more than the cap. The cap defaults
to a quarter of the machine's RAM; the window's setting ``cache/max_mb`` or the environment
variable ``MEDVIEW_CACHE_MB`` (which wins) override it, in MiB (0 disables caching).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["CAP_ENV", "CAP_SETTING", "DEFAULT_RAM_FRACTION", "VolumeCache", "default_cap_bytes"]

#: share of the physical memory the cache may hold by default
DEFAULT_RAM_FRACTION = 0.25
#: environment variable with the cap in MiB
CAP_ENV = "MEDVIEW_CACHE_MB"
#: the window's setting (QSettings key) with the cap in MiB; the variable wins over it
CAP_SETTING = "cache/max_mb"


def default_cap_bytes(environ: dict | None = None, *, setting_mb: str | None = None) -> int:
    """The cache cap: ``$MEDVIEW_CACHE_MB`` MiB if set, else ``setting_mb`` (the window's
    stored setting) if given, else 25 % of the physical RAM.

    Raises
    ------
    ValueError
        If the variable or the setting is not a number ≥ 0 (the message names which).
    """
    env = os.environ if environ is None else environ
    for source, text in ((CAP_ENV, env.get(CAP_ENV, "")), ("the setting " + CAP_SETTING,
                                                           setting_mb or "")):
        text = str(text).strip()
        if not text:
            continue
        try:
            mb = float(text)
        except ValueError:
            mb = -1.0
        if not mb >= 0:
            raise ValueError(f"{source}={text!r}: expected a number of MiB ≥ 0 (0: no cache)")
        return int(mb * 1024 * 1024)
    import psutil

    return int(psutil.virtual_memory().total * DEFAULT_RAM_FRACTION)


class VolumeCache:
    """An LRU map from a key (a series UID) to a value of known size in bytes.

    Parameters
    ----------
    cap_bytes : int, optional
        The most the values may hold together; default :func:`default_cap_bytes`.

    Notes
    -----
    ``get`` makes an entry the most recently used. ``put`` evicts the least recently used
    entries until the new one fits; a value larger than the cap is not stored at all (and
    evicts nothing). Safe to call from several threads.
    """

    def __init__(self, cap_bytes: int | None = None):
        cap = default_cap_bytes() if cap_bytes is None else int(cap_bytes)
        if cap < 0:
            raise ValueError(f"cap_bytes: expected ≥ 0, got {cap_bytes}")
        self._cap = cap
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        #: keys evicted so far, oldest first (for the log and for tests)
        self.evicted: list[Hashable] = []

    @property
    def cap_bytes(self) -> int:
        return self._cap

    @property
    def nbytes(self) -> int:
        """Bytes held now (the sum of the sizes given to :meth:`put`)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value for ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> bool:
        """Store ``value`` (``nbytes`` big) under ``key``; False when it exceeds the cap.

        A value already stored under ``key`` is replaced. Least recently used entries are
        evicted until the new one fits.
        """
        nbytes = int(nbytes)
        if nbytes < 0:
            raise ValueError(f"nbytes: expected ≥ 0, got {nbytes}")
        with self._lock:
            self._remove(key)
            if nbytes > self._cap:
                return False
            while self._entries and self._nbytes + nbytes > self._cap:
                old, (_, size) = self._entries.popitem(last=False)
                self._nbytes -= size
                self.evicted.append(old)
            self._entries[key] = (value, nbytes)
            self._nbytes += nbytes
            return True

    def remove(self, key: Hashable) -> bool:
        """Forget ``key``; False if it was not cached."""
        with self._lock:
            return self._remove(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    def set_cap(self, cap_bytes: int) -> None:
        """Change the cap, evicting least recently used entries until they fit."""
        cap = int(cap_bytes)
        if cap < 0:
            raise ValueError(f"cap_bytes: expected ≥ 0, got {cap_bytes}")
        with self._lock:
            self._cap = cap
            while self._entries and self._nbytes > self._cap:
                key, (_, size) = self._entries.popitem(last=False)
                self._nbytes -= size
                self.evicted.append(key)

    def _remove(self, key: Hashable) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._nbytes -= entry[1]
        return True

    def __repr__(self) -> str:
        return (f"VolumeCache({len(self)} entries, {self._nbytes / 2**20:.1f} of "
                f"{self._cap / 2**20:.1f} MiB)")
