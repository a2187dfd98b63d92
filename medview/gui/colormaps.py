"""Lookup tables for grey volumes (grey, hot, inferno, viridis) and label maps, without Qt."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medview.core.fusion.blend import colormap_lut as core_colormap_lut
from medview.core.labelmap import Segment

__all__ = ["colormap_lut", "fusion_lut", "label_lut", "label_rgba"]


def colormap_lut(name: str, *, inverted: bool = False) -> np.ndarray | None:
    """A ``(256, 3)`` uint8 table from the window's low end to its high end (``(256,)``
    for inverted grey).

    ``None`` for plain grey (the image item's own mapping is fastest). The tables are
    :func:`medview.core.fusion.blend.colormap_lut`'s, so what the views show is what a fused
    export (Secondary Capture) writes.
    """
    if name == "grey":
        # 1-D: grey output, fastest
        return np.arange(255, -1, -1, dtype=np.uint8) if inverted else None
    lut = core_colormap_lut(name)
    return lut[::-1].copy() if inverted else lut


def label_lut(segments: Iterable[Segment], opacity: float, n: int | None = None) -> np.ndarray:
    """An ``(n, 4)`` RGBA uint8 table: label 0 transparent, each segment in its colour.

    Labels without a segment entry get a grey so they are still seen.
    """
    segments = list(segments)
    top = max([s.number for s in segments] + [0])
    n = max(int(n or 0), top + 1, 2)
    lut = np.zeros((n, 4), dtype=np.uint8)
    alpha = int(round(min(max(opacity, 0.0), 1.0) * 255))
    lut[1:] = (160, 160, 160, alpha)
    for s in segments:
        if 0 < s.number < n:
            lut[s.number] = (*s.color, alpha)
    return lut


def label_rgba(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``labels`` ``[row, col]`` → RGBA ``[row, col, 4]`` through ``lut`` (labels beyond the
    table take its last entry)."""
    idx = np.clip(np.asarray(labels), 0, len(lut) - 1)
    return lut[idx]


def fusion_lut(name: str) -> np.ndarray:
    """A ``(256, 4)`` RGBA table for a fused series: the colour map, with values at or below
    the window's low end transparent (so the base image shows where there is no uptake)."""
    rgb = core_colormap_lut(name)
    lut = np.empty((256, 4), dtype=np.uint8)
    lut[:, :3] = rgb
    lut[:, 3] = 255
    lut[0, 3] = 0
    return lut
