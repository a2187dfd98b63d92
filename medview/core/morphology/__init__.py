"""Morphology: opening, closing, hole filling and connected components of label maps.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "Components",
    "close_labels",
    "ellipsoid_footprint",
    "fill_holes",
    "keep_largest_component",
    "label_components",
    "open_labels",
]

__getattr__, __dir__ = attach(__name__, {
    "close_labels": "medview.core.morphology.cleanup",
    "Components": "medview.core.morphology.components",
    "ellipsoid_footprint": "medview.core.morphology.cleanup",
    "fill_holes": "medview.core.morphology.cleanup",
    "keep_largest_component": "medview.core.morphology.components",
    "label_components": "medview.core.morphology.components",
    "open_labels": "medview.core.morphology.cleanup",
})
