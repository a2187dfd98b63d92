"""What the viewer can show of a series and the chain results made from it (no Qt).

A :class:`LayerList` holds the open series and every result of the chain runs on it:
derived volumes (shown *instead of* the series, same crosshair), label maps (the coloured
overlay, one at a time), fused RGB volumes (blended over the views with an opacity) and
tables (shown in the table dock). :class:`LayerBinding` applies the list's choices to a
:class:`~medview.app.state.ViewerState`.

Events: ``layers_changed()`` (added, removed, reset), ``shown_changed()`` (which volume,
label map or RGB overlay is shown).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["KINDS", "Layer", "LayerBinding", "LayerList", "kind_of"]

#: Layer kinds: the series itself, a derived grey volume, a label map, an RGB volume, a table.
KINDS = ("series", "volume", "labels", "rgb", "table")

_uids = itertools.count(1)


def kind_of(value: Any) -> str | None:
    """The layer kind of a chain result, None for values that are not shown."""
    if isinstance(value, LabelMap):
        return "labels"
    if isinstance(value, Volume):
        return "rgb" if value.is_rgb else "volume"
    if isinstance(value, Table):
        return "table"
    return None


@dataclass(eq=False)
class Layer:
    """One thing the viewer can show; ``window`` is the default window of a grey volume
    (computed by the worker that made it), ``on_grid`` whether it lies on the series' grid."""

    name: str
    kind: str
    value: Any
    window: tuple[float, float] | None = None
    on_grid: bool = True
    uid: int = field(default_factory=lambda: next(_uids))


class LayerList:
    """The series and its derived layers, and which of them are shown."""

    layers_changed = Signal()
    shown_changed = Signal()

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self._volume: Layer | None = None
        self._labels: Layer | None = None
        self._rgb: Layer | None = None

    # -- contents ----------------------------------------------------------------------
    @property
    def series(self) -> Layer | None:
        return self.layers[0] if self.layers and self.layers[0].kind == "series" else None

    def set_series(self, volume: Volume | None) -> None:
        """Start again from ``volume`` (a newly opened series): every derived layer goes."""
        self.layers = [] if volume is None else [Layer(_series_name(volume), "series", volume)]
        self._volume = self.series
        self._labels = self._rgb = None
        self.layers_changed.emit()
        self.shown_changed.emit()

    def add_results(self, values: Mapping[str, Any], *,
                    windows: Mapping[str, tuple[float, float]] | None = None) -> list[Layer]:
        """Add every volume, label map and table of ``values`` (name → value) as layers,
        all at once; names already taken get " (2)", " (3)"…; returns the new layers."""
        base = self.series.value if self.series is not None else None
        taken = {layer.name for layer in self.layers}
        new = []
        for name, value in values.items():
            kind = kind_of(value)
            if kind is None:
                continue
            unique, n = name, 2
            while unique in taken:
                unique, n = f"{name} ({n})", n + 1
            taken.add(unique)
            on_grid = kind == "table" or (base is not None and value.same_grid(base, atol=1e-3))
            new.append(Layer(unique, kind, value, (windows or {}).get(name), on_grid))
        if new:
            self.layers.extend(new)
            self.layers_changed.emit()
        return new

    def remove(self, layer: Layer) -> None:
        if layer.kind == "series" or layer not in self.layers:
            raise ValueError("only derived layers can be removed")
        self.layers.remove(layer)
        changed = False
        if layer is self._volume:
            self._volume, changed = self.series, True
        if layer is self._labels:
            self._labels, changed = None, True
        if layer is self._rgb:
            self._rgb, changed = None, True
        self.layers_changed.emit()
        if changed:
            self.shown_changed.emit()

    def of_kind(self, *kinds: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind in kinds]

    def by_name(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers: {', '.join(x.name for x in self.layers)}")

    # -- what is shown -----------------------------------------------------------------
    @property
    def shown_volume(self) -> Layer | None:
        """The series or derived volume the views show."""
        return self._volume

    @property
    def shown_labels(self) -> Layer | None:
        return self._labels

    @property
    def shown_rgb(self) -> Layer | None:
        return self._rgb

    def show(self, layer: Layer) -> None:
        """Show ``layer``: a volume in place of the series, a label map as the overlay, an
        RGB volume blended over the views. Tables are not shown in the views.

        Raises
        ------
        ValueError
            For a layer not on the series' grid, or a table.
        """
        if layer not in self.layers:
            raise ValueError(f"{layer.name!r} is not a layer of this series")
        if not layer.on_grid:
            raise ValueError(f"{layer.name!r} is not on the series' grid; resample it onto "
                             "the series first (fuse.resample)")
        if layer.kind in ("series", "volume"):
            if layer is self._volume:
                return
            self._volume = layer
        elif layer.kind == "labels":
            if layer is self._labels:
                return
            self._labels = layer
        elif layer.kind == "rgb":
            if layer is self._rgb:
                return
            self._rgb = layer
        else:
            raise ValueError(f"{layer.name!r} is a table: it is shown in the table dock")
        self.shown_changed.emit()

    def hide(self, layer: Layer) -> None:
        """Stop showing a label map or RGB overlay (a volume: back to the series)."""
        if layer is self._labels:
            self._labels = None
        elif layer is self._rgb:
            self._rgb = None
        elif layer is self._volume and layer.kind != "series":
            self._volume = self.series
        else:
            return
        self.shown_changed.emit()

    def is_shown(self, layer: Layer) -> bool:
        return layer in (self._volume, self._labels, self._rgb)


class LayerBinding:
    """Keeps a :class:`ViewerState` showing what a :class:`LayerList` chose."""

    def __init__(self, layers: LayerList, state) -> None:
        self.layers = layers
        self.state = state
        # what was applied last: a label map opened some other way stays until the list
        # chooses another one
        self._applied: dict[str, Any] = {"labels": None, "rgb": None}
        layers.shown_changed.connect(self.apply)

    def apply(self) -> None:
        state, layers = self.state, self.layers
        if state.volume is None or layers.series is None:
            self._applied = {"labels": None, "rgb": None}
            return
        shown = layers.shown_volume
        if shown is not None and shown.value is not state.volume:
            state.replace_volume(shown.value, window=shown.window)
        labels = layers.shown_labels.value if layers.shown_labels is not None else None
        if labels is not self._applied["labels"]:
            self._applied["labels"] = labels
            state.set_labels(labels)
        rgb = layers.shown_rgb.value if layers.shown_rgb is not None else None
        if rgb is not self._applied["rgb"]:
            self._applied["rgb"] = rgb
            state.set_overlay(rgb)


def _series_name(volume: Volume) -> str:
    meta = volume.metadata
    text = " ".join(str(v) for v in (meta.get("SeriesNumber") and f"#{meta['SeriesNumber']}",
                                     meta.get("SeriesDescription")) if v)
    return text or "Series"
