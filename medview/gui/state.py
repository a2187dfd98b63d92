"""The viewer's state, in plain Python: which volume, which slice, which window, what zoom.

Widgets bind to a :class:`ViewerState`: they listen to its events and call its methods, and
never keep a second copy of these values. Because it imports no Qt, everything a user does
with the keyboard and mouse can be tested here, without a screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.volume import Volume
from medview.gui.events import Event
from medview.gui.loading_state import ProgressiveLoading
from medview.gui.windowing import CT_PRESETS, WindowPreset, auto_window, default_window, is_ct

__all__ = ["Sample", "ViewerState", "WindowDrag"]

#: Screen pixels of a window/level drag that double the width (or move the level by the
#: starting width).
DRAG_PIXELS_PER_DOUBLING = 200.0


@dataclass(frozen=True)
class Sample:
    """The voxel under the cursor: its index ``(x, y, z)``, value and LPS position (mm)."""

    index: tuple[int, int, int]
    value: float | tuple[int, ...]
    lps: tuple[float, float, float]
    units: str = ""


class ViewerState(ProgressiveLoading):
    """One slice view of one volume.

    Events (each an :class:`~medview.gui.events.Event`):

    - ``volume_changed(volume)`` — a volume was opened (or ``None``: closed); slice, window
      and zoom were reset with it and are not emitted separately.
    - ``slice_changed(index)`` — the slice index (z) changed.
    - ``window_changed(center, width)`` — the window changed.
    - ``zoom_changed(zoom)`` — the zoom changed (1 = the whole slice fits the view).
    - ``view_reset()`` — the view should fit the slice again (zoom 1, no pan).
    - ``invert_changed(inverted)`` — the grey scale was inverted (True) or made normal again.
    - ``data_changed(n_loaded)`` — more slices of a volume being loaded arrived (see
      :meth:`set_loading`); the views redraw. Emitted on the GUI thread, at a bounded rate.
    """

    def __init__(self) -> None:
        self.volume_changed = Event("volume_changed")
        self.slice_changed = Event("slice_changed")
        self.window_changed = Event("window_changed")
        self.zoom_changed = Event("zoom_changed")
        self.view_reset = Event("view_reset")
        self.invert_changed = Event("invert_changed")
        self.data_changed = Event("data_changed")
        self._loading: tuple[Volume, np.ndarray] | None = None
        self._inverted = False
        self._volume: Volume | None = None
        self._slice = 0
        self._center = 0.0
        self._width = 1.0
        self._zoom = 1.0
        self._default_window = (0.0, 1.0)
        self._auto_window: tuple[float, float] | None = None
        self._min_width = 1.0

    # -- volume ------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    def set_volume(
        self,
        volume: Volume | None,
        *,
        window: tuple[float, float] | None = None,
        auto: tuple[float, float] | None = None,
    ) -> None:
        """Show ``volume`` from its middle slice with its default window and zoom 1.

        ``window`` (the default window) and ``auto`` (the 1–99 percentile window) may be
        given when they were computed already, e.g. by the worker that loaded the volume:
        percentiles of a large float volume take ~0.1 s, too long for the GUI thread.
        """
        if volume is not None and not isinstance(volume, Volume):
            raise TypeError(f"volume: expected a Volume or None, got {type(volume).__name__}")
        self._volume = volume
        self._auto_window = auto
        was_inverted, self._inverted = self._inverted, False
        self._zoom = 1.0
        if volume is None:
            self._slice = 0
            self._center, self._width = 0.0, 1.0
        else:
            self._slice = volume.shape[0] // 2
            self._min_width = 1.0 if volume.array.dtype.kind in "iub" else 1e-3
            self._default_window = window if window is not None else default_window(volume)
            self._center, self._width = self._default_window
            self._min_width = min(self._min_width, self._width)
        self.volume_changed.emit(volume)
        if was_inverted:
            self.invert_changed.emit(False)

    @property
    def n_slices(self) -> int:
        return 0 if self._volume is None else self._volume.shape[0]

    @property
    def modality(self) -> str:
        return "" if self._volume is None else str(self._volume.metadata.get("Modality") or "")

    @property
    def units(self) -> str:
        if self._volume is None:
            return ""
        units = str(self._volume.metadata.get("Units") or "")
        return units or ("HU" if is_ct(self._volume) else "")

    # -- slice -------------------------------------------------------------------------
    @property
    def slice_index(self) -> int:
        return self._slice

    def set_slice(self, index: int) -> None:
        """Go to slice ``index`` (z), clamped to the volume."""
        if self._volume is None:
            return
        index = int(min(max(int(index), 0), self.n_slices - 1))
        if index != self._slice:
            self._slice = index
            self.slice_changed.emit(index)

    def step_slice(self, steps: int) -> None:
        """Move ``steps`` slices (negative: towards slice 0)."""
        self.set_slice(self._slice + int(steps))

    def first_slice(self) -> None:
        self.set_slice(0)

    def last_slice(self) -> None:
        self.set_slice(self.n_slices - 1)

    def slice_image(self) -> np.ndarray | None:
        """The current slice, ``[y, x]`` (or ``[y, x, 3]``), a view into the volume."""
        if self._volume is None:
            return None
        return self._volume.array[self._slice]

    def slice_position_mm(self) -> float | None:
        """Position of the current slice along the slice normal (mm), as SliceLocation."""
        if self._volume is None:
            return None
        d = self._volume.direction
        normal = np.cross(d[:, 0], d[:, 1])
        normal /= np.linalg.norm(normal)
        return float(self._volume.index_to_lps((0.0, 0.0, float(self._slice))) @ normal)

    # -- window ------------------------------------------------------------------------
    @property
    def window_center(self) -> float:
        return self._center

    @property
    def window_width(self) -> float:
        return self._width

    @property
    def window(self) -> tuple[float, float]:
        """``(center, width)``."""
        return self._center, self._width

    @property
    def window_levels(self) -> tuple[float, float]:
        """``(low, high)``: the values shown black and white."""
        return self._center - self._width / 2.0, self._center + self._width / 2.0

    def set_window(self, center: float, width: float) -> None:
        """Set the window; ``width`` is raised to the smallest meaningful width if needed."""
        center, width = float(center), float(width)
        if not (np.isfinite(center) and np.isfinite(width)):
            raise ValueError(f"center, width: expected finite numbers, got {center}, {width}")
        width = max(width, self._min_width)
        if (center, width) != (self._center, self._width):
            self._center, self._width = center, width
            self.window_changed.emit(center, width)

    def auto_window(self) -> None:
        """Window the 1–99 percentile range of the volume's values (MR, PET)."""
        if self._volume is None or self._volume.is_rgb:
            return
        if self._auto_window is None:
            self._auto_window = auto_window(self._volume.array)
        self.set_window(*self._auto_window)

    def presets(self) -> tuple[WindowPreset, ...]:
        """The presets that make sense for the open volume (the CT ones on CT)."""
        if self._volume is not None and is_ct(self._volume):
            return CT_PRESETS
        return ()

    def apply_preset(self, key: int) -> WindowPreset | None:
        """Apply the preset on number key ``key``.

        On CT that is the CT preset with this key; on other modalities, whose values have no
        fixed scale, every preset key gives the automatic (1–99 percentile) window. Returns
        the preset applied, ``None`` for the automatic window or when there is no volume.
        """
        if self._volume is None:
            return None
        for preset in self.presets():
            if preset.key == key:
                self.set_window(preset.center, preset.width)
                return preset
        self.auto_window()
        return None

    def start_window_drag(self) -> WindowDrag:
        """Begin a window/level drag from the current window (see :class:`WindowDrag`)."""
        return WindowDrag(self)

    # -- invert ------------------------------------------------------------------------
    @property
    def inverted(self) -> bool:
        """True when low values are shown white and high values black."""
        return self._inverted

    def set_inverted(self, inverted: bool) -> None:
        """Invert the grey scale (True) or not; a new volume opens not inverted."""
        inverted = bool(inverted)
        if inverted != self._inverted:
            self._inverted = inverted
            self.invert_changed.emit(inverted)

    def toggle_invert(self) -> None:
        """I: swap black and white."""
        self.set_inverted(not self._inverted)

    # -- zoom and reset ----------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self._zoom

    def set_zoom(self, zoom: float) -> None:
        """Zoom factor relative to the whole slice fitting the view (1)."""
        zoom = float(zoom)
        if not (np.isfinite(zoom) and zoom > 0):
            raise ValueError(f"zoom: expected a positive number, got {zoom}")
        if abs(zoom - self._zoom) > 1e-9:
            self._zoom = zoom
            self.zoom_changed.emit(zoom)

    def reset(self) -> None:
        """R: back to the default window and a fitted, unpanned view (the slice stays)."""
        if self._volume is None:
            return
        self.set_window(*self._default_window)
        self._zoom = 1.0
        self.view_reset.emit()
        self.zoom_changed.emit(1.0)

    # -- values ------------------------------------------------------------------------
    def sample(self, x: int, y: int) -> Sample | None:
        """The voxel at column ``x``, row ``y`` of the current slice, or None outside it."""
        vol = self._volume
        if vol is None:
            return None
        _, ny, nx = vol.shape
        if not (0 <= x < nx and 0 <= y < ny):
            return None
        raw = vol.array[self._slice, y, x]
        value: float | tuple[int, ...]
        value = tuple(int(v) for v in raw) if vol.is_rgb else raw.item()
        lps = vol.index_to_lps((float(x), float(y), float(self._slice)))
        return Sample((int(x), int(y), self._slice), value, tuple(float(v) for v in lps),
                      self.units)


class WindowDrag:
    """A left-drag that changes the window, measured from where the drag started.

    ``move(dx, dy)`` takes the displacement in screen pixels since the press (x to the
    right, y downwards, as on screen). Dragging right widens the window, left narrows it;
    dragging up lowers the level, down raises it (IHE Basic Image Review). The width changes
    by a factor (doubling every :data:`DRAG_PIXELS_PER_DOUBLING` pixels) and the level by a
    fraction of the starting width, so a 40 HU stroke window and a 1500 HU lung window both
    respond in proportion, and no width is ever reached that a drag cannot leave.
    """

    def __init__(self, state: ViewerState):
        self._state = state
        self.center0, self.width0 = state.window

    def move(self, dx: float, dy: float) -> None:
        width = self.width0 * 2.0 ** (float(dx) / DRAG_PIXELS_PER_DOUBLING)
        center = self.center0 + float(dy) * self.width0 / DRAG_PIXELS_PER_DOUBLING
        self._state.set_window(center, width)
