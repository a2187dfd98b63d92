"""Fusion: average, weighted and maximum fusion, colour blending.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "COLORMAPS",
    "blend_colour",
    "colormap_lut",
    "fuse_average",
    "fuse_maximum",
    "fuse_weighted",
]

__getattr__, __dir__ = attach(__name__, {
    "blend_colour": "medview.core.fusion.blend",
    "colormap_lut": "medview.core.fusion.blend",
    "COLORMAPS": "medview.core.fusion.blend",
    "fuse_average": "medview.core.fusion.blend",
    "fuse_maximum": "medview.core.fusion.blend",
    "fuse_weighted": "medview.core.fusion.blend",
})
