"""The viewer's state: the evented models of one open volume and what the user does to them.

:class:`ViewerState` composes the models of :mod:`medview.app.models` — ``camera``
(crosshair, zoom per view), ``display`` (window, invert, colour map), ``tools``,
``label_layers``, ``fusion_model``, ``overlay_model`` and ``preview_model`` — and offers the
operations (open a volume, scroll, drag the window, paint, measure) as methods that check
their input and assign to the models; the models announce every real change. Widgets bind
to the models' events and to the few events of actions below, and never keep a second copy
of these values. No Qt: everything a user does with the keyboard and mouse is tested here,
without a screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from medview.app.annotation_state import AnnotationsAndKeyImages
from medview.app.crosshair_state import CrosshairAndSlices
from medview.app.label_state import LabelEditing
from medview.app.layer_state import DerivedLayers
from medview.app.layers import LayerList
from medview.app.loading_state import ProgressiveLoading
from medview.app.measurements import KINDS, Measurement
from medview.app.models import (
    COLORMAPS,
    Camera,
    Display,
    Fusion,
    LabelLayers,
    Overlay,
    PlaneCamera,
    Preview,
    Tools,
)
from medview.app.mpr_model import MprViews
from medview.app.planes import PLANES, PlaneGeometry, plane_geometry
from medview.app.slab_model import SlabViews
from medview.app.windowing import WindowPreset, auto_window, default_window, is_ct
from medview.core.volume import Volume

__all__ = ["EDIT_TARGETS", "EDIT_TOOLS", "TOOLS", "Sample", "ViewerState", "WindowDrag"]

#: Screen pixels of a window/level drag that double the width (or move the level by the
#: starting width).
DRAG_PIXELS_PER_DOUBLING = 200.0

#: Tools that paint the label map being edited (see :attr:`ViewerState.edit_target`).
EDIT_TOOLS = ("brush", "eraser", "fill")
#: What a left drag does: window/level (the default), a measuring tool or an editing tool.
TOOLS = ("window", *KINDS, *EDIT_TOOLS)
#: The label maps a brush can paint: the segmentation overlay or the classifier's scribbles.
EDIT_TARGETS = ("labels", "scribbles")


@dataclass(frozen=True)
class Sample:
    """The voxel under the cursor: its index ``(x, y, z)``, value and LPS position (mm)."""

    index: tuple[int, int, int]
    value: float | tuple[int, ...]
    lps: tuple[float, float, float]
    units: str = ""


class ViewerState(CrosshairAndSlices, ProgressiveLoading, LabelEditing, DerivedLayers,
                  AnnotationsAndKeyImages):
    """The views of one volume: the models, and the operations on them.

    The crosshair (``camera.cursor``, a voxel index ``(x, y, z)``) is shared by the three
    views. The "slice" of the single-view API (``slice_index``, ``set_slice``…) is the
    acquired plane's: voxel z.

    Events of actions (psygnal signals; the values themselves are announced by the models):

    - ``volume_changed(volume)`` — a volume was opened (or ``None``: closed); crosshair,
      window and zoom were reset with it and are not emitted separately.
    - ``slice_changed(index)`` — the crosshair moved to another slice of the acquired plane.
    - ``measurements_changed()`` — a measurement was added, changed or removed.
    - ``key_images_changed()`` — a key image was marked or unmarked (see
      :mod:`medview.app.annotation_state`).
    - ``labels_changed()`` — voxels or segments of the label map or scribbles were edited.
    - ``edit_changed()`` — a label map was set or its undo stack changed.
    - ``data_changed()`` — voxels of the open volume changed in place (slices of a volume
      being loaded arrived, at most ~20 Hz; or :meth:`replace_volume`).
    - ``work_changed(kind)`` — the reader's own work changed: ``"labels"``, ``"scribbles"``,
      ``"measurements"``, ``"key_images"`` or ``"fusion"`` (what
      :class:`~medview.app.unsaved_work.UnsavedWork` tracks; not emitted for display-only
      changes, nor by :meth:`set_volume`).
    """

    volume_changed = Signal(object)
    slice_changed = Signal(int)
    measurements_changed = Signal()
    labels_changed = Signal()
    edit_changed = Signal()
    data_changed = Signal()
    work_changed = Signal(str)

    def __init__(self) -> None:
        self.camera = Camera()
        self.display = Display()
        self.tools = Tools()
        self.label_layers = LabelLayers()
        self.fusion_model = Fusion()
        self.overlay_model = Overlay()
        self.preview_model = Preview()
        #: the one record of what the views show: the volume, label map and RGB layer
        self.layers = LayerList()
        self._geometries: dict[str, PlaneGeometry] = {}
        self._measurements: list[Measurement] = []
        self._init_annotations()
        self._editors: dict = {}
        self._loading: tuple[Volume, np.ndarray] | None = None
        self._default_window = (0.0, 1.0)
        self._auto_window: tuple[float, float] | None = None
        self._min_width = 1.0
        self._opening = False  # set_volume announces everything with volume_changed
        self.camera.events.cursor.connect(self._on_cursor)
        self.layers.events.volume.connect(self._on_shown_volume)
        self.layers.events.labels.connect(self._on_shown_labels)
        self.label_layers.events.scribbles.connect(self._on_scribbles)
        #: thick slab (MIP/MinIP/average) and oblique MPR + reference lines of the views
        self.slab = SlabViews(self)
        self.mpr = MprViews(self)

    @property
    def planes(self) -> dict[str, PlaneCamera]:
        """Each view's camera by plane name."""
        return self.camera.planes

    # -- volume ------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        """The volume the views show: the series, or a volume derived from it."""
        shown = self.layers.volume
        return None if shown is None else shown.value

    def set_volume(self, volume: Volume | None, *, window: tuple[float, float] | None = None,
                   auto: tuple[float, float] | None = None) -> None:
        """Show ``volume`` from its middle slice with its default window and zoom 1.

        ``window`` (the default window) and ``auto`` (the 1–99 percentile window) may be
        given when they were computed already, e.g. by the worker that loaded the volume:
        percentiles of a large float volume take ~0.1 s, too long for the GUI thread.
        What was drawn over the old volume goes first (its models announce it), then the
        new volume is announced by ``volume_changed`` alone.
        """
        if volume is not None and not isinstance(volume, Volume):
            raise TypeError(f"volume: expected a Volume or None, got {type(volume).__name__}")
        self._opening = True
        try:
            self._clear_layers()
            had_measurements, self._measurements = bool(self._measurements), []
            self._clear_annotations()
            self._editors = {}
            self.label_layers.scribbles = None
            self.fusion_model.volume = None
            self._auto_window = auto
            self._geometries = {}
            cursor, levels = (0, 0, 0), (0.0, 1.0)
            if volume is not None:
                nz, ny, nx = volume.shape[:3]
                cursor = (nx // 2, ny // 2, nz // 2)
                self._geometries = {name: plane_geometry(name, volume.shape, volume.spacing,
                                                         volume.direction) for name in PLANES}
                self._min_width = 1.0 if volume.array.dtype.kind in "iub" else 1e-3
                self._default_window = window if window is not None else default_window(volume)
                levels = tuple(float(v) for v in self._default_window)
                self._min_width = min(self._min_width, levels[1])
            self.layers.set_series(volume)
            # announced by volume_changed: the views redraw everything once
            with self.camera.events.cursor.blocked(), self.display.events.window.blocked():
                self.camera.cursor = cursor
                self.display.window = levels
                for plane in self.planes.values():
                    with plane.events.zoom.blocked():
                        plane.zoom = 1.0
        finally:
            self._opening = False
        self.volume_changed.emit(volume)
        self.display.inverted = False
        if had_measurements:
            self.measurements_changed.emit()

    @property
    def n_slices(self) -> int:
        return 0 if self.volume is None else self.volume.shape[0]

    @property
    def modality(self) -> str:
        return "" if self.volume is None else str(self.volume.metadata.get("Modality") or "")

    @property
    def units(self) -> str:
        if self.volume is None:
            return ""
        units = str(self.volume.metadata.get("Units") or "")
        return units or ("HU" if is_ct(self.volume) else "")

    # -- window, invert, colour map ----------------------------------------------------
    @property
    def window(self) -> tuple[float, float]:
        """``(center, width)``."""
        return self.display.window

    @property
    def window_center(self) -> float:
        return self.display.window[0]

    @property
    def window_width(self) -> float:
        return self.display.window[1]

    @property
    def window_levels(self) -> tuple[float, float]:
        """``(low, high)``: the values shown black and white."""
        return self.display.levels

    def set_window(self, center: float, width: float) -> None:
        """Set the window; ``width`` is raised to the smallest meaningful width if needed."""
        center, width = float(center), float(width)
        if not (np.isfinite(center) and np.isfinite(width)):
            raise ValueError(f"center, width: expected finite numbers, got {center}, {width}")
        self.display.window = (center, max(width, self._min_width))

    def auto_window(self) -> None:
        """Window the 1–99 percentile range of the volume's values (MR, PET)."""
        if self.volume is None or self.volume.is_rgb:
            return
        if self._auto_window is None:
            self._auto_window = auto_window(self.volume.array)
        self.set_window(*self._auto_window)

    def presets(self) -> tuple[WindowPreset, ...]:
        """The presets that make sense for the open volume (the CT ones on CT)."""
        return Display.presets_for(self.volume)

    def apply_preset(self, key: int) -> WindowPreset | None:
        """Apply the preset on number key ``key``.

        On CT that is the CT preset with this key; on other modalities, whose values have no
        fixed scale, every preset key gives the automatic (1–99 percentile) window. Returns
        the preset applied, ``None`` for the automatic window or when there is no volume.
        """
        if self.volume is None:
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

    @property
    def inverted(self) -> bool:
        """True when low values are shown white and high values black."""
        return self.display.inverted

    def set_inverted(self, inverted: bool) -> None:
        """Invert the grey scale (True) or not; a new volume opens not inverted."""
        self.display.inverted = bool(inverted)

    def toggle_invert(self) -> None:
        """I: swap black and white."""
        self.set_inverted(not self.display.inverted)

    @property
    def colormap(self) -> str:
        return self.display.colormap

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"colormap: expected one of {COLORMAPS}, got {name!r}")
        self.display.colormap = name

    # -- zoom and reset ----------------------------------------------------------------
    @property
    def zoom(self) -> float:
        """Zoom of the acquired plane's view (see :attr:`planes` for each view's)."""
        return self.planes[self.native_plane].zoom

    def set_zoom(self, zoom: float, plane: str | None = None) -> None:
        """Zoom factor of view ``plane`` (default: the acquired plane's) relative to the
        slice fitting it (1)."""
        zoom = float(zoom)
        if not (np.isfinite(zoom) and zoom > 0):
            raise ValueError(f"zoom: expected a positive number, got {zoom}")
        camera = self.planes[plane or self.native_plane]
        if abs(zoom - camera.zoom) > 1e-9:
            camera.zoom = zoom

    def reset_view(self, plane: str) -> None:
        """Fit view ``plane``'s slice again: zoom 1, no pan."""
        camera = self.planes[plane]
        camera.reset.emit()
        camera.zoom = 1.0

    def reset(self) -> None:
        """R: back to the default window and fitted, unpanned views (the slices stay)."""
        if self.volume is None:
            return
        self.set_window(*self._default_window)
        for name in self.planes:
            self.reset_view(name)

    # -- tools and measurements --------------------------------------------------------
    @property
    def tool(self) -> str:
        return self.tools.tool

    def set_tool(self, tool: str) -> None:
        """Choose what a left drag does: one of :data:`TOOLS`."""
        if tool not in TOOLS:
            raise ValueError(f"tool: expected one of {TOOLS}, got {tool!r}")
        self.tools.tool = tool

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return tuple(self._measurements)

    def measurements_on(self, plane: str, slice_index: int) -> list[Measurement]:
        return [m for m in self._measurements
                if m.plane == plane and m.slice_index == slice_index]

    def _measured(self) -> None:
        self.measurements_changed.emit()
        self.work_changed.emit("measurements")

    def add_measurement(self, m: Measurement) -> Measurement:
        if self.volume is None:
            raise ValueError("no volume is open")
        self._measurements.append(m)
        self._measured()
        return m

    def update_measurement(self, m: Measurement, p1=None, *, points=None,
                           label: str | None = None) -> None:
        """Move the second point of ``m`` (while it is being drawn), or set its ``points``
        (angle, polygon) or its ``label`` (the text of a text or arrow)."""
        if p1 is not None:
            m.p1 = (float(p1[0]), float(p1[1]))
            if m.points and m.kind in ("distance", "arrow") and points is None:
                m.points = (m.points[0], m.p1)  # a line read from a report
        if points is not None:
            m.points = tuple((float(u), float(v)) for u, v in points)
        if label is not None:
            m.label = str(label)
        self._measured()

    def remove_measurement(self, m: Measurement) -> None:
        if m in self._measurements:
            self._measurements.remove(m)
            self._measured()

    def clear_measurements(self) -> None:
        if self._measurements or self._kept:
            self._measurements, self._kept = [], []
            self._measured()

    # -- values ------------------------------------------------------------------------
    def sample(self, x: int, y: int) -> Sample | None:
        """The voxel at column ``x``, row ``y`` of the current slice, or None outside it."""
        return self.sample_index(x, y, self.cursor[2])

    def sample_index(self, x: int, y: int, z: int) -> Sample | None:
        """The voxel at index ``(x, y, z)``, or None outside the volume."""
        vol = self.volume
        if vol is None:
            return None
        nz, ny, nx = vol.shape[:3]
        if not (0 <= x < nx and 0 <= y < ny and 0 <= z < nz):
            return None
        raw = vol.array[z, y, x]
        value = tuple(int(v) for v in raw) if vol.is_rgb else raw.item()
        lps = vol.index_to_lps((float(x), float(y), float(z)))
        return Sample((int(x), int(y), int(z)), value, tuple(float(v) for v in lps),
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
