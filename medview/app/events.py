"""A small synchronous event (signal) for the GUI's plain-Python state, without Qt.

The state objects under :mod:`medview.gui` must be testable without a QApplication, so they
cannot use Qt signals. ``Event`` is the few lines of psygnal/blinker that they need: connect a
callable, emit to every connected callable in order. Bound methods are held weakly, so a
listener (e.g. a widget) that goes away does not stay alive because the state refers to it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Event"]


class Event:
    """One kind of notification; ``emit(*args)`` calls every listener with ``args``.

    Examples
    --------
    >>> changed = Event("changed")
    >>> seen = []
    >>> changed.connect(seen.append)
    >>> changed.emit(3)
    >>> seen
    [3]
    """

    def __init__(self, name: str = ""):
        self.name = name
        self._slots: list[Callable[[], Callable[..., Any] | None]] = []
        self._blocked = 0

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback(*args)`` on every emit; returns ``callback`` (usable as decorator)."""
        if not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref = weakref.WeakMethod(callback)
        else:
            # functions and lambdas are held strongly: nothing else may keep them alive
            def ref(cb=callback):
                return cb
        self._slots.append(ref)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``; no error when it was not connected."""
        self._slots = [r for r in self._slots if r() not in (None, callback)]

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        dead = False
        for ref in list(self._slots):
            cb = ref()
            if cb is None:
                dead = True
                continue
            cb(*args)
        if dead:
            self._slots = [r for r in self._slots if r() is not None]

    def __len__(self) -> int:
        return sum(1 for r in self._slots if r() is not None)

    def blocked(self) -> _Blocker:
        """Context manager that suppresses emits (for a listener writing back to the state)."""
        return _Blocker(self)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, listeners={len(self)})"


class _Blocker:
    def __init__(self, event: Event):
        self._event = event

    def __enter__(self) -> Event:
        self._event._blocked += 1
        return self._event

    def __exit__(self, *exc) -> None:
        self._event._blocked -= 1
