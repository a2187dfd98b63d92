"""The phases of a 4D series, one at a time: only the phase looked at is read.

A series of repeated positions (a cardiac cine, a perfusion or 4D CT: 20 phases × 300 slices)
is split into stacks by :func:`medview.dicom.series.assemble.plan_series`. The window shows one
stack; "Next Phase" (``]``) and "Previous Phase" (``[``) open the neighbouring one through
:meth:`MainWindow.open_series`, which reads just that stack's slices (progressively, first
image early) and keeps it in the volume cache under its own key, so the cache's cap (the
user's "Memory for Open Series") bounds how many phases stay decoded: a phase never looked
at is never read, and going back to a cached one is instant.
"""

from __future__ import annotations

from collections.abc import Hashable

from PySide6.QtGui import QAction, QKeySequence

__all__ = ["PhaseNavigator"]

STATUS_MS = 4000


class PhaseNavigator:
    """Which stack of which series is shown, and the actions that move between them.

    Parameters
    ----------
    window : MainWindow
        Provides ``open_series(uid, stack)``, ``_menu(title)`` and ``statusBar()``.
    """

    def __init__(self, window):
        self.window = window
        self.current: tuple[str, int] | None = None
        self._counts: dict[str, int] = {}  # series UID -> stacks (once one was loaded)
        self.next_action = QAction("Next &Phase", window)
        self.next_action.setObjectName("action_next_phase")
        self.next_action.setShortcut(QKeySequence("]"))
        self.next_action.setToolTip("The next phase or time point of a 4D series")
        self.next_action.triggered.connect(lambda: self.step(+1))
        self.previous_action = QAction("Previous P&hase", window)
        self.previous_action.setObjectName("action_previous_phase")
        self.previous_action.setShortcut(QKeySequence("["))
        self.previous_action.setToolTip("The previous phase or time point of a 4D series")
        self.previous_action.triggered.connect(lambda: self.step(-1))
        menu = window._menu("View")
        menu.addSeparator()
        menu.addAction(self.previous_action)
        menu.addAction(self.next_action)
        window.addAction(self.next_action)
        window.addAction(self.previous_action)
        self._update_actions()

    @staticmethod
    def cache_key(series_uid: str, stack: int | None) -> Hashable:
        """The volume cache's key of a stack: the UID alone for the default stack (0)."""
        return series_uid if not stack else (series_uid, int(stack))

    def loaded(self, series_uid: str, stack: int, n_stacks: int) -> Hashable:
        """Record the stack just read; returns its cache key."""
        self._counts[series_uid] = int(n_stacks)
        self.shown(series_uid, stack)
        return self.cache_key(series_uid, stack)

    def shown(self, series_uid: str, stack: int | None) -> None:
        self.current = (series_uid, int(stack or 0))
        self._update_actions()

    @property
    def n_stacks(self) -> int:
        """Stacks of the series shown (1 when unknown or not 4D)."""
        return 1 if self.current is None else self._counts.get(self.current[0], 1)

    def step(self, delta: int):
        """Open the phase ``delta`` away from the one shown (wrapping around)."""
        n = self.n_stacks
        if self.current is None or n < 2:
            return None
        uid, stack = self.current
        target = (stack + delta) % n
        # another phase is another volume: labels, scribbles and measurements drawn on this
        # one go with it, so unsaved ones are saved or discarded first (or the step cancelled)
        unsaved = getattr(self.window, "unsaved", None)
        if unsaved is not None and not unsaved.confirm("showing another phase"):
            self.window.statusBar().showMessage("Kept this phase and its unsaved work.",
                                                STATUS_MS)
            return None
        self.window.statusBar().showMessage(f"Phase {target + 1} of {n}", STATUS_MS)
        return self.window.open_series(uid, target)

    def _update_actions(self) -> None:
        several = self.n_stacks > 1
        self.next_action.setEnabled(several)
        self.previous_action.setEnabled(several)
