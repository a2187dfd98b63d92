"""How a slice view follows a volume that is still loading: which slices arrive are
redrawn, and how often a reformat of the partial volume is.

:class:`ViewLoading` is mixed into :class:`~medview.gui.slice_viewer.SliceViewer` (it uses
the view's ``state``, ``displayed_slice``, ``_geometry`` and ``_show_slice``).
"""

from __future__ import annotations

import time

__all__ = ["ViewLoading"]

#: While a volume loads, a reformat (coronal, sagittal) is redrawn at most this often (s).
REFORMAT_REDRAW_S = 0.2


class ViewLoading:
    """Redraws a view as the slices of its volume arrive. A mixin of
    :class:`~medview.gui.slice_viewer.SliceViewer`."""

    def _on_data_changed(self) -> None:
        # Voxels changed in place: slices of a volume being loaded arrived (at most ~20
        # times a second). A view across the slices (coronal, sagittal) gains rows each time
        # and is redrawn; a view of the acquired plane only when the slice it shows is one of
        # those that arrived: the GUI thread shares the GIL with the reading thread, and
        # every redraw it skips keeps the event loop answering.
        if self._geometry is None:
            return
        if not self.isVisible():  # e.g. the other planes in the single layout
            self._data_stale = True
            return
        self._data_stale = False
        if self._geometry.normal == 2 and self.state.loaded_mask is not None:
            k = self.displayed_slice
            if k != self._complete_slice and k >= 0 and self.state.is_slice_loaded(k):
                self._show_slice()
                self._complete_slice = k
        elif not self.state.is_loading:
            self._show_slice()  # the last update of a load (or data changed otherwise)
        else:
            # a reformat of a volume still loading: a few redraws a second show it filling
            # in; each costs the GUI thread a strided copy and a repaint
            now = time.monotonic()
            if now - self._last_reformat_draw >= REFORMAT_REDRAW_S:
                self._last_reformat_draw = now
                self._show_slice()
        self._update_overlays()

    def _on_volume_changed_loading(self, volume) -> None:
        #: the acquired-plane slice last drawn with all its values (-1: none of this volume)
        self._complete_slice = -1
        #: voxels changed while the view was hidden: redraw when it is shown
        self._data_stale = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_data_stale", False):
            self._on_data_changed()
