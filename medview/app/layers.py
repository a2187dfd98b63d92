"""What the viewer can show of a series and the chain results made from it (no Qt).

A :class:`LayerList` holds the open series and every result of the chain runs on it:
derived volumes (shown *instead of* the series, same crosshair), label maps (the coloured
overlay, one at a time), fused RGB volumes (blended over the views with an opacity) and
tables (shown in the table dock). It is the one record of what the views show: the
:class:`~medview.app.state.ViewerState` owns one (``state.layers``) and reads it.

Events: ``layers_changed()`` (added, removed, reset), ``events.volume``, ``events.labels``,
``events.rgb`` (which volume, label map or RGB overlay is shown).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal, evented

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["KINDS", "Layer", "LayerList", "kind_of"]

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


@evented(equality_operators={"volume": operator.is_, "labels": operator.is_,
                              "rgb": operator.is_})
@dataclass(eq=False)
class LayerList:
    """The series and its derived layers, and which of them are shown: the one record of
    what the views show (the viewer state reads it, never keeps a copy).

    ``volume`` is the series or derived volume the views show, ``labels`` the label-map
    overlay, ``rgb`` the RGB volume blended over the views; each is announced by
    ``events.<name>(new, old)`` when it changes. ``labels`` and ``rgb`` may be a layer not
    in :attr:`layers`: a label map opened from a file or painted from scratch is shown
    without being a chain result. ``layers_changed()`` announces layers added, removed or a
    new series.
    """

    volume: Layer | None = None
    labels: Layer | None = None
    rgb: Layer | None = None
    layers: list[Layer] = field(default_factory=list)
    layers_changed = Signal()

    # -- contents ----------------------------------------------------------------------
    @property
    def series(self) -> Layer | None:
        return self.layers[0] if self.layers and self.layers[0].kind == "series" else None

    def set_series(self, volume: Volume | None) -> None:
        """Start again from ``volume`` (a newly opened series): every derived layer goes."""
        self.layers = [] if volume is None else [Layer(_series_name(volume), "series", volume)]
        self.labels = self.rgb = None
        self.volume = self.series
        self.layers_changed.emit()

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
        if layer is self.volume:
            self.volume = self.series
        if layer is self.labels:
            self.labels = None
        if layer is self.rgb:
            self.rgb = None
        self.layers_changed.emit()

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
        return self.volume

    @property
    def shown_labels(self) -> Layer | None:
        return self.labels

    @property
    def shown_rgb(self) -> Layer | None:
        return self.rgb

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
        if layer.kind == "table":
            raise ValueError(f"{layer.name!r} is a table: it is shown in the table dock")
        setattr(self, _SLOT[layer.kind], layer)

    def show_value(self, kind: str, value: Any, name: str) -> None:
        """Show label map or RGB volume ``value`` (``kind`` "labels" or "rgb") as ``name``:
        the listed layer holding it if there is one, else as a layer outside the list
        (opened from a file, painted from scratch); None hides that kind."""
        current = getattr(self, kind)
        if value is None or (current is not None and current.value is value):
            if value is None:
                setattr(self, kind, None)
            return
        listed = next((x for x in self.layers if x.kind == kind and x.value is value), None)
        setattr(self, kind, listed or Layer(name, kind, value))

    def hide(self, layer: Layer) -> None:
        """Stop showing a label map or RGB overlay (a volume: back to the series)."""
        if layer is self.labels:
            self.labels = None
        elif layer is self.rgb:
            self.rgb = None
        elif layer is self.volume and layer.kind != "series":
            self.volume = self.series

    def is_shown(self, layer: Layer) -> bool:
        return layer in (self.volume, self.labels, self.rgb)


#: which field of :class:`LayerList` shows a layer of each kind
_SLOT = {"series": "volume", "volume": "volume", "labels": "labels", "rgb": "rgb"}


def _series_name(volume: Volume) -> str:
    meta = volume.metadata
    text = " ".join(str(v) for v in (meta.get("SeriesNumber") and f"#{meta['SeriesNumber']}",
                                     meta.get("SeriesDescription")) if v)
    return text or "Series"
