"""Smoothing steps (mean/kernel, median, bilateral, curvature diffusion) against SciPy,
SimpleITK, OpenCV and the textbook formulas on real CT/MR, properties, and one contract test
per registered Preprocess step."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from step_checks import check_step_contract

from medview.core.filters.smoothing import (
    gaussian,
    odd_voxels,
    smooth_bilateral,
    smooth_curvature_diffusion,
    smooth_mean,
    smooth_median,
)
from medview.core.progress import Cancelled, Progress
from medview.core.volume import Volume


def box(vol: Volume, size_mm: float, in_plane_only: bool = False) -> tuple[int, int, int]:
    """(nz, ny, nx) voxels of a box of size_mm, as the steps document it."""
    nx, ny, nz = (odd_voxels(size_mm, s) for s in vol.spacing)
    return (1 if in_plane_only else nz), ny, nx


CT_SLICE_CROP = (slice(0, 1), slice(160, 288), slice(150, 310))  # central crop
LIVER_CROP = (slice(0, 3), slice(180, 300), slice(150, 310))  # a 3×3×3 box in 2.5 mm
HEAD_CROP = (slice(20, 26), slice(150, 270), slice(160, 320))  # a sub-volume
MR_CROP = (slice(15, 19), slice(40, 200), slice(40, 220))  # 4 slices


# -- mean (box) and user kernels ---------------------------------------------------------
def test_odd_voxels_is_the_nearest_odd_count():
    assert [odd_voxels(s, 0.7) for s in (0.0, 0.5, 1.3, 2.1, 3.0, 3.5, 5.0)] == \
        [1, 1, 1, 3, 5, 5, 7]
    assert odd_voxels(3.0, 1.0) == 3 and odd_voxels(2.0, 1.0) == 3 and odd_voxels(6.0, 2.5) == 3


@pytest.mark.parametrize(("size_mm", "in_plane_only"),
                         [(1.0, False), (3.0, False), (6.0, False), (6.0, True), (0.0, False)])
def test_mean_equals_scipy_uniform_filter_on_real_ct(head, size_mm, in_plane_only):
    out = smooth_mean(head, size_mm=size_mm, in_plane_only=in_plane_only)
    size = box(head, size_mm, in_plane_only)
    ref = ndi.uniform_filter(head.array.astype(np.float64), size, mode="reflect")
    assert out.array.dtype == np.float32 and out.same_grid(head)
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-3)  # seen: 5e-5 HU
    if size_mm == 6.0 and not in_plane_only:
        assert size == (3, 13, 13)  # 2.5 mm slices: 3 across, 0.48 mm pixels: 13 in-plane


def test_mean_3d_box_on_near_isotropic_liver(liver):
    out = smooth_mean(liver, size_mm=2.5)
    assert box(liver, 2.5) == (3, 3, 3)
    ref = ndi.uniform_filter(liver.array.astype(np.float64), 3, mode="reflect")
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-3)


@pytest.mark.parametrize("normalize", [False, True])
def test_user_kernel_equals_scipy_correlate(ct_slice, mr, normalize):
    # asymmetric and even-sized: catches flipping (convolution) and off-by-one centres
    kernel = [[1, 2, 0, -1], [0, 3, 1, 1], [2, 2, 2, 1]]
    w = np.array(kernel, np.float64)
    if normalize:
        w = w / w.sum()
    for vol in (ct_slice, mr):
        out = smooth_mean(vol, kernel=kernel, normalize=normalize, size_mm=9.0,
                          in_plane_only=False)  # size and mode are ignored with a kernel
        ref = ndi.correlate(vol.array.astype(np.float64), w[np.newaxis], mode="reflect")
        scale = np.abs(ref).max()
        np.testing.assert_allclose(out.array, ref, rtol=0, atol=2e-6 * scale)


def test_box_and_normalised_kernels_preserve_the_mean_away_from_borders():
    """An impulse far from the borders keeps its total: the mean is preserved."""
    arr = np.zeros((9, 40, 40), np.float32)
    arr[4, 20, 20] = 1000.0
    vol = Volume(arr, (0.7, 0.7, 1.0))
    for out in (smooth_mean(vol, size_mm=3.5), smooth_mean(vol, size_mm=3.5, in_plane_only=True),
                smooth_mean(vol, kernel=[[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
                gaussian(vol, sigma_mm=1.5)):
        assert out.array.sum(dtype=np.float64) == pytest.approx(1000.0, rel=1e-5)
        assert out.array.max() < 1000.0
    raw = smooth_mean(vol, kernel=[[1, 2, 1], [2, 4, 2], [1, 2, 1]], normalize=False)
    assert raw.array.sum(dtype=np.float64) == pytest.approx(16000.0, rel=1e-5)


def test_real_ct_mean_is_preserved_by_smoothing(ct_slice):
    """With reflected borders the mean moves by a tiny fraction of the spread only."""
    x = ct_slice.array.astype(np.float64)
    for out in (smooth_mean(ct_slice, size_mm=3.0), gaussian(ct_slice, sigma_mm=1.0)):
        assert abs(out.array.mean(dtype=np.float64) - x.mean()) < 1e-3 * x.std()
        assert out.array.std() < x.std()


def test_kernel_validation_names_the_argument(ct_slice):
    with pytest.raises(ValueError, match=r"kernel: .*sum to 0"):
        smooth_mean(ct_slice, kernel=[[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
    laplace = smooth_mean(ct_slice, kernel=[[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
                          normalize=False)
    assert abs(laplace.array.mean()) < 5.0
    with pytest.raises(ValueError, match="kernel: expected a rectangular"):
        smooth_mean(ct_slice, kernel=[[1, 2], [3]])
    with pytest.raises(ValueError, match="kernel: contains NaN"):
        smooth_mean(ct_slice, kernel=[[1.0, float("nan")]])
    with pytest.raises(ValueError, match="kernel: at most 63"):
        smooth_mean(ct_slice, kernel=np.ones((1, 64)).tolist())
    with pytest.raises(ValueError, match="size_mm"):
        smooth_mean(ct_slice, size_mm=-1.0)


# -- median -------------------------------------------------------------------------------
@pytest.mark.parametrize(("size_mm", "in_plane_only", "expect"), [
    (1.0, True, (1, 3, 3)),  # OpenCV 3×3 (int16 through float32)
    (2.0, True, (1, 5, 5)),  # OpenCV 5×5
    (3.5, True, (1, 7, 7)),  # SimpleITK
    (6.0, False, (3, 13, 13)),  # SimpleITK, across slices
])
def test_median_equals_scipy_on_real_ct(head, size_mm, in_plane_only, expect):
    size = box(head, size_mm, in_plane_only)
    assert size == expect
    out = smooth_median(head, size_mm=size_mm, in_plane_only=in_plane_only)
    ref = ndi.median_filter(head.array, size, mode="nearest")
    assert out.array.dtype == head.array.dtype and out.same_grid(head)
    np.testing.assert_array_equal(out.array, ref)


def test_median_3x3x3_equals_scipy_and_simpleitk_on_real_ct_and_mr(liver, mr):
    import SimpleITK as sitk

    out = smooth_median(liver, size_mm=2.5)
    np.testing.assert_array_equal(out.array, ndi.median_filter(liver.array, 3, mode="nearest"))
    ref = sitk.GetArrayFromImage(sitk.Median(sitk.GetImageFromArray(liver.array), [1, 1, 1]))
    np.testing.assert_array_equal(out.array, ref)
    # uint16 MR, float32 and 3 × 3 × 3 with 1 mm voxels, tall enough for several row bands
    iso = Volume(np.ascontiguousarray(mr.array[:, :150]), (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(smooth_median(iso, size_mm=3.0).array,
                                  ndi.median_filter(iso.array, 3, mode="nearest"))
    f32 = Volume(iso.array.astype(np.float32) / 7, iso.spacing)
    np.testing.assert_array_equal(smooth_median(f32, size_mm=3.0).array,
                                  ndi.median_filter(f32.array, 3, mode="nearest"))
    np.testing.assert_array_equal(smooth_median(f32, size_mm=5.0, in_plane_only=True).array,
                                  ndi.median_filter(f32.array, (1, 5, 5), mode="nearest"))


def test_median_removes_specks_and_keeps_edges():
    rng = np.random.default_rng(3)
    arr = np.zeros((5, 40, 40), np.int16)
    arr[:, :, 20:] = 1000
    clean = arr.copy()
    specks = rng.random(arr.shape) < 0.02
    arr[specks] = 3000
    for in_plane_only in (False, True):
        out = smooth_median(Volume(arr, (1.0, 1.0, 1.0)), size_mm=3.0,
                            in_plane_only=in_plane_only)
        assert (out.array == clean).mean() > 0.99
        assert out.array.dtype == np.int16


# -- bilateral ----------------------------------------------------------------------------
def bilateral_by_definition(img: np.ndarray, sigma_px: float, sigma_i: float) -> np.ndarray:
    """The textbook bilateral filter over a disc of radius ceil(2σ), symmetric borders."""
    r = int(np.ceil(2 * sigma_px))
    p = np.pad(img.astype(np.float64), r, mode="symmetric")
    num = np.zeros(img.shape)
    den = np.zeros(img.shape)
    h, w = img.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > r * r:
                continue
            v = p[r + dy:r + dy + h, r + dx:r + dx + w]
            wgt = np.exp(-(dy * dy + dx * dx) / (2 * sigma_px**2)
                         - (v - img) ** 2 / (2 * sigma_i**2))
            num += wgt * v
            den += wgt
    return num / den


@pytest.mark.parametrize(("sigma_mm", "sigma_i"), [(1.0, 40.0), (2.0, 100.0)])
def test_bilateral_equals_the_definition_on_real_ct(ct_slice, sigma_mm, sigma_i):
    # scikit-image's denoise_bilateral is not used as the reference: with the same window it
    # differs from the textbook formula by up to ~100 HU here (its spatial weights are not
    # centred), while OpenCV agrees with it to 1e-3 HU
    out = smooth_bilateral(ct_slice, sigma_spatial_mm=sigma_mm, sigma_intensity=sigma_i)
    ref = bilateral_by_definition(ct_slice.array[0].astype(np.float64),
                                  sigma_mm / ct_slice.spacing[0], sigma_i)
    assert out.array.dtype == np.float32 and out.same_grid(ct_slice)
    np.testing.assert_allclose(out.array[0], ref, rtol=0, atol=0.02)


def test_bilateral_keeps_edges_that_gaussian_blurs():
    rng = np.random.default_rng(5)
    arr = np.where(np.arange(64) < 32, 0.0, 400.0)[np.newaxis, np.newaxis, :].repeat(64, 1)
    arr = (arr + rng.normal(0, 10, arr.shape)).astype(np.float32)
    vol = Volume(arr, (0.5, 0.5, 3.0))
    bil = smooth_bilateral(vol, sigma_spatial_mm=1.5, sigma_intensity=40.0).array[0]
    gau = gaussian(vol, sigma_mm=1.5, in_plane_only=True).array[0]
    step = lambda a: a[:, 33].mean() - a[:, 30].mean()  # noqa: E731
    assert step(bil) > 0.97 * 400 > step(gau) + 20
    assert bil[:, :28].std() < 0.6 * arr[0, :, :28].std()  # and the noise is reduced


# -- curvature anisotropic diffusion ------------------------------------------------------
def sitk_curvature(arr: np.ndarray, spacing, iterations: int, conductance: float) -> np.ndarray:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing(tuple(spacing))
    f = sitk.CurvatureAnisotropicDiffusionImageFilter()
    f.SetNumberOfIterations(iterations)
    f.SetConductanceParameter(conductance)
    f.SetTimeStep(min(1.0, *spacing) / 2 ** (len(spacing) + 1))
    return sitk.GetArrayFromImage(f.Execute(img))


def test_curvature_diffusion_equals_simpleitk_3d_on_real_ct(head):
    out = smooth_curvature_diffusion(head, iterations=3, conductance=2.0)
    ref = sitk_curvature(head.array, head.spacing, 3, 2.0)
    assert out.array.dtype == np.float32 and out.same_grid(head)
    assert np.abs(ref - head.array).max() > 50  # the reference did change the image
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=0.01)  # seen: 1e-4 HU


def test_curvature_diffusion_2d_equals_simpleitk_per_slice(ct_slice, mr):
    for vol in (ct_slice, mr):
        out = smooth_curvature_diffusion(vol, iterations=4, conductance=3.0,
                                         in_plane_only=True)
        for k in range(vol.shape[0]):
            ref = sitk_curvature(vol.array[k], vol.spacing[:2], 4, 3.0)
            np.testing.assert_allclose(out.array[k], ref, rtol=1e-5, atol=1e-3)


def test_curvature_diffusion_smooths_noise_and_keeps_a_constant():
    const = Volume(np.full((3, 20, 20), 7.0, np.float32), (1.0, 1.0, 2.0))
    np.testing.assert_array_equal(smooth_curvature_diffusion(const).array, const.array)
    rng = np.random.default_rng(1)
    arr = np.where(np.arange(48) < 24, 0.0, 500.0)[np.newaxis, np.newaxis, :].repeat(48, 1)
    arr = (arr.repeat(4, 0) + rng.normal(0, 20, (4, 48, 48))).astype(np.float32)
    out = smooth_curvature_diffusion(Volume(arr, (1.0, 1.0, 1.0)), iterations=10).array
    assert out[:, :, :20].std() < 0.7 * arr[:, :, :20].std()
    assert out[:, :, 26:].mean() - out[:, :, :22].mean() > 480


# -- errors and cancellation --------------------------------------------------------------
@pytest.mark.parametrize(("func", "kwargs", "match"), [
    (smooth_median, {"size_mm": float("nan")}, "size_mm"),
    (smooth_bilateral, {"sigma_spatial_mm": 0.0}, "sigma_spatial_mm"),
    (smooth_bilateral, {"sigma_intensity": -1.0}, "sigma_intensity"),
    (smooth_curvature_diffusion, {"iterations": 0}, "iterations"),
    (smooth_curvature_diffusion, {"conductance": 0.0}, "conductance"),
])
def test_errors_name_the_argument(ct_slice, func, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(ct_slice, **kwargs)


def test_rgb_is_refused():
    rgb = Volume(np.zeros((2, 8, 8, 3), np.uint8))
    for func in (smooth_mean, smooth_median, smooth_bilateral, smooth_curvature_diffusion):
        with pytest.raises(ValueError, match=r"volume: .*scalar"):
            func(rgb)


@pytest.mark.parametrize(("func", "kwargs"), [
    (smooth_mean, {}), (smooth_mean, {"kernel": [[1, 1]]}), (smooth_median, {}),
    (smooth_median, {"size_mm": 5.0}), (smooth_median, {"size_mm": 3.0, "in_plane_only": True}),
    (smooth_bilateral, {}), (smooth_curvature_diffusion, {}),
])
def test_cancellation_is_checked(func, kwargs):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        func(Volume(np.zeros((6, 16, 16), np.float32)), progress=progress, **kwargs)


def test_progress_reaches_the_end():
    seen = []
    smooth_curvature_diffusion(Volume(np.random.default_rng(0).random((4, 16, 16))),
                               iterations=2, progress=Progress(lambda f, m: seen.append(f)))
    assert seen and max(seen) == pytest.approx(1.0) and seen == sorted(seen)


# -- contract: every registered Preprocess step -------------------------------------------
PREPROCESS_STEPS = {
    "smooth.gaussian": np.float32,
    "smooth.mean": np.float32,
    "smooth.median": np.int16,  # keeps the input's type
    "smooth.bilateral": np.float32,
    "smooth.curvature_diffusion": np.float32,
}


def test_every_preprocess_step_is_covered():
    from medview.pipeline.registry import all_steps

    assert {s.id for s in all_steps() if s.category == "Preprocess"} == set(PREPROCESS_STEPS)


@pytest.mark.parametrize("step_id", sorted(PREPROCESS_STEPS))
def test_step_contract(step_id, tiny):
    check_step_contract(step_id, {"image": tiny}, category="Preprocess",
                        dtype=PREPROCESS_STEPS[step_id], single_volume_input=True,
                        json_round_trip=True, modality="CT", changes_input=True)


def test_mean_kernel_through_a_chain(tiny):
    from medview.pipeline.chain import Chain, ChainError
    from medview.pipeline.runner import run_chain

    kernel = [[0, 1, 0], [1, 2, 1], [0, 1, 0]]
    chain = Chain.from_dict({"steps": [{"step": "smooth.mean", "params": {"kernel": kernel}}]})
    out = run_chain(chain, {"image": tiny}).result
    ref = ndi.correlate(tiny.array.astype(np.float64), np.array(kernel)[None] / 6.0,
                        mode="reflect")
    np.testing.assert_allclose(out.array, ref, atol=1e-3)
    with pytest.raises(ChainError, match="parameter 'kernel'"):
        Chain.from_dict({"steps": [{"step": "smooth.mean", "params": {"kernel": [[1], [1, 2]]}}]})
