"""What File ▸ Export offers now: the label map, the scribbles, the fused image, chain
results, the series, the measurements and the view, from what is shown (no Qt)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from medview.app.exporting import Exportable

__all__ = ["list_exportables"]


def list_exportables(state, layers, providers: Iterable[Callable[[], list]] = (),
                     blend: Callable | None = None) -> list[Exportable]:
    """The items the Export dialog lists, in its order.

    Parameters
    ----------
    state : ViewerState
        What is shown (volume, labels, scribbles, fusion, measurements).
    layers : LayerList
        The layers (the series as loaded, chain results).
    providers : iterable of callable
        Each returns more Exportables (e.g. a panel's results).
    blend : callable, optional
        Makes the fused image as an RGB volume (called only when it is exported).
    """
    from medview.app.measurements import measurements_table

    vol = state.volume
    if vol is None:
        return []
    # DICOM exports reference the series as loaded (also while a derived layer is shown)
    series = layers.series.value if layers.series is not None else vol
    source = series if series.metadata.get("source_files") else None
    items = []
    if state.labels is not None:
        items.append(Exportable("Label map", "labels", state.labels, source))
    if state.scribbles is not None:
        items.append(Exportable("Scribbles", "labels", state.scribbles, source))
    if state.fusion is not None and blend is not None:
        items.append(Exportable("Fused image", "rgb", blend, source))
    for provider in providers:
        items.extend(provider())
    for layer in layers.layers:
        if layer.kind in ("volume", "labels", "rgb", "table"):
            items.append(Exportable(f"Result: {layer.name}", layer.kind, layer.value, source))
    items.append(Exportable("Series", "volume", series, source))
    if state.measurements:
        geoms = {name: state.geometry(name) for name in state.planes}
        items.append(Exportable("Measurements", "table", lambda: measurements_table(
            vol, geoms, state.measurements)))
    items.append(Exportable("View", "view", None))
    return items
