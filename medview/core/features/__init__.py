"""Features: edges (Sobel, Canny), texture (Gabor, LBP, GLCM) and gray-level statistics.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "GLCM_MEASURES",
    "canny_edges",
    "gabor_bank",
    "gabor_kernel_mm",
    "glcm_texture",
    "gray_statistics",
    "lbp_code_count",
    "local_binary_pattern",
    "parse_percentiles",
    "sobel_magnitude",
]

__getattr__, __dir__ = attach(__name__, {
    "canny_edges": "medview.core.features.edges",
    "gabor_bank": "medview.core.features.texture",
    "gabor_kernel_mm": "medview.core.features.texture",
    "GLCM_MEASURES": "medview.core.features.glcm",
    "glcm_texture": "medview.core.features.glcm",
    "gray_statistics": "medview.core.features.statistics",
    "lbp_code_count": "medview.core.features.texture",
    "local_binary_pattern": "medview.core.features.texture",
    "parse_percentiles": "medview.core.features.statistics",
    "sobel_magnitude": "medview.core.features.edges",
})
