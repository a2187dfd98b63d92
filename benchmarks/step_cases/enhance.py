"""Enhance benchmark cases: each step against the fastest reference here."""

from __future__ import annotations

import numpy as np

from benchmarks.step_cases import Case


def _stretch(vol):
    from skimage import exposure

    lo, hi = np.percentile(vol.array, [1, 99])
    return exposure.rescale_intensity(vol.array, in_range=(lo, hi), out_range=(0.0, 1.0))


def _equalize(vol):
    from skimage import exposure

    return exposure.equalize_hist(vol.array, nbins=256)


def _cv2_clahe(vol):
    import cv2

    a = vol.array
    lo, hi = float(a.min()), float(a.max())
    clahe = cv2.createCLAHE(clipLimit=2.56, tileGridSize=(8, 8))
    # the step's contract: float32 in [0, 1]
    return np.stack([clahe.apply(np.rint((s - lo) * (255.0 / (hi - lo))).astype(np.uint8))
                     .astype(np.float32) / np.float32(255.0) for s in a])


def _unsharp(vol, sigma_mm=1.0):
    from skimage import filters

    sigma = [sigma_mm / s for s in vol.spacing[::-1]]
    return filters.unsharp_mask(vol.array, radius=sigma, amount=1.0, preserve_range=True)


def _gamma(vol):
    from skimage import exposure

    a = vol.array
    lo, hi = a.min(), a.max()
    return exposure.adjust_gamma((a - lo) / (hi - lo), 0.5)


CASES = [
    Case("enhance.stretch", {}, "np.percentile + skimage rescale_intensity", _stretch),
    Case("enhance.equalize", {}, "skimage equalize_hist", _equalize),
    Case("enhance.clahe", {}, "cv2 CLAHE (uint8) per slice, to float", _cv2_clahe),
    Case("enhance.unsharp", {"sigma_mm": 1.0}, "skimage unsharp_mask", _unsharp),
    Case("enhance.gamma", {"gamma": 0.5}, "NumPy rescale + skimage adjust_gamma", _gamma),
]
