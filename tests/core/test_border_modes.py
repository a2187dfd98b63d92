"""The 3D Gaussian against scipy.ndimage.gaussian_filter on an anisotropic real volume, and
the border modes of the Gaussian, mean, bilateral and unsharp filters against SciPy and
OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi

from medview.core.exposure.enhance import sharpen_unsharp
from medview.core.filters.smoothing import (
    BORDER_MODES,
    SCIPY_MODES,
    gaussian,
    smooth_bilateral,
    smooth_mean,
)
from medview.core.volume import Volume

HEAD_CROP = (slice(18, 28), slice(150, 270), slice(160, 340))  # 10 slices of the head CT


@pytest.fixture(scope="module")
def skewed(head) -> Volume:
    """The real head CT with every 3rd column kept: voxels of 1.44 × 0.48 × 2.5 mm, so that
    the x, y and z kernels all differ (the data holds no scanner with rectangular pixels)."""
    sx, sy, sz = head.spacing
    arr = np.ascontiguousarray(head.array[:, :, ::3])
    return Volume(arr, (3 * sx, sy, sz), head.origin, head.direction)


def _scipy_gaussian(vol: Volume, sigma_mm: float, mode: str) -> np.ndarray:
    sx, sy, sz = vol.spacing
    return ndi.gaussian_filter(vol.array.astype(np.float64),
                               sigma=(sigma_mm / sz, sigma_mm / sy, sigma_mm / sx),
                               mode=mode, truncate=4.0)


@pytest.mark.parametrize("border", BORDER_MODES)
def test_3d_gaussian_equals_scipy_on_an_anisotropic_real_volume(skewed, border):
    sx, sy, sz = skewed.spacing
    assert sx > 2.5 * sy and sz > 1.5 * sx  # three different kernels
    mine = gaussian(skewed, sigma_mm=1.5, border=border).array
    ref = _scipy_gaussian(skewed, 1.5, SCIPY_MODES[border])
    np.testing.assert_allclose(mine, ref, atol=2e-3, rtol=0)
    # the test can tell the axes apart: the x and y kernels swapped give another volume
    swapped = Volume(skewed.array, (sy, sx, sz))
    assert np.abs(_scipy_gaussian(swapped, 1.5, SCIPY_MODES[border]) - ref).max() > 50


def test_gaussian_in_plane_only_leaves_the_slices_apart(skewed):
    sx, sy, _ = skewed.spacing
    mine = gaussian(skewed, sigma_mm=2.0, in_plane_only=True, border="reflect_101").array
    ref = ndi.gaussian_filter(skewed.array.astype(np.float64), sigma=(0, 2.0 / sy, 2.0 / sx),
                              mode="mirror", truncate=4.0)
    np.testing.assert_allclose(mine, ref, atol=2e-3, rtol=0)


@pytest.mark.parametrize("border", BORDER_MODES)
def test_mean_box_equals_scipy_uniform_filter_per_border(skewed, border):
    mine = smooth_mean(skewed, size_mm=3.0, border=border).array
    sx, sy, sz = skewed.spacing
    size = tuple(max(1, int(2 * np.floor(3.0 / s / 2) + 1)) for s in (sz, sy, sx))
    ref = ndi.uniform_filter(skewed.array.astype(np.float64), size=size,
                             mode=SCIPY_MODES[border])
    np.testing.assert_allclose(mine, ref, atol=2e-3, rtol=0)


@pytest.mark.parametrize("border", BORDER_MODES)
def test_user_kernel_border_equals_cv2_filter2d(skewed, border):
    flags = {"reflect": cv2.BORDER_REFLECT, "reflect_101": cv2.BORDER_REFLECT_101,
             "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
    kernel = [[1, 2, 1], [2, 4, 2], [1, 2, 1], [0, 1, 0]]  # 4 × 3: an off-centre reach too
    mine = smooth_mean(skewed, kernel=kernel, border=border).array
    k = np.array(kernel, np.float32) / 17
    for z in (0, skewed.shape[0] - 1):
        ref = cv2.filter2D(skewed.array[z].astype(np.float32), -1, k, borderType=flags[border])
        np.testing.assert_array_equal(mine[z], ref)


def test_bilateral_border_changes_only_the_rim(skewed):
    a = smooth_bilateral(skewed, sigma_spatial_mm=1.0, sigma_intensity=40.0).array
    b = smooth_bilateral(skewed, sigma_spatial_mm=1.0, sigma_intensity=40.0,
                         border="constant").array
    diff = np.abs(a - b)
    assert diff[:, 6:-6, 6:-6].max() < 1e-2  # the disc reaches 2σ: a few pixels
    assert diff.max() > 1  # zeros beyond the edge pull the rim's values


@pytest.mark.parametrize("border", BORDER_MODES)
def test_unsharp_mask_uses_the_border_of_its_gaussian(skewed, border):
    mine = sharpen_unsharp(skewed, sigma_mm=1.5, amount=0.8, border=border).array
    x = skewed.array.astype(np.float64)
    ref = x + 0.8 * (x - _scipy_gaussian(skewed, 1.5, SCIPY_MODES[border]))
    np.testing.assert_allclose(mine, ref, atol=5e-3, rtol=0)


def test_an_unknown_border_is_refused_by_name(skewed):
    with pytest.raises(ValueError, match=r"border: 'wrap' is not one of reflect, reflect_101"):
        gaussian(skewed, sigma_mm=1.0, border="wrap")
