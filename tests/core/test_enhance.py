"""Enhance steps (stretch, equalisation, CLAHE, unsharp mask, gamma) against NumPy and
scikit-image on real CT/MR, properties, and one contract test per registered Enhance step."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import exposure, filters
from step_checks import check_step_contract

from medview.core.exposure.enhance import (
    adjust_gamma,
    equalize_adaptive,
    equalize_histogram,
    percentiles,
    sharpen_unsharp,
    stretch_contrast,
)
from medview.core.progress import Cancelled, Progress
from medview.core.volume import Volume

CT_SLICE_CROP = (slice(0, 1), slice(136, 328), slice(120, 360))  # 192 × 240
HEAD_CROP = (slice(20, 26), slice(150, 270), slice(160, 320))  # a sub-volume
MR_CROP = (slice(15, 19), slice(40, 200), slice(40, 220))  # 4 slices

QS = [0, 0.5, 1, 2.5, 25, 50, 73.3, 99, 99.9, 100]


# -- percentiles and contrast stretch -----------------------------------------------------
def test_percentiles_equal_numpy_on_real_data(head, mr):
    for arr in (head.array, mr.array, head.array.astype(np.float32) / 3.0):
        np.testing.assert_allclose(percentiles(arr, QS), np.percentile(arr, QS), rtol=1e-12)
    noise = np.random.default_rng(0).normal(size=(5, 37, 41)).astype(np.float32)
    np.testing.assert_allclose(percentiles(noise, QS), np.percentile(noise, QS), rtol=1e-6)
    assert percentiles(np.full((2, 3, 3), 4.0), [1, 99]).tolist() == [4.0, 4.0]


def test_stretch_equals_skimage_rescale_intensity(head, mr):
    f = head.array.astype(np.float32)
    out = stretch_contrast(head)
    lo, hi = np.percentile(f, [1, 99])
    ref = exposure.rescale_intensity(f, in_range=(lo, hi), out_range=(0.0, 1.0))
    assert out.array.dtype == np.float32 and out.same_grid(head)
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-6)
    out = stretch_contrast(mr, in_low=50, in_high=400, out_low=-1.0, out_high=3.0)
    ref = exposure.rescale_intensity(mr.array.astype(np.float32), in_range=(50, 400),
                                     out_range=(-1.0, 3.0))
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-5)


def test_stretch_per_slice_equals_skimage_per_slice(mr):
    out = stretch_contrast(mr, low_percentile=5, high_percentile=95, mode="2d")
    for k, img in enumerate(mr.array.astype(np.float32)):
        lo, hi = np.percentile(img, [5, 95])
        ref = exposure.rescale_intensity(img, in_range=(lo, hi), out_range=(0.0, 1.0))
        np.testing.assert_allclose(out.array[k], ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("q_lo", "q_hi"), [(1.0, 99.0), (10.0, 60.0)])
def test_stretch_maps_the_percentiles_to_the_output_range(ct_slice, q_lo, q_hi):
    x = ct_slice.array
    out = stretch_contrast(ct_slice, low_percentile=q_lo, high_percentile=q_hi,
                           out_low=-2.0, out_high=2.0).array
    lo, hi = np.percentile(x, [q_lo, q_hi])
    assert out.min() == -2.0 and out.max() == 2.0
    np.testing.assert_array_equal(out[x <= lo], -2.0)
    np.testing.assert_array_equal(out[x >= hi], 2.0)
    inside = (x > lo) & (x < hi)
    assert np.all((out[inside] > -2.0) & (out[inside] < 2.0))
    # at least q_lo % of the voxels are at the bottom, at least 100 − q_hi % at the top
    assert (out == -2.0).mean() >= q_lo / 100 - 1e-9
    assert (out == 2.0).mean() >= (100 - q_hi) / 100 - 1e-9
    assert np.all(np.diff(out.ravel()[np.argsort(x.ravel(), kind="stable")]) >= 0)  # monotonic


# -- histogram equalisation ---------------------------------------------------------------
def test_equalize_equals_skimage_equalize_hist(head, mr):
    out = equalize_histogram(head)
    ref = exposure.equalize_hist(head.array.astype(np.float32), nbins=256)
    assert out.array.dtype == np.float32 and out.same_grid(head)
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-5)
    out = equalize_histogram(mr, bins=1000, mode="2d")
    for k, img in enumerate(mr.array.astype(np.float32)):
        ref = exposure.equalize_hist(img, nbins=1000)
        np.testing.assert_allclose(out.array[k], ref, rtol=0, atol=1e-3)


def test_equalize_of_constant_slices_equals_skimage():
    arr = np.zeros((3, 12, 12), np.float32)
    arr[1] = 5.0
    arr[2, :, 6:] = 1.0
    for mode in ("3d", "2d"):
        out = equalize_histogram(Volume(arr), mode=mode).array
        ref = np.stack([exposure.equalize_hist(a) for a in arr]) if mode == "2d" \
            else exposure.equalize_hist(arr)
        np.testing.assert_allclose(out, ref, atol=1e-5)
    const = Volume(np.full((2, 8, 8), 3.0, np.float32))
    np.testing.assert_allclose(equalize_histogram(const).array,
                               exposure.equalize_hist(const.array), atol=1e-5)


def test_equalised_histogram_is_flat(ct_slice):
    x = ct_slice.array.astype(np.float64)
    out = equalize_histogram(ct_slice, bins=256).array.ravel().astype(np.float64)
    t = np.linspace(0.05, 0.95, 19)
    ecdf = np.searchsorted(np.sort(out), t, side="right") / out.size
    assert np.abs(ecdf - t).max() < 0.05  # the output's distribution is ~uniform
    share = np.histogram(out, 10, range=(0, 1))[0] / out.size
    assert share.min() > 0.07 and share.max() < 0.15
    before = np.histogram(x, 10)[0] / x.size
    assert before.max() > 0.3  # while the CT's own histogram is far from flat


# -- CLAHE --------------------------------------------------------------------------------
def test_clahe_without_clipping_matches_skimage_to_its_8_bit_output(ct_slice):
    x = ct_slice.array[0].astype(np.float32)
    norm = exposure.rescale_intensity(x, in_range=(x.min(), x.max()), out_range=(0.0, 1.0))
    for tiles in (1, 8):
        out = equalize_adaptive(ct_slice, clip_limit=0.0, tiles=tiles).array[0]
        ref = exposure.equalize_adapthist(norm, kernel_size=(192 // tiles, 240 // tiles),
                                          clip_limit=0.0, nbins=256)
        assert np.abs(out - ref).max() < 0.02  # seen: 0.012, 1.5 levels of 255


@pytest.mark.parametrize("clip_limit", [0.01, 0.03])
def test_clahe_with_clipping_is_close_to_skimage(ct_slice, clip_limit):
    x = ct_slice.array[0].astype(np.float32)
    norm = exposure.rescale_intensity(x, in_range=(x.min(), x.max()), out_range=(0.0, 1.0))
    out = equalize_adaptive(ct_slice, clip_limit=clip_limit, tiles=8)
    ref = exposure.equalize_adapthist(norm, kernel_size=(24, 30), clip_limit=clip_limit,
                                      nbins=256)
    d = np.abs(out.array[0] - ref)
    assert out.array.dtype == np.float32 and out.same_grid(ct_slice)
    assert out.array.min() == 0.0 and out.array.max() == 1.0
    # OpenCV spreads the clipped excess evenly over all bins, scikit-image first tops bins
    # up to the limit: their tile mappings differ by ~0.03 here (seen: mean 0.023 / 0.007,
    # 99th percentile 0.082 / 0.023, correlation 0.994 / 0.9995 for limits 0.01 / 0.03)
    assert d.mean() < 0.03 and np.percentile(d, 99) < 0.1 and d.max() < 0.15
    assert np.corrcoef(out.array[0].ravel(), ref.ravel())[0, 1] > 0.99


def test_clahe_window_and_more_contrast_with_a_higher_limit(ct_slice):
    soft = equalize_adaptive(ct_slice, clip_limit=0.005, in_low=-160, in_high=240).array
    strong = equalize_adaptive(ct_slice, clip_limit=0.05, in_low=-160, in_high=240).array
    tissue = (ct_slice.array > -100) & (ct_slice.array < 200)
    assert strong[tissue].std() > soft[tissue].std()
    np.testing.assert_array_equal(soft[ct_slice.array < -400], soft.min())  # below the window


# -- unsharp mask -------------------------------------------------------------------------
@pytest.mark.parametrize("in_plane_only", [False, True])
def test_unsharp_equals_skimage_unsharp_mask(head, in_plane_only):
    f = head.array.astype(np.float32)
    out = sharpen_unsharp(head, sigma_mm=1.5, amount=2.0, in_plane_only=in_plane_only)
    sigma = [1.5 / s for s in head.spacing[::-1]]
    if in_plane_only:
        sigma[0] = 0.0
    ref = filters.unsharp_mask(f, radius=sigma, amount=2.0, preserve_range=True)
    assert out.array.dtype == np.float32 and out.same_grid(head)
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=3e-3)  # seen: 6e-4 HU


def test_unsharp_properties(ct_slice):
    np.testing.assert_array_equal(sharpen_unsharp(ct_slice, amount=0.0).array,
                                  ct_slice.array.astype(np.float32))
    const = Volume(np.full((2, 16, 16), -300, np.int16))
    np.testing.assert_allclose(sharpen_unsharp(const, amount=3.0).array, -300.0)
    out = sharpen_unsharp(ct_slice, sigma_mm=1.0, amount=1.5).array
    x = ct_slice.array.astype(np.float64)
    assert abs(out.mean(dtype=np.float64) - x.mean()) < 1e-3 * x.std()
    grad = lambda a: np.abs(np.diff(a.astype(np.float64), axis=-1)).mean()  # noqa: E731
    assert grad(out) > 1.5 * grad(x)  # edges are steeper


# -- gamma --------------------------------------------------------------------------------
@pytest.mark.parametrize(("gamma", "gain"), [(0.5, 1.0), (2.2, 0.8), (1.0, 2.0)])
def test_gamma_equals_skimage_adjust_gamma(mr, gamma, gain):
    f = mr.array.astype(np.float32)
    out = adjust_gamma(mr, gamma=gamma, gain=gain)
    norm = exposure.rescale_intensity(f, in_range=(f.min(), f.max()), out_range=(0.0, 1.0))
    ref = exposure.adjust_gamma(norm, gamma, gain)
    assert out.array.dtype == np.float32 and out.same_grid(mr)
    np.testing.assert_allclose(out.array, ref, rtol=0, atol=1e-6)


def test_gamma_properties(ct_slice):
    x = ct_slice.array
    dark = adjust_gamma(ct_slice, gamma=2.0, in_low=-200, in_high=300).array
    bright = adjust_gamma(ct_slice, gamma=0.5, in_low=-200, in_high=300).array
    inside = (x > -200) & (x < 300)
    assert np.all(bright[inside] > dark[inside])
    np.testing.assert_array_equal(dark[x <= -200], 0.0)
    np.testing.assert_array_equal(bright[x >= 300], 1.0)
    order = np.argsort(x.ravel(), kind="stable")
    assert np.all(np.diff(dark.ravel()[order]) >= 0)


# -- errors and cancellation --------------------------------------------------------------
@pytest.mark.parametrize(("func", "kwargs", "match"), [
    (stretch_contrast, {"low_percentile": 99, "high_percentile": 1}, "high_percentile"),
    (stretch_contrast, {"low_percentile": -1}, "low_percentile"),
    (stretch_contrast, {"out_low": 1.0, "out_high": 1.0}, "out_high"),
    (stretch_contrast, {"in_low": 10.0, "in_high": 0.0}, "in_high"),
    (stretch_contrast, {"in_low": float("inf")}, "in_low"),
    (stretch_contrast, {"mode": "4d"}, "mode"),
    (equalize_histogram, {"bins": 1}, "bins"),
    (equalize_adaptive, {"clip_limit": 2.0}, "clip_limit"),
    (equalize_adaptive, {"tiles": 0}, "tiles"),
    (equalize_adaptive, {"tiles": 500}, "tiles"),
    (sharpen_unsharp, {"sigma_mm": 0.0}, "sigma_mm"),
    (sharpen_unsharp, {"amount": -1.0}, "amount"),
    (adjust_gamma, {"gamma": 0.0}, "gamma"),
    (adjust_gamma, {"gain": -1.0}, "gain"),
    (adjust_gamma, {"in_low": 5.0, "in_high": 1.0}, "in_high"),
])
def test_errors_name_the_argument(ct_slice, func, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(ct_slice, **kwargs)


def test_rgb_is_refused():
    rgb = Volume(np.zeros((2, 8, 8, 3), np.uint8))
    for func in (stretch_contrast, equalize_histogram, equalize_adaptive, sharpen_unsharp,
                 adjust_gamma):
        with pytest.raises(ValueError, match=r"volume: .*scalar"):
            func(rgb)


@pytest.mark.parametrize(("func", "kwargs"), [
    (stretch_contrast, {}), (stretch_contrast, {"mode": "2d"}),
    (stretch_contrast, {"in_low": 0.0, "in_high": 1.0}), (equalize_histogram, {}),
    (equalize_histogram, {"mode": "2d"}), (equalize_adaptive, {}), (sharpen_unsharp, {}),
    (adjust_gamma, {}),
])
def test_cancellation_is_checked(func, kwargs):
    progress = Progress()
    progress.cancel()
    vol = Volume(np.random.default_rng(0).random((6, 16, 16)).astype(np.float32))
    with pytest.raises(Cancelled):
        func(vol, progress=progress, **kwargs)


# -- contract: every registered Enhance step ----------------------------------------------
ENHANCE_STEPS = ("enhance.stretch", "enhance.equalize", "enhance.clahe", "enhance.unsharp",
                 "enhance.gamma")


def test_every_enhance_step_is_covered():
    from medview.pipeline.registry import all_steps

    assert {s.id for s in all_steps() if s.category == "Enhance"} == set(ENHANCE_STEPS)


@pytest.mark.parametrize("step_id", ENHANCE_STEPS)
def test_step_contract(step_id, tiny):
    check_step_contract(step_id, {"image": tiny}, category="Enhance", dtype=np.float32,
                        single_volume_input=True, json_round_trip=True, modality="CT")


def test_window_parameters_through_a_chain(tiny):
    from medview.pipeline.chain import Chain, ChainError
    from medview.pipeline.runner import run_chain

    chain = Chain.from_dict({"steps": [
        {"step": "enhance.stretch", "params": {"in_low": -100, "in_high": 300}},
        {"step": "enhance.gamma", "params": {"gamma": 0.5, "in_low": 0, "in_high": 1}},
    ]})
    out = run_chain(chain, {"image": tiny}).result
    x = tiny.array.astype(np.float64)
    ref = np.sqrt(np.clip((x + 100) / 400, 0, 1))
    np.testing.assert_allclose(out.array, ref, atol=1e-6)
    with pytest.raises(ChainError, match="parameter 'mode'"):
        Chain.from_dict({"steps": [{"step": "enhance.equalize", "params": {"mode": "4d"}}]})
