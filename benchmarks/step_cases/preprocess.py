"""Preprocess benchmark cases."""

from __future__ import annotations

import scipy.ndimage as ndi

from benchmarks.step_cases import Case


def _scipy_gaussian(vol, sigma_mm=2.0):
    sx, sy, sz = vol.spacing
    return ndi.gaussian_filter(vol.array, (sigma_mm / sz, sigma_mm / sy, sigma_mm / sx),
                               mode="reflect")


CASES = [
    Case("smooth.gaussian", {"sigma_mm": 2.0}, "scipy.ndimage.gaussian_filter",
         _scipy_gaussian),
]
