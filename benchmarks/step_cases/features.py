"""Features benchmark cases: each against the fastest way to get the same result with the
reference libraries (as a user would write it, per slice where the library is 2D)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from benchmarks.step_cases import Case


def _numpy_statistics(vol, bins=256, qs=(1, 5, 25, 50, 75, 95, 99)):
    import scipy.stats as st

    a = vol.array
    hist, _ = np.histogram(a, bins)
    return {"mean": a.mean(dtype=np.float64), "var": a.var(dtype=np.float64),
            "std": a.std(dtype=np.float64), "skew": st.skew(a, axis=None),
            "kurtosis": st.kurtosis(a, axis=None), "min": a.min(), "max": a.max(),
            "percentiles": np.percentile(a, qs), "entropy": st.entropy(hist, base=2)}


def _sitk_gradient_magnitude(vol):
    # SimpleITK's 3D gradient magnitude (central differences, spacing-aware): the fastest 3D
    # gradient magnitude here; its Sobel filter takes ~35 s and scipy's 3 Sobel passes ~13 s
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.GradientMagnitude(vol.to_sitk()))


def _cv2_sobel_2d(vol):
    import cv2

    out = np.empty(vol.shape, np.float32)
    for k, img in enumerate(vol.array):
        gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
        gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
        out[k] = cv2.magnitude(gx, gy)
    return out


def _cv2_canny(vol, sigma_mm=1.0, low=20.0, high=50.0):
    # cv2.Canny needs 8-bit images: scale each slice to 0..255, blur, detect with the same
    # thresholds in HU/mm converted to that slice's 8-bit scale
    import cv2

    s = vol.spacing[0]
    out = np.empty(vol.shape, np.uint8)
    for k, img in enumerate(vol.array):
        lo, hi = cv2.minMaxLoc(img)[:2]
        per_mm = 8 * s * 255 / max(hi - lo, 1e-6)
        u8 = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        out[k] = cv2.Canny(cv2.GaussianBlur(u8, (0, 0), sigma_mm / s), low * per_mm,
                           high * per_mm, L2gradient=True)
    return out


def _cv2_gabor_bank(vol, f_mm=0.25, n_freq=2, n_orient=4):
    # the same bank (skimage's kernel sizes and envelope) as cv2.getGaborKernel pairs
    # (even and odd phase) applied with cv2.filter2D; magnitude; maximum over the bank
    import cv2
    from skimage.filters import gabor_kernel

    s = vol.spacing[0]
    kernels = []
    for i in range(n_freq):
        f = f_mm / 2**i * s
        for j in range(n_orient):
            theta = j * math.pi / n_orient
            size = gabor_kernel(f, theta).shape[::-1]
            sigma = 1 / math.pi * math.sqrt(math.log(2) / 2) * 3 / f
            kernels.append([cv2.getGaborKernel(size, sigma, theta, 1 / f, 1.0, psi,
                                               cv2.CV_32F) for psi in (0, math.pi / 2)])
    out = np.empty(vol.shape, np.float32)
    for k, img in enumerate(vol.array):
        best = None
        for even, odd in kernels:
            mag = cv2.magnitude(cv2.filter2D(img, cv2.CV_32F, even,
                                             borderType=cv2.BORDER_REFLECT),
                                cv2.filter2D(img, cv2.CV_32F, odd,
                                             borderType=cv2.BORDER_REFLECT))
            best = mag if best is None else np.maximum(best, mag)
        out[k] = best
    return out


def _skimage_lbp(vol, points=8, radius_mm=1.0):
    from skimage.feature import local_binary_pattern

    radius = radius_mm / vol.spacing[0]
    out = np.empty(vol.shape, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about float images
        for k, img in enumerate(vol.array):
            out[k] = local_binary_pattern(img, points, radius, "uniform")
    return np.bincount(out.ravel(), minlength=points + 2)


def _skimage_glcm(vol, levels=32):
    from skimage.feature import graycomatrix, graycoprops

    a = vol.array
    lo, hi = float(a.min()), float(a.max())
    total = np.zeros((levels, levels, 1, 4))
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    for img in a:
        q = np.clip((img - lo) * (levels / (hi - lo)), 0, levels - 1).astype(np.uint8)
        total += graycomatrix(q, [1], angles, levels, symmetric=True)
    total /= total.sum(axis=(0, 1), keepdims=True)
    return {m: graycoprops(total, m).mean() for m in
            ("contrast", "homogeneity", "energy", "correlation")}


CASES = [
    Case("features.statistics", {}, "numpy + scipy.stats", _numpy_statistics),
    Case("features.sobel", {"mode": "3d"}, "SimpleITK GradientMagnitude 3D",
         _sitk_gradient_magnitude),
    Case("features.sobel", {"mode": "2d"}, "cv2.Sobel per slice", _cv2_sobel_2d,
         note="peak memory is measured for the first features.sobel case only"),
    Case("features.canny", {"sigma_mm": 1.0, "low_threshold": 20.0, "high_threshold": 50.0},
         "cv2.Canny per uint8 slice", _cv2_canny),
    Case("features.gabor", {}, "cv2.getGaborKernel + filter2D", _cv2_gabor_bank),
    Case("features.lbp", {}, "skimage local_binary_pattern", _skimage_lbp),
    Case("features.glcm", {"levels": 32}, "skimage graycomatrix per slice", _skimage_glcm),
]
