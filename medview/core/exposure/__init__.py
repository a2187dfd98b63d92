"""Exposure: contrast stretch, histogram equalisation, CLAHE, unsharp masking, gamma.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "adjust_gamma",
    "equalize_adaptive",
    "equalize_histogram",
    "percentiles",
    "sharpen_unsharp",
    "stretch_contrast",
]

__getattr__, __dir__ = attach(__name__, {
    "adjust_gamma": "medview.core.exposure.enhance",
    "equalize_adaptive": "medview.core.exposure.enhance",
    "equalize_histogram": "medview.core.exposure.enhance",
    "percentiles": "medview.core.exposure.histogram",
    "sharpen_unsharp": "medview.core.exposure.enhance",
    "stretch_contrast": "medview.core.exposure.enhance",
})
