"""The viewer state's part for progressive loading: which slices of the volume have arrived.

A mixin of :class:`~medview.app.state.ViewerState`, kept apart so that the state proper stays
about viewing. Plain Python, no Qt.
"""

from __future__ import annotations

import numpy as np

from medview.core.volume import Volume

__all__ = ["ProgressiveLoading"]


class ProgressiveLoading:
    """Progressive loading (mixed into :class:`ViewerState`): which slices have arrived."""

    _loading: tuple[Volume, np.ndarray] | None
    _default_window: tuple[float, float]
    _auto_window: tuple[float, float] | None
    _loading_stopped = False

    def set_loading(self, loaded: np.ndarray | None) -> None:
        """The open volume is still being read: ``loaded[z]`` says which slices hold their
        values (the loader keeps writing to this array); None: the volume is complete.
        Emits ``data_changed``."""
        if loaded is not None:
            loaded = np.asarray(loaded)
            if self.volume is None or loaded.shape != (self.volume.shape[0],):
                raise ValueError(f"loaded: expected one flag per slice of the open volume, "
                                 f"got shape {loaded.shape}")
            self._loading = (self.volume, loaded)
            self._loading_stopped = False
        else:
            self._loading = None
        self.data_changed.emit()

    @property
    def loaded_mask(self) -> np.ndarray | None:
        """Which slices of the open volume hold their values; None when all do."""
        if self._loading is None or self._loading[0] is not self.volume:
            return None
        return self._loading[1]

    @property
    def n_loaded(self) -> int:
        """How many slices of the open volume hold their values."""
        mask = self.loaded_mask
        if mask is None:
            return 0 if self.volume is None else self.volume.shape[0]
        return int(np.count_nonzero(mask))

    def is_slice_loaded(self, index: int) -> bool:
        mask = self.loaded_mask
        return self.volume is not None and (mask is None or bool(mask[index]))

    def stop_loading(self) -> None:
        """The load stopped before the end (cancelled): the slices read stay shown, the
        others stay flat, ``loaded_mask`` keeps saying which are which. Emits
        ``data_changed``."""
        if self.loaded_mask is not None:
            self._loading_stopped = True
            self.data_changed.emit()

    @property
    def is_loading(self) -> bool:
        """True while slices of the open volume are still arriving."""
        return self.loaded_mask is not None and not self._loading_stopped

    def notify_data_changed(self) -> None:
        """More slices arrived (called by whoever runs the load, on the GUI thread)."""
        self.data_changed.emit()

    def finish_loading(self, volume: Volume, default: tuple[float, float],
                       auto: tuple[float, float] | None) -> bool:
        """The load of the open volume ended with ``volume``: the very volume shown (now
        complete) or one on its grid in a wider dtype (a slice did not fit the first). The
        view stays (slice, zoom, window if the user changed it) and the windows are refined
        (:meth:`refine_windows`). Returns False, changing nothing, when ``volume`` is neither:
        the caller then shows it with ``set_volume``."""
        shown = self.volume
        if shown is None or self.loaded_mask is None:
            return False
        if volume is not shown:
            if not volume.same_grid(shown):
                return False
            default_before = self._default_window
            self.replace_volume(volume, window=self.window)  # type: ignore[attr-defined]
            self._default_window = default_before  # so refine_windows sees a user's change
        self.set_loading(None)
        self.refine_windows(default, auto)
        return True

    def refine_windows(self, default: tuple[float, float],
                       auto: tuple[float, float] | None) -> None:
        """The windows of the complete volume replace the ones from its first slices; the
        window shown changes too unless the user changed it since it was opened."""
        untouched = self.window == self._default_window  # type: ignore[attr-defined]
        self._default_window = default
        self._auto_window = auto
        if untouched:
            self.set_window(*default)  # type: ignore[attr-defined]
