"""The viewer state's layers over (or instead of) the open volume: fusion, derived volumes,
the RGB overlay and the chain panel's slice preview.

A mixin of :class:`~medview.app.state.ViewerState`, kept apart so that the state proper stays
about viewing. What is shown lives in the layer list (``layers``: the volume and the RGB
layer) and the ``fusion_model``, ``overlay_model`` and ``preview_model`` models; these methods
check it lies on the series' grid. Plain Python, no Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medview.app.models import COLORMAPS, SlicePreview
from medview.app.windowing import auto_window, default_window
from medview.core.labelmap import LabelMap
from medview.core.volume import Volume

if TYPE_CHECKING:
    from medview.app.state import ViewerState

__all__ = ["DerivedLayers"]


class DerivedLayers:
    """Fusion, derived volumes, RGB overlay and preview (mixed into :class:`ViewerState`)."""

    def _check_on_grid(self: ViewerState, labels: Volume | None, what: str, *,
                       kind: type = LabelMap) -> None:
        """Raise unless ``labels`` (a ``kind``) lies on the open volume's grid."""
        if labels is None:
            return
        if self.volume is None:
            raise ValueError(f"open a series before a {what}")
        if not isinstance(labels, kind):
            raise TypeError(f"{what}: expected a {kind.__name__}, got {type(labels).__name__}")
        if tuple(labels.shape) != tuple(self.volume.shape[:3]):
            raise ValueError(
                f"the {what}'s grid {labels.shape} differs from the series' "
                f"{tuple(self.volume.shape[:3])}")
        if not (np.allclose(labels.origin, self.volume.origin, atol=1e-2)
                and np.allclose(labels.spacing, self.volume.spacing, atol=1e-3)
                and np.allclose(labels.direction, self.volume.direction, atol=1e-3)):
            raise ValueError(f"the {what} is not on the series' grid (origin, spacing "
                             "or direction differ)")

    # -- fusion ------------------------------------------------------------------------
    @property
    def fusion(self: ViewerState) -> Volume | None:
        """The second series, resampled onto this volume's grid, shown in colour over it."""
        return self.fusion_model.volume

    @property
    def fusion_window(self: ViewerState) -> tuple[float, float]:
        """``(low, high)`` of the fused series mapped to the colour map's ends."""
        return self.fusion_model.window

    @property
    def fusion_colormap(self: ViewerState) -> str:
        return self.fusion_model.colormap

    @property
    def fusion_opacity(self: ViewerState) -> float:
        return self.fusion_model.opacity

    def set_fusion(self: ViewerState, fused: Volume | None, *,
                   window: tuple[float, float] | None = None) -> None:
        """Show ``fused`` (already on this volume's grid) over it; None removes it.

        ``window`` defaults to the 1–99 percentile range of its values.
        """
        if fused is not None:
            if self.volume is None:
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
            self.fusion_model.window = (low, high)
        self.fusion_model.volume = fused
        self.work_changed.emit("fusion")

    def set_fusion_window(self: ViewerState, low: float, high: float) -> None:
        low, high = float(low), float(high)
        if not high > low:
            raise ValueError(f"window: high ({high}) must exceed low ({low})")
        self.fusion_model.window = (low, high)

    def set_fusion_colormap(self: ViewerState, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"colormap: expected one of {COLORMAPS}, got {name!r}")
        self.fusion_model.colormap = name

    def set_fusion_opacity(self: ViewerState, opacity: float) -> None:
        self.fusion_model.opacity = float(min(max(float(opacity), 0.0), 1.0))

    def fusion_image(self: ViewerState, plane: str) -> np.ndarray | None:
        return self._plane_of(plane, self.fusion_model.volume)

    # -- derived volumes ---------------------------------------------------------------
    def replace_volume(self: ViewerState, volume: Volume, *,
                       window: tuple[float, float] | None = None) -> None:
        """Show ``volume`` in place of the open one, which it must share the grid with
        (a derived volume): crosshair, zoom, label map and measurements stay.

        Emits ``data_changed`` and, when it changed, the window's event (not
        ``volume_changed``: it is the same series). ``window`` defaults to
        :func:`default_window` of ``volume``.
        """
        if self.volume is None:
            raise ValueError("open a series before showing a volume derived from it")
        if not isinstance(volume, Volume):
            raise TypeError(f"volume: expected a Volume, got {type(volume).__name__}")
        if not volume.same_grid(self.volume, atol=1e-3):
            raise ValueError("the volume is not on the series' grid (shape, origin, spacing "
                             "or direction differ)")
        self.layers.volume.value = volume
        self._windowed(volume, window)

    def _on_shown_volume(self: ViewerState, shown, _old) -> None:
        """The layer list shows another volume of the series (a derived one, or the series
        again): the same crosshair and zoom, its own window."""
        if not self._opening and shown is not None:
            self._windowed(shown.value, shown.window)

    def _windowed(self: ViewerState, volume: Volume,
                  window: tuple[float, float] | None) -> None:
        self._auto_window = None
        self._min_width = 1.0 if volume.array.dtype.kind in "iub" else 1e-3
        self._default_window = window if window is not None else default_window(volume)
        levels = tuple(float(v) for v in self._default_window)
        self._min_width = min(self._min_width, levels[1])
        self.display.window = levels
        self.data_changed.emit()

    # -- RGB overlay -------------------------------------------------------------------
    @property
    def overlay(self: ViewerState) -> Volume | None:
        """An RGB volume on the series' grid blended over the views (the RGB layer shown)."""
        shown = self.layers.rgb
        return None if shown is None else shown.value

    @property
    def overlay_opacity(self: ViewerState) -> float:
        return self.overlay_model.opacity

    def set_overlay(self: ViewerState, volume: Volume | None) -> None:
        """Blend RGB ``volume`` over the views at :attr:`overlay_opacity` (None: no overlay)."""
        if volume is not None:
            if self.volume is None:
                raise ValueError("open a series before an overlay")
            if not volume.is_rgb:
                raise ValueError("the overlay must be an RGB volume (e.g. a colour fusion)")
            if not volume.same_grid(self.volume, atol=1e-3):
                raise ValueError("the overlay is not on the series' grid")
        self.layers.show_value("rgb", volume, "Overlay")

    def set_overlay_opacity(self: ViewerState, opacity: float) -> None:
        self.overlay_model.opacity = float(min(max(float(opacity), 0.0), 1.0))

    def overlay_image(self: ViewerState, plane: str) -> np.ndarray | None:
        return self._plane_of(plane, self.overlay)

    # -- slice preview -----------------------------------------------------------------
    @property
    def preview(self: ViewerState) -> SlicePreview | None:
        return self.preview_model.slice

    @property
    def preview_visible(self: ViewerState) -> bool:
        """False while the user compares with the original slice."""
        return self.preview_model.visible

    def set_preview(self: ViewerState, preview: SlicePreview | None) -> None:
        """Show ``preview`` over its slice of the acquired plane (None: remove it)."""
        if preview is not None and self.volume is not None:
            ny, nx = self.volume.shape[1:3]
            if tuple(preview.image.shape[:2]) != (ny, nx):
                raise ValueError(f"preview: expected a {ny}×{nx} slice, got "
                                 f"{preview.image.shape[:2]}")
        self.preview_model.slice = preview

    def set_preview_visible(self: ViewerState, visible: bool) -> None:
        self.preview_model.visible = bool(visible)

    def preview_image(self: ViewerState, plane: str) -> np.ndarray | None:
        """The preview as view ``plane`` displays it, when that view shows its slice."""
        g = self._geometries.get(plane)
        p = self.preview_model.slice
        if g is None or p is None or not self.preview_model.visible or not g.native:
            return None
        if self.cursor[2] != p.z:
            return None
        return g.image(p.image[np.newaxis], 0)

    def _clear_layers(self: ViewerState) -> None:
        self.preview_model.slice = None
