"""Filters: Gaussian, mean, kernel, bilateral and median smoothing, curvature diffusion.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "BORDER_MODES",
    "SCIPY_MODES",
    "BorderMode",
    "gaussian",
    "gaussian_kernel_1d",
    "odd_voxels",
    "smooth_bilateral",
    "smooth_curvature_diffusion",
    "smooth_mean",
    "smooth_median",
]

__getattr__, __dir__ = attach(__name__, {
    "BORDER_MODES": "medview.core.filters.smoothing",
    "BorderMode": "medview.core.filters.smoothing",
    "gaussian": "medview.core.filters.smoothing",
    "gaussian_kernel_1d": "medview.core.filters.smoothing",
    "odd_voxels": "medview.core.filters.denoise",
    "SCIPY_MODES": "medview.core.filters.smoothing",
    "smooth_bilateral": "medview.core.filters.smoothing",
    "smooth_curvature_diffusion": "medview.core.filters.denoise",
    "smooth_mean": "medview.core.filters.smoothing",
    "smooth_median": "medview.core.filters.denoise",
})
