"""Preprocess benchmark cases: each step against the fastest reference here."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from benchmarks.step_cases import Case

_KERNEL = [[1, 2, 3, 2, 1], [2, 4, 6, 4, 2], [3, 6, 9, 6, 3], [2, 4, 6, 4, 2], [1, 2, 3, 2, 1]]


def _voxels(vol, size_mm):
    from medview.core.filters.smoothing import odd_voxels

    nx, ny, nz = (odd_voxels(size_mm, s) for s in vol.spacing)
    return nz, ny, nx


def _scipy_gaussian(vol, sigma_mm=2.0):
    sx, sy, sz = vol.spacing
    return ndi.gaussian_filter(vol.array, (sigma_mm / sz, sigma_mm / sy, sigma_mm / sx),
                               mode="reflect")


def _scipy_uniform(vol, size_mm=3.5):
    return ndi.uniform_filter(vol.array, _voxels(vol, size_mm), mode="reflect")


def _cv2_filter2d(vol):
    import cv2

    k = np.array(_KERNEL, np.float32)
    k /= k.sum()
    return np.stack([cv2.filter2D(s, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT)
                     for s in vol.array])


def _cv2_median_2d(vol):
    import cv2

    return np.stack([cv2.medianBlur(s, 3) for s in vol.array])


def _sitk_median_3d(vol):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(vol.array), [1, 1, 1]))


def _scipy_median_3d(vol):
    return ndi.median_filter(vol.array, 3, mode="nearest")


def _cv2_bilateral(vol, sigma_mm=1.0, sigma_intensity=40.0):
    import math

    import cv2

    sigma_px = sigma_mm / (0.5 * (vol.spacing[0] + vol.spacing[1]))
    d = 2 * math.ceil(2 * sigma_px) + 1
    return np.stack([cv2.bilateralFilter(s, d, sigma_intensity, sigma_px,
                                         borderType=cv2.BORDER_REFLECT) for s in vol.array])


def _sitk_curvature(vol, iterations=2):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(vol.array)
    img.SetSpacing(vol.spacing)
    f = sitk.CurvatureAnisotropicDiffusionImageFilter()
    f.SetNumberOfIterations(iterations)
    f.SetConductanceParameter(3.0)
    f.SetTimeStep(min(1.0, *vol.spacing) / 16)
    return sitk.GetArrayFromImage(f.Execute(img))


CASES = [
    Case("smooth.gaussian", {"sigma_mm": 2.0}, "scipy.ndimage.gaussian_filter",
         _scipy_gaussian),
    Case("smooth.mean", {"size_mm": 3.5}, "scipy.ndimage.uniform_filter 3x5x5",
         _scipy_uniform),
    Case("smooth.mean", {"kernel": _KERNEL}, "cv2.filter2D 5x5 per slice", _cv2_filter2d,
         note="user kernel"),
    Case("smooth.median", {"size_mm": 2.1, "in_plane_only": True},
         "cv2.medianBlur 3x3 per slice", _cv2_median_2d),
    Case("smooth.median", {"size_mm": 2.1}, "SimpleITK Median 3x3x3", _sitk_median_3d,
         note="3D"),
    Case("smooth.median", {"size_mm": 2.1}, "scipy.ndimage.median_filter 3x3x3",
         _scipy_median_3d, note="3D"),
    Case("smooth.bilateral", {"sigma_spatial_mm": 1.0, "sigma_intensity": 40.0},
         "cv2.bilateralFilter per slice", _cv2_bilateral),
    Case("smooth.curvature_diffusion", {"iterations": 2},
         "SimpleITK CurvatureAnisotropicDiffusion", _sitk_curvature),
]
