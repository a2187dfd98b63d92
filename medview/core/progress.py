"""Progress reporting and cancellation without Qt.

A long operation takes a ``progress`` argument and calls ``progress.update(fraction,
message)`` now and then; it checks ``progress.cancelled`` at least once per slice or chunk
and raises :class:`Cancelled` when it is set. The GUI adapts this to a Qt signal, the CLI to a
progress bar, the server to job status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """The user cancelled the operation."""


class Progress:
    """Progress sink with a cancel flag; thread-safe enough for one writer, one canceller.

    Parameters
    ----------
    callback : callable, optional
        ``callback(fraction, message)`` called on every update; ``fraction`` is in [0, 1].
    """

    def __init__(self, callback: Callable[[float, str], None] | None = None):
        self._callback = callback
        self._cancel = threading.Event()
        self.fraction = 0.0
        self.message = ""

    def update(self, fraction: float, message: str = "") -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self.message = message
        if self._callback is not None:
            self._callback(self.fraction, message)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")

    def sub(self, start: float, stop: float) -> Progress:
        """A child reporting into the range [start, stop] of this one, sharing its cancel flag."""
        child = _SubProgress(self, start, stop)
        return child


class _SubProgress(Progress):
    def __init__(self, parent: Progress, start: float, stop: float):
        super().__init__(None)
        self._parent = parent
        self._start = start
        self._stop = stop
        self._cancel = parent._cancel

    def update(self, fraction: float, message: str = "") -> None:
        super().update(fraction, message)
        self._parent.update(self._start + (self._stop - self._start) * self.fraction, message)


class _NoProgress(Progress):
    def update(self, fraction: float, message: str = "") -> None:
        return None

    def cancel(self) -> None:
        raise RuntimeError("NO_PROGRESS cannot be cancelled; pass a Progress() instead")


NO_PROGRESS: Progress = _NoProgress()
