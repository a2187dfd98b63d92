"""The viewer's state, in plain Python: which volume, which slice, which window, what zoom.

Widgets bind to a :class:`ViewerState`: they listen to its events and call its methods, and
never keep a second copy of these values. Because it imports no Qt, everything a user does
with the keyboard and mouse can be tested here, without a screen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from medview.app.events import Event
from medview.app.label_editing import LabelEditor
from medview.app.loading_state import ProgressiveLoading
from medview.app.measurements import KINDS, Measurement
from medview.app.planes import PLANES, PlaneGeometry, plane_geometry
from medview.app.windowing import CT_PRESETS, WindowPreset, auto_window, default_window, is_ct
from medview.core.labelmap import LabelMap, Segment, default_segments
from medview.core.volume import Volume

__all__ = ["COLORMAPS", "EDIT_TARGETS", "EDIT_TOOLS", "TOOLS", "PlaneView", "Sample",
           "SlicePreview", "ViewerState", "WindowDrag"]

#: Screen pixels of a window/level drag that double the width (or move the level by the
#: starting width).
DRAG_PIXELS_PER_DOUBLING = 200.0

#: Tools that paint the label map being edited (see :meth:`ViewerState.edit_target`).
EDIT_TOOLS = ("brush", "eraser", "fill")
#: What a left drag does: window/level (the default), a measuring tool or an editing tool.
TOOLS = ("window", *KINDS, *EDIT_TOOLS)
#: The label maps a brush can paint: the segmentation overlay or the classifier's scribbles.
EDIT_TARGETS = ("labels", "scribbles")
#: Colour maps for grey volumes (PET reads best in "hot"); label maps have their own colours.
COLORMAPS = ("grey", "hot", "inferno", "viridis")


@dataclass(frozen=True)
class Sample:
    """The voxel under the cursor: its index ``(x, y, z)``, value and LPS position (mm)."""

    index: tuple[int, int, int]
    value: float | tuple[int, ...]
    lps: tuple[float, float, float]
    units: str = ""


@dataclass(frozen=True)
class SlicePreview:
    """A processed version of one slice of the acquired plane, shown over it (the chain
    panel's live preview).

    ``kind`` is ``"labels"`` (``image`` holds label numbers drawn with ``segments``' colours
    at the label opacity), ``"image"`` (grey, shown with ``levels``) or ``"rgb"``.
    """

    z: int
    kind: str
    image: np.ndarray
    segments: tuple = ()
    levels: tuple[float, float] | None = None


class PlaneView:
    """What one view (axial, coronal or sagittal) keeps of its own: its zoom.

    Its changes are announced by the owning :class:`ViewerState`'s ``plane_zoom_changed``
    and ``plane_view_reset`` events (and, for the acquired plane, ``zoom_changed`` and
    ``view_reset`` of the single-view API).
    """

    def __init__(self, name: str, owner: ViewerState):
        self.name = name
        self._owner = owner
        self._zoom = 1.0

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
            self._owner._zoom_changed(self.name, zoom)

    def reset(self) -> None:
        self._zoom = 1.0
        self._owner._view_reset(self.name)


class ViewerState(ProgressiveLoading):
    """The views of one volume: crosshair position, window, zoom per view, tools, layers.

    The crosshair (``cursor``, a voxel index ``(x, y, z)``) is shared by the three views:
    each view shows the slice through it perpendicular to its normal, so moving it in one
    view moves the others to the same patient position. The "slice" of the single-view API
    (``slice_index``, ``set_slice``…) is the acquired plane's: voxel z.

    Events (each an :class:`~medview.app.events.Event`):

    - ``volume_changed(volume)`` — a volume was opened (or ``None``: closed); slice, window
      and zoom were reset with it and are not emitted separately.
    - ``slice_changed(index)`` — the slice index (z) changed.
    - ``window_changed(center, width)`` — the window changed.
    - ``zoom_changed(zoom)`` — the zoom changed (1 = the whole slice fits the view).
    - ``view_reset()`` — the view should fit the slice again (zoom 1, no pan).
    - ``invert_changed(inverted)`` — the grey scale was inverted (True) or made normal again.
    - ``plane_zoom_changed(plane, zoom)``, ``plane_view_reset(plane)`` — the same for each
      view by name (``zoom_changed`` and ``view_reset`` concern the acquired plane's view).
    - ``position_changed((x, y, z))`` — the crosshair moved (any axis).
    - ``tool_changed(tool)`` — the left-drag tool changed (one of :data:`TOOLS`).
    - ``measurements_changed()`` — a measurement was added, changed or removed.
    - ``colormap_changed(name)`` — the colour map of grey volumes changed.
    - ``labels_changed()`` — the label-map overlay, the scribbles, their voxels (edits),
      segments or opacity changed.
    - ``fusion_changed()`` — the fused second series, its colour map, window or opacity
      changed.
    - ``edit_changed()`` — the edit target, paint label, brush size or undo stack changed.
    - ``data_changed()`` — voxels of the open volume changed in place, e.g. slices of a
      volume being loaded arrived (see :meth:`set_loading`; emitted on the GUI thread at a
      bounded rate, ≤ 20 Hz while loading), or :meth:`replace_volume` put a volume on the
      same grid in its place.
    - ``overlay_changed()`` — the RGB overlay (a colour-blend result of a chain) or its
      opacity changed.
    - ``preview_changed()`` — the chain panel's slice preview changed or was hidden/shown.
    - ``work_changed(kind)`` — the reader's own work changed: ``"labels"``, ``"scribbles"``
      (a map was set, painted, filled, undone, its segments edited), ``"measurements"`` or
      ``"fusion"`` (what :class:`~medview.app.unsaved_work.UnsavedWork` tracks; not emitted
      for display-only changes such as opacity, nor by :meth:`set_volume`).
    """

    def __init__(self) -> None:
        self.volume_changed = Event("volume_changed")
        self.slice_changed = Event("slice_changed")
        self.window_changed = Event("window_changed")
        self.zoom_changed = Event("zoom_changed")
        self.view_reset = Event("view_reset")
        self.invert_changed = Event("invert_changed")
        self.position_changed = Event("position_changed")
        self.tool_changed = Event("tool_changed")
        self.measurements_changed = Event("measurements_changed")
        self.colormap_changed = Event("colormap_changed")
        self.labels_changed = Event("labels_changed")
        self.edit_changed = Event("edit_changed")
        self.fusion_changed = Event("fusion_changed")
        self.data_changed = Event("data_changed")
        self.plane_zoom_changed = Event("plane_zoom_changed")
        self.plane_view_reset = Event("plane_view_reset")
        self.overlay_changed = Event("overlay_changed")
        self.preview_changed = Event("preview_changed")
        self.work_changed = Event("work_changed")
        self._overlay: Volume | None = None
        self._overlay_opacity = 0.5
        self._preview: SlicePreview | None = None
        self._preview_visible = True
        self.planes = {name: PlaneView(name, self) for name in PLANES}
        self._geometries: dict[str, PlaneGeometry] = {}
        self._cursor = [0, 0, 0]
        self._tool = "window"
        self._measurements: list[Measurement] = []
        self._colormap = "grey"
        self._labels: LabelMap | None = None
        self._scribbles: LabelMap | None = None
        self._editors: dict[str, LabelEditor] = {}
        self._edit_target = "labels"
        self._paint_label = 1
        self._brush_mm = 3.0
        self._label_opacity = 0.5
        self._fusion: Volume | None = None
        self._fusion_window = (0.0, 1.0)
        self._fusion_colormap = "hot"
        self._fusion_opacity = 0.5
        self._loading: tuple[Volume, np.ndarray] | None = None
        self._inverted = False
        self._volume: Volume | None = None
        self._center = 0.0
        self._width = 1.0
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
        for plane in self.planes.values():
            plane._zoom = 1.0
        self._geometries = {}
        had_overlays = (bool(self._measurements) or self._labels is not None
                        or self._scribbles is not None)
        self._clear_layers()
        self._measurements = []
        self._labels = None
        self._scribbles = None
        self._editors = {}
        had_fusion, self._fusion = self._fusion is not None, None
        if volume is None:
            self._cursor = [0, 0, 0]
            self._center, self._width = 0.0, 1.0
        else:
            nz, ny, nx = volume.shape[:3]
            self._cursor = [nx // 2, ny // 2, nz // 2]
            self._geometries = {name: plane_geometry(name, volume.shape, volume.spacing,
                                                     volume.direction) for name in PLANES}
            self._min_width = 1.0 if volume.array.dtype.kind in "iub" else 1e-3
            self._default_window = window if window is not None else default_window(volume)
            self._center, self._width = self._default_window
            self._min_width = min(self._min_width, self._width)
        self.volume_changed.emit(volume)
        if was_inverted:
            self.invert_changed.emit(False)
        if had_overlays:
            self.measurements_changed.emit()
            self.labels_changed.emit()
        if had_fusion:
            self.fusion_changed.emit()

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

    # -- crosshair and slices ----------------------------------------------------------
    @property
    def cursor(self) -> tuple[int, int, int]:
        """The crosshair: voxel index ``(x, y, z)`` every view passes through."""
        return tuple(self._cursor)  # type: ignore[return-value]

    def set_cursor(self, x: int, y: int, z: int) -> None:
        """Move the crosshair to voxel ``(x, y, z)`` (clamped to the volume)."""
        if self._volume is None:
            return
        nz, ny, nx = self._volume.shape[:3]
        new = [int(min(max(int(v), 0), n - 1)) for v, n in zip((x, y, z), (nx, ny, nz),
                                                                  strict=True)]
        if new == self._cursor:
            return
        z_changed = new[2] != self._cursor[2]
        self._cursor = new
        self.position_changed.emit(tuple(new))
        if z_changed:
            self.slice_changed.emit(new[2])

    def set_cursor_lps(self, lps) -> None:
        """Move the crosshair to the voxel nearest to patient position ``lps`` (mm)."""
        if self._volume is None:
            return
        ijk = self._volume.lps_to_index(np.asarray(lps, dtype=float))
        self.set_cursor(*(int(round(float(c))) for c in ijk))

    def cursor_lps(self) -> np.ndarray | None:
        """Patient position (LPS, mm) of the crosshair's voxel."""
        if self._volume is None:
            return None
        return np.asarray(self._volume.index_to_lps(tuple(float(c) for c in self._cursor)))

    def geometry(self, plane: str) -> PlaneGeometry | None:
        """How view ``plane`` shows the open volume (None without a volume)."""
        return self._geometries.get(plane)

    @property
    def native_plane(self) -> str:
        """The view showing the acquired plane (voxel z), e.g. "sagittal" for a sagittal MR."""
        for name, geometry in self._geometries.items():
            if geometry.native:
                return name
        return "axial"

    def plane_slice(self, plane: str) -> int:
        """Slice index of view ``plane``: the crosshair's index on its normal."""
        g = self._geometries.get(plane)
        return 0 if g is None else self._cursor[g.normal]

    def plane_n_slices(self, plane: str) -> int:
        g = self._geometries.get(plane)
        return 0 if g is None else g.n_slices

    def set_plane_slice(self, plane: str, index: int) -> None:
        """Show slice ``index`` in view ``plane`` (the crosshair moves along its normal)."""
        g = self._geometries.get(plane)
        if g is None:
            return
        cursor = list(self._cursor)
        cursor[g.normal] = int(index)
        self.set_cursor(*cursor)

    def step_plane_slice(self, plane: str, steps: int) -> None:
        self.set_plane_slice(plane, self.plane_slice(plane) + int(steps))

    def plane_image(self, plane: str) -> np.ndarray | None:
        """The displayed image of view ``plane`` (a view into the volume, no copy)."""
        g = self._geometries.get(plane)
        if g is None or self._volume is None:
            return None
        return g.image(self._volume.array, self._cursor[g.normal])

    def plane_position_mm(self, plane: str) -> float | None:
        """Position of view ``plane``'s slice along its normal (mm), as SliceLocation does."""
        g = self._geometries.get(plane)
        if g is None or self._volume is None:
            return None
        d = np.asarray(self._volume.direction, dtype=float)
        a, b = (k for k in range(3) if k != g.normal)
        normal = np.cross(d[:, a], d[:, b])
        normal /= np.linalg.norm(normal)
        # the positive direction along the normal follows the patient axis it is closest to
        if normal[int(np.argmax(np.abs(normal)))] < 0:
            normal = -normal
        ijk = [0.0, 0.0, 0.0]
        ijk[g.normal] = float(self._cursor[g.normal])
        return float(np.asarray(self._volume.index_to_lps(tuple(ijk))) @ normal)

    # the acquired plane (voxel z): the single-view API
    @property
    def slice_index(self) -> int:
        return self._cursor[2]

    def set_slice(self, index: int) -> None:
        """Go to slice ``index`` (z), clamped to the volume."""
        if self._volume is None:
            return
        self.set_cursor(self._cursor[0], self._cursor[1], int(index))

    def step_slice(self, steps: int) -> None:
        """Move ``steps`` slices (negative: towards slice 0)."""
        self.set_slice(self._cursor[2] + int(steps))

    def first_slice(self) -> None:
        self.set_slice(0)

    def last_slice(self) -> None:
        self.set_slice(self.n_slices - 1)

    def slice_image(self) -> np.ndarray | None:
        """The current slice, ``[y, x]`` (or ``[y, x, 3]``), a view into the volume."""
        if self._volume is None:
            return None
        return self._volume.array[self._cursor[2]]

    def slice_position_mm(self) -> float | None:
        """Position of the current slice along the slice normal (mm), as SliceLocation."""
        if self._volume is None:
            return None
        d = self._volume.direction
        normal = np.cross(d[:, 0], d[:, 1])
        normal /= np.linalg.norm(normal)
        return float(self._volume.index_to_lps((0.0, 0.0, float(self._cursor[2]))) @ normal)

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
        """Zoom of the acquired plane's view (see :attr:`planes` for each view's)."""
        return self.planes[self.native_plane].zoom

    def set_zoom(self, zoom: float) -> None:
        """Zoom factor of the acquired plane's view relative to the slice fitting it (1)."""
        self.planes[self.native_plane].set_zoom(zoom)

    def _zoom_changed(self, plane: str, zoom: float) -> None:
        self.plane_zoom_changed.emit(plane, zoom)
        if plane == self.native_plane:
            self.zoom_changed.emit(zoom)

    def _view_reset(self, plane: str) -> None:
        self.plane_view_reset.emit(plane)
        self.plane_zoom_changed.emit(plane, 1.0)
        if plane == self.native_plane:
            self.view_reset.emit()
            self.zoom_changed.emit(1.0)

    def reset(self) -> None:
        """R: back to the default window and fitted, unpanned views (the slices stay)."""
        if self._volume is None:
            return
        self.set_window(*self._default_window)
        for plane in self.planes.values():
            plane.reset()

    # -- tools and measurements --------------------------------------------------------
    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        """Choose what a left drag does: one of :data:`TOOLS`."""
        if tool not in TOOLS:
            raise ValueError(f"tool: expected one of {TOOLS}, got {tool!r}")
        if tool != self._tool:
            self._tool = tool
            self.tool_changed.emit(tool)

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return tuple(self._measurements)

    def measurements_on(self, plane: str, slice_index: int) -> list[Measurement]:
        return [m for m in self._measurements
                if m.plane == plane and m.slice_index == slice_index]

    def add_measurement(self, m: Measurement) -> Measurement:
        if self._volume is None:
            raise ValueError("no volume is open")
        self._measurements.append(m)
        self.measurements_changed.emit()
        self.work_changed.emit("measurements")
        return m

    def update_measurement(self, m: Measurement, p1) -> None:
        """Move the second point of ``m`` (while it is being drawn)."""
        m.p1 = (float(p1[0]), float(p1[1]))
        self.measurements_changed.emit()
        self.work_changed.emit("measurements")

    def remove_measurement(self, m: Measurement) -> None:
        if m in self._measurements:
            self._measurements.remove(m)
            self.measurements_changed.emit()
            self.work_changed.emit("measurements")

    def clear_measurements(self) -> None:
        if self._measurements:
            self._measurements = []
            self.measurements_changed.emit()
            self.work_changed.emit("measurements")

    # -- colour map and label overlay --------------------------------------------------
    @property
    def colormap(self) -> str:
        return self._colormap

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"colormap: expected one of {COLORMAPS}, got {name!r}")
        if name != self._colormap:
            self._colormap = name
            self.colormap_changed.emit(name)

    @property
    def labels(self) -> LabelMap | None:
        return self._labels

    @property
    def label_opacity(self) -> float:
        return self._label_opacity

    def _check_on_grid(self, labels: Volume | None, what: str, *,
                       kind: type = LabelMap) -> None:
        """Raise unless ``labels`` (a ``kind``) lies on the open volume's grid."""
        if labels is None:
            return
        if self._volume is None:
            raise ValueError(f"open a series before a {what}")
        if not isinstance(labels, kind):
            raise TypeError(f"{what}: expected a {kind.__name__}, got {type(labels).__name__}")
        if tuple(labels.shape) != tuple(self._volume.shape[:3]):
            raise ValueError(
                f"the {what}'s grid {labels.shape} differs from the series' "
                f"{tuple(self._volume.shape[:3])}")
        if not (np.allclose(labels.origin, self._volume.origin, atol=1e-2)
                and np.allclose(labels.spacing, self._volume.spacing, atol=1e-3)
                and np.allclose(labels.direction, self._volume.direction, atol=1e-3)):
            raise ValueError(f"the {what} is not on the series' grid (origin, spacing "
                             "or direction differ)")

    def set_labels(self, labels: LabelMap | None) -> None:
        """Show ``labels`` over the volume (None: none); it must be on the volume's grid."""
        self._check_on_grid(labels, "label map")
        self._labels = labels
        self._editors.pop("labels", None)
        self.labels_changed.emit()
        self.edit_changed.emit()
        self.work_changed.emit("labels")

    @property
    def scribbles(self) -> LabelMap | None:
        """The classifier's training scribbles, drawn over the label map."""
        return self._scribbles

    def set_scribbles(self, scribbles: LabelMap | None) -> None:
        self._check_on_grid(scribbles, "scribble map")
        self._scribbles = scribbles
        self._editors.pop("scribbles", None)
        self.labels_changed.emit()
        self.edit_changed.emit()
        self.work_changed.emit("scribbles")

    def set_label_opacity(self, opacity: float) -> None:
        opacity = float(min(max(float(opacity), 0.0), 1.0))
        if opacity != self._label_opacity:
            self._label_opacity = opacity
            self.labels_changed.emit()

    def label_image(self, plane: str, which: str = "labels") -> np.ndarray | None:
        """The displayed slice of the label map (or of the scribbles) in view ``plane``."""
        g = self._geometries.get(plane)
        lm = self._labels if which == "labels" else self._scribbles
        if g is None or lm is None:
            return None
        return g.image(lm.array, self._cursor[g.normal])

    # -- fusion ------------------------------------------------------------------------
    @property
    def fusion(self) -> Volume | None:
        """The second series, resampled onto this volume's grid, shown in colour over it."""
        return self._fusion

    @property
    def fusion_window(self) -> tuple[float, float]:
        """``(low, high)`` of the fused series mapped to the colour map's ends."""
        return self._fusion_window

    @property
    def fusion_colormap(self) -> str:
        return self._fusion_colormap

    @property
    def fusion_opacity(self) -> float:
        return self._fusion_opacity

    def set_fusion(self, fused: Volume | None, *, window: tuple[float, float] | None = None
                   ) -> None:
        """Show ``fused`` (already on this volume's grid) over it; None removes it.

        ``window`` defaults to the 1–99 percentile range of its values.
        """
        if fused is not None:
            if self._volume is None:
                raise ValueError("open a series before fusing another with it")
            if fused.is_rgb:
                raise ValueError("the fused series must be grey (it is shown in colour)")
            self._check_on_grid(fused, "fused series", kind=Volume)
            if window is None:
                center, width = auto_window(fused.array)
                window = (center - width / 2.0, center + width / 2.0)
            low, high = (float(v) for v in window)
            if not high > low:
                high = low + 1.0
            self._fusion_window = (low, high)
        self._fusion = fused
        self.fusion_changed.emit()
        self.work_changed.emit("fusion")

    def set_fusion_window(self, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not high > low:
            raise ValueError(f"window: high ({high}) must exceed low ({low})")
        self._fusion_window = (low, high)
        self.fusion_changed.emit()

    def set_fusion_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"colormap: expected one of {COLORMAPS}, got {name!r}")
        if name != self._fusion_colormap:
            self._fusion_colormap = name
            self.fusion_changed.emit()

    def set_fusion_opacity(self, opacity: float) -> None:
        opacity = float(min(max(float(opacity), 0.0), 1.0))
        if opacity != self._fusion_opacity:
            self._fusion_opacity = opacity
            self.fusion_changed.emit()

    def fusion_image(self, plane: str) -> np.ndarray | None:
        g = self._geometries.get(plane)
        if g is None or self._fusion is None:
            return None
        return g.image(self._fusion.array, self._cursor[g.normal])

    # -- label editing -----------------------------------------------------------------
    @property
    def edit_target(self) -> str:
        """Which label map the brush paints: "labels" or "scribbles"."""
        return self._edit_target

    def set_edit_target(self, target: str) -> None:
        if target not in EDIT_TARGETS:
            raise ValueError(f"target: expected one of {EDIT_TARGETS}, got {target!r}")
        if target != self._edit_target:
            self._edit_target = target
            self.edit_changed.emit()

    def target_map(self) -> LabelMap | None:
        return self._labels if self._edit_target == "labels" else self._scribbles

    @property
    def paint_label(self) -> int:
        return self._paint_label

    def set_paint_label(self, label: int) -> None:
        label = int(label)
        if label < 1:
            raise ValueError(f"label: the brush paints labels from 1, got {label}")
        if label != self._paint_label:
            self._paint_label = label
            self.edit_changed.emit()

    @property
    def brush_mm(self) -> float:
        return self._brush_mm

    def set_brush_mm(self, radius_mm: float) -> None:
        radius_mm = float(radius_mm)
        if not (np.isfinite(radius_mm) and radius_mm > 0):
            raise ValueError(f"radius_mm: expected a positive size, got {radius_mm}")
        if radius_mm != self._brush_mm:
            self._brush_mm = radius_mm
            self.edit_changed.emit()

    def new_label_map(self, target: str | None = None) -> LabelMap:
        """An empty label map (one segment) on the volume's grid as the edit target."""
        if self._volume is None:
            raise ValueError("open a series first")
        target = target or self._edit_target
        empty = np.zeros(self._volume.shape[:3], dtype=np.uint8)
        if target == "scribbles":
            segments = (Segment(1, "Background", (60, 120, 255)),
                        Segment(2, "Foreground", (255, 200, 0)))
        else:
            segments = default_segments([1])
        lm = LabelMap.like(self._volume, empty, segments)
        if target == "labels":
            self.set_labels(lm)
        else:
            self.set_scribbles(lm)
        return lm

    def editor(self, target: str | None = None) -> LabelEditor:
        """The editor of the target label map; an empty map is made when there is none."""
        target = target or self._edit_target
        lm = self._labels if target == "labels" else self._scribbles
        if lm is None:
            lm = self.new_label_map(target)
        ed = self._editors.get(target)
        if ed is None or ed.array is not lm.array:
            if not lm.array.flags.writeable or lm.array.dtype.kind not in "iu":
                lm = dataclasses.replace(lm, array=np.array(lm.array, dtype=np.uint16))
                if target == "labels":
                    self._labels = lm
                else:
                    self._scribbles = lm
            ed = self._editors[target] = LabelEditor(lm.array)
        return ed

    def begin_edit(self, what: str) -> None:
        self.editor().begin_stroke(what)

    def end_edit(self) -> None:
        if self.editor().end_stroke() is not None:
            self.edit_changed.emit()

    def paint(self, plane: str, start, end=None, *, erase: bool = False) -> int:
        """Paint (or erase) a dab at display point ``start`` of view ``plane``, or a line
        of dabs to ``end``; returns the voxels changed."""
        g = self._geometries.get(plane)
        if g is None:
            return 0
        ed = self.editor()
        value = 0 if erase else self._paint_label
        k = self._cursor[g.normal]
        if end is None:
            n = ed.paint(g, k, start, self._brush_mm, value)
        else:
            n = ed.paint_line(g, k, start, end, self._brush_mm, value)
        if n:
            self._ensure_segment(value)
            self.labels_changed.emit()
            self.work_changed.emit(self._edit_target)
        return n

    def fill(self, plane: str, point) -> int:
        g = self._geometries.get(plane)
        if g is None:
            return 0
        n = self.editor().fill(g, self._cursor[g.normal], point, self._paint_label)
        if n:
            self._ensure_segment(self._paint_label)
            self.labels_changed.emit()
            self.edit_changed.emit()
            self.work_changed.emit(self._edit_target)
        return n

    def undo(self) -> bool:
        if self.editor().undo() is None:
            return False
        self.labels_changed.emit()
        self.edit_changed.emit()
        self.work_changed.emit(self._edit_target)
        return True

    def redo(self) -> bool:
        if self.editor().redo() is None:
            return False
        self.labels_changed.emit()
        self.edit_changed.emit()
        self.work_changed.emit(self._edit_target)
        return True

    def _ensure_segment(self, number: int) -> None:
        lm = self.target_map()
        if number == 0 or lm is None or any(s.number == number for s in lm.segments):
            return
        self._replace_segments(lm, (*lm.segments, *default_segments([number])))

    def update_segment(self, number: int, *, name: str | None = None,
                       color: tuple[int, int, int] | None = None) -> None:
        """Rename or recolour segment ``number`` of the edit target (added if missing)."""
        lm = self.target_map()
        if lm is None:
            raise ValueError("no label map to edit")
        self._ensure_segment(number)
        lm = self.target_map()
        segments = tuple(
            dataclasses.replace(s, **{k: v for k, v in (("name", name), ("color", color))
                                      if v is not None}) if s.number == number else s
            for s in lm.segments)
        self._replace_segments(lm, segments)
        self.labels_changed.emit()
        self.edit_changed.emit()
        self.work_changed.emit(self._edit_target)

    def _replace_segments(self, lm: LabelMap, segments) -> None:
        new = dataclasses.replace(lm, segments=tuple(sorted(segments, key=lambda s: s.number)))
        if lm is self._labels:
            self._labels = new
        elif lm is self._scribbles:
            self._scribbles = new

    # -- derived volumes, RGB overlay and slice preview (the chain panel) --------------
    def replace_volume(self, volume: Volume, *,
                       window: tuple[float, float] | None = None) -> None:
        """Show ``volume`` in place of the open one, which it must share the grid with
        (a derived volume): crosshair, zoom, label map and measurements stay.

        Emits ``data_changed`` and ``window_changed`` (not ``volume_changed``: it is the
        same series). ``window`` defaults to :func:`default_window` of ``volume``.
        """
        if self._volume is None:
            raise ValueError("open a series before showing a volume derived from it")
        if not isinstance(volume, Volume):
            raise TypeError(f"volume: expected a Volume, got {type(volume).__name__}")
        if not volume.same_grid(self._volume, atol=1e-3):
            raise ValueError("the volume is not on the series' grid (shape, origin, spacing "
                             "or direction differ)")
        self._volume = volume
        self._auto_window = None
        self._min_width = 1.0 if volume.array.dtype.kind in "iub" else 1e-3
        self._default_window = window if window is not None else default_window(volume)
        self._center, self._width = self._default_window
        self._min_width = min(self._min_width, self._width)
        self.data_changed.emit()
        self.window_changed.emit(self._center, self._width)

    @property
    def overlay(self) -> Volume | None:
        """An RGB volume on the series' grid blended over the views (e.g. a fusion)."""
        return self._overlay

    @property
    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    def set_overlay(self, volume: Volume | None) -> None:
        """Blend RGB ``volume`` over the views at :attr:`overlay_opacity` (None: no overlay)."""
        if volume is not None:
            if self._volume is None:
                raise ValueError("open a series before an overlay")
            if not volume.is_rgb:
                raise ValueError("the overlay must be an RGB volume (e.g. a colour fusion)")
            if not volume.same_grid(self._volume, atol=1e-3):
                raise ValueError("the overlay is not on the series' grid")
        self._overlay = volume
        self.overlay_changed.emit()

    def set_overlay_opacity(self, opacity: float) -> None:
        opacity = float(min(max(float(opacity), 0.0), 1.0))
        if opacity != self._overlay_opacity:
            self._overlay_opacity = opacity
            self.overlay_changed.emit()

    def overlay_image(self, plane: str) -> np.ndarray | None:
        g = self._geometries.get(plane)
        if g is None or self._overlay is None:
            return None
        return g.image(self._overlay.array, self._cursor[g.normal])

    @property
    def preview(self) -> SlicePreview | None:
        return self._preview

    @property
    def preview_visible(self) -> bool:
        """False while the user compares with the original slice."""
        return self._preview_visible

    def set_preview(self, preview: SlicePreview | None) -> None:
        """Show ``preview`` over its slice of the acquired plane (None: remove it)."""
        if preview is not None and self._volume is not None:
            ny, nx = self._volume.shape[1:3]
            if tuple(preview.image.shape[:2]) != (ny, nx):
                raise ValueError(f"preview: expected a {ny}×{nx} slice, got "
                                 f"{preview.image.shape[:2]}")
        self._preview = preview
        self.preview_changed.emit()

    def set_preview_visible(self, visible: bool) -> None:
        if bool(visible) != self._preview_visible:
            self._preview_visible = bool(visible)
            self.preview_changed.emit()

    def preview_image(self, plane: str) -> np.ndarray | None:
        """The preview as view ``plane`` displays it, when that view shows its slice."""
        g = self._geometries.get(plane)
        p = self._preview
        if g is None or p is None or not self._preview_visible or not g.native:
            return None
        if self._cursor[2] != p.z:
            return None
        return g.image(p.image[np.newaxis], 0)

    def _clear_layers(self) -> None:
        had = self._overlay is not None, self._preview is not None
        self._overlay = None
        self._preview = None
        if had[0]:
            self.overlay_changed.emit()
        if had[1]:
            self.preview_changed.emit()

    # -- values ------------------------------------------------------------------------
    def sample(self, x: int, y: int) -> Sample | None:
        """The voxel at column ``x``, row ``y`` of the current slice, or None outside it."""
        return self.sample_index(x, y, self._cursor[2])

    def sample_index(self, x: int, y: int, z: int) -> Sample | None:
        """The voxel at index ``(x, y, z)``, or None outside the volume."""
        vol = self._volume
        if vol is None:
            return None
        nz, ny, nx = vol.shape[:3]
        if not (0 <= x < nx and 0 <= y < ny and 0 <= z < nz):
            return None
        raw = vol.array[z, y, x]
        value: float | tuple[int, ...]
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
