"""Lookup tables for grey volumes (grey, hot, inferno, viridis) and label maps, without Qt."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from medview.core.labelmap import Segment

__all__ = ["colormap_lut", "fusion_lut", "label_lut", "label_rgba"]

# A few control points of matplotlib's perceptually uniform maps (BSD-licensed data,
# sampled at 0, 1/8, … 1); interpolated linearly to 256 entries.
_CONTROL = {
    "inferno": [(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
                (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164)],
    "viridis": [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
                (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)],
}


def colormap_lut(name: str, *, inverted: bool = False) -> np.ndarray | None:
    """A ``(256, 3)`` uint8 table from the window's low end to its high end (``(256,)``
    for inverted grey).

    ``None`` for plain grey (the image item's own mapping is fastest). ``hot`` is the
    black–red–yellow–white "hot iron" PET readers know.
    """
    t = np.linspace(0.0, 1.0, 256)
    if name == "grey":
        if not inverted:
            return None
        return np.arange(255, -1, -1, dtype=np.uint8)  # 1-D: grey output, fastest
    if name == "hot":
        rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1),
                        np.clip(3 * t - 2, 0, 1)], axis=1)
    elif name in _CONTROL:
        pts = np.asarray(_CONTROL[name], dtype=float) / 255.0
        x = np.linspace(0.0, 1.0, len(pts))
        rgb = np.stack([np.interp(t, x, pts[:, c]) for c in range(3)], axis=1)
    else:
        raise ValueError(f"name: unknown colour map {name!r}")
    lut = np.round(rgb * 255.0).astype(np.uint8)
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
    rgb = colormap_lut(name)
    if rgb is None:  # grey
        rgb = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    lut = np.empty((256, 4), dtype=np.uint8)
    lut[:, :3] = rgb
    lut[:, 3] = 255
    lut[0, 3] = 0
    return lut
