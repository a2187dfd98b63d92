"""What the reader made and has not saved yet: label maps, scribbles, annotations
(measurements), key images, fusion.

Plain Python (no Qt), bound to a :class:`~medview.app.state.ViewerState` through its
``work_changed`` and ``volume_changed`` events. Each kind of work has a generation counter
that every change bumps; a save records the generation it wrote, so work done while an
export was running stays unsaved. Opening another series starts from nothing (what was
there is gone from the state; the window asks before that happens).
"""

from __future__ import annotations

from psygnal import Signal

__all__ = ["KINDS", "TITLES", "UnsavedWork"]

#: the kinds of work, in the order they are offered for saving
KINDS = ("labels", "scribbles", "measurements", "key_images", "fusion")
#: how a dialog names them
TITLES = {"labels": "label map", "scribbles": "scribbles", "measurements": "annotations",
          "key_images": "key images", "fusion": "fused image"}


class UnsavedWork:
    """Which of the reader's work on the open series is not saved.

    Parameters
    ----------
    state : ViewerState

    Events
    ------
    changed()
        The set of unsaved kinds (or a generation) changed.
    """

    changed = Signal()

    def __init__(self, state) -> None:
        self.state = state
        self._generation = dict.fromkeys(KINDS, 0)
        self._saved = dict.fromkeys(KINDS, 0)
        # whether there were annotations when they were last saved or opened: deleting
        # them all is then work to save too (the save clears the stored report)
        self._had_measurements = False
        state.work_changed.connect(self._on_work_changed)
        state.volume_changed.connect(self._on_volume_changed)

    def _on_work_changed(self, kind: str) -> None:
        if kind not in self._generation:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        self._generation[kind] += 1
        self.changed.emit()

    def _on_volume_changed(self, _volume) -> None:
        # a new series: the state dropped the old one's work (the window asked first)
        self._saved = dict(self._generation)
        self._had_measurements = False
        self.changed.emit()

    def _exists(self, kind: str) -> bool:
        state = self.state
        if kind == "labels":
            return state.labels is not None
        if kind == "scribbles":
            return state.scribbles is not None
        if kind == "measurements":
            return bool(state.measurements)
        if kind == "key_images":
            return bool(state.key_slices)
        return state.fusion is not None

    def generation(self, kind: str) -> int:
        """A number that grows with every change of ``kind`` (to pass to :meth:`mark_saved`)."""
        return self._generation[kind]

    def is_unsaved(self, kind: str) -> bool:
        """True when ``kind`` exists and changed since it was last saved or opened."""
        return self._generation[kind] != self._saved[kind] and (
            self._exists(kind) or (kind == "measurements" and self._had_measurements))

    @property
    def kinds(self) -> list[str]:
        """The unsaved kinds, in :data:`KINDS` order."""
        return [k for k in KINDS if self.is_unsaved(k)]

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def mark_saved(self, kind: str, generation: int | None = None) -> None:
        """``kind`` was saved (as it was at ``generation``; default: as it is now) or opened
        from a file."""
        self._saved[kind] = self._generation[kind] if generation is None else int(generation)
        if kind == "measurements":
            self._had_measurements = self._exists(kind)
        self.changed.emit()

    def discard(self) -> None:
        """Forget every unsaved change (the reader chose Discard)."""
        self._saved = dict(self._generation)
        self._had_measurements = False
        self.changed.emit()

    def describe(self) -> str:
        """``"the label map and 2 annotations"``: the unsaved work in words."""
        parts = []
        for kind in self.kinds:
            if kind == "measurements":
                n = len(self.state.measurements)
                parts.append(f"{n} annotation{'s' if n != 1 else ''}" if n
                             else "the removal of the saved annotations")
            else:
                parts.append(f"the {TITLES[kind]}")
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + " and " + parts[-1]
