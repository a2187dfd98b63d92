"""Features: gray-level statistics, Sobel, Canny against NumPy/SciPy/scikit-image on real data,
properties, and one contract test per registered Features step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats as st
from step_checks import check_step_contract, tiny_volume

from medview.core.features.edges import canny_edges, gray_statistics, sobel_magnitude
from medview.core.labelmap import LabelMap, Segment
from medview.core.progress import Cancelled, Progress
from medview.core.table import Table
from medview.core.volume import Volume

QS = (0, 1, 5, 25, 50, 75, 95, 99, 100)


CT_SLICE_CROP = (slice(0, 1), slice(96, 352), slice(96, 416))  # central crop
LIVER_CROP = (slice(0, 3), slice(150, 350), slice(100, 380))
HEAD_CROP = (slice(20, 30), slice(120, 320), slice(130, 380))  # a sub-volume
MR_CROP = (slice(14, 20), slice(0, 256), slice(0, 256))  # 6 slices


def stat_row(vol, **kw) -> dict:
    out = gray_statistics(vol, percentiles=", ".join(str(q) for q in QS), **kw)
    return out["statistics"].rows[0]


def check_against_numpy(row: dict, values: np.ndarray, bins: int = 256) -> None:
    v = values.astype(np.float64).ravel()
    assert row["count"] == v.size
    assert row["mean"] == pytest.approx(v.mean(), rel=1e-12, abs=1e-9)
    assert row["variance"] == pytest.approx(v.var(), rel=1e-9)
    assert row["std"] == pytest.approx(v.std(), rel=1e-9)
    assert row["skewness"] == pytest.approx(st.skew(v), rel=1e-7, abs=1e-9)
    assert row["kurtosis"] == pytest.approx(st.kurtosis(v), rel=1e-7, abs=1e-9)
    assert row["min"] == v.min() and row["max"] == v.max()
    for q in QS:
        assert row[f"p{q:g}"] == pytest.approx(np.percentile(values.ravel(), q), rel=1e-6,
                                               abs=1e-6), q
    hist, edges = np.histogram(values.ravel(), bins)
    peak = int(np.argmax(hist))
    assert row["peak"] == pytest.approx((edges[peak] + edges[peak + 1]) / 2)
    assert row["entropy_bits"] == pytest.approx(st.entropy(hist, base=2), rel=1e-12)


# -- statistics ------------------------------------------------------------------------------
def test_statistics_of_real_ct_equal_numpy_and_scipy(ct_slice):
    out = gray_statistics(ct_slice, percentiles=", ".join(str(q) for q in QS))
    row = out["statistics"].rows[0]
    check_against_numpy(row, ct_slice.array)
    assert row["mode"] == st.mode(ct_slice.array.ravel()).mode
    assert row["volume_ml"] == pytest.approx(ct_slice.array.size * np.prod(ct_slice.spacing)
                                             / 1000)
    hist, edges = np.histogram(ct_slice.array, 256)
    table = out["histogram"]
    assert table.column("count") == hist.tolist()
    np.testing.assert_allclose(table.column("low"), edges[:-1])
    assert sum(table.column("fraction")) == pytest.approx(1.0)
    assert out["statistics"].units["mean"] == "HU"


def test_statistics_of_non_integer_float_image_equal_numpy(mr):
    # a float image with fractional values takes the float path (moments + exact selection)
    vol = mr.with_array((mr.array * np.float32(1.37) + np.float32(0.25)).astype(np.float32))
    assert not np.array_equal(vol.array, np.floor(vol.array))
    row = stat_row(vol, bins=100)
    check_against_numpy(row, vol.array, bins=100)
    assert row["mode"] is None


def test_integer_valued_float_gives_the_same_statistics_as_int16(ct_slice):
    a = stat_row(ct_slice)
    b = stat_row(ct_slice.with_array(ct_slice.array.astype(np.float32)))
    for key in ("mean", "std", "skewness", "kurtosis", "min", "max", "p1", "p50", "p99",
                "entropy_bits", "mode"):
        assert b[key] == pytest.approx(a[key], rel=1e-12), key


def test_statistics_per_segment_of_a_mask(liver):
    labels = np.zeros(liver.shape, np.uint8)
    labels[:, 20:120, 30:150] = 1
    labels[1:, 100:180, 140:260] = 2
    segs = (Segment(1, "liver"), Segment(2, "other"), Segment(3, "empty"))
    mask = LabelMap(labels, liver.spacing, liver.origin, liver.direction, segments=segs)
    rows = gray_statistics(liver, mask, percentiles="5, 50, 95")["statistics"].rows
    assert [r["name"] for r in rows] == ["liver", "other", "empty"]
    for row in rows[:2]:
        values = liver.array[labels == row["label"]]
        assert row["count"] == values.size
        assert row["mean"] == pytest.approx(values.mean(dtype=np.float64), rel=1e-12)
        assert row["p50"] == pytest.approx(np.percentile(values, 50))
        assert row["skewness"] == pytest.approx(st.skew(values.astype(np.float64)), rel=1e-7)
    assert rows[2]["count"] == 0 and rows[2]["mean"] is None


def test_statistics_of_a_constant_image_and_json_output():
    vol = Volume(np.full((2, 5, 5), 7, np.int16))
    out = gray_statistics(vol, bins=4)
    row = out["statistics"].rows[0]
    assert (row["mean"], row["std"], row["p50"], row["mode"]) == (7, 0, 7, 7)
    assert row["skewness"] is None and row["entropy_bits"] == 0.0
    json.loads(out["statistics"].to_json())
    assert sum(out["histogram"].column("count")) == 50


def test_statistics_errors_name_the_argument(ct_slice):
    bad = ct_slice.with_array(ct_slice.array.astype(np.float32))
    bad.array[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="volume"):
        gray_statistics(bad)
    with pytest.raises(ValueError, match="percentiles"):
        gray_statistics(ct_slice, percentiles="5, median")
    with pytest.raises(ValueError, match="percentiles"):
        gray_statistics(ct_slice, percentiles="101")
    other = LabelMap(np.ones((1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        gray_statistics(ct_slice, other)
    with pytest.raises(ValueError, match="volume"):
        gray_statistics(Volume(np.zeros((1, 4, 4, 3), np.uint8)))


# -- Sobel -----------------------------------------------------------------------------------
def scipy_sobel(a: np.ndarray, spacing) -> np.ndarray:
    """|gradient| in units/mm from scipy.ndimage.sobel over every axis of ``a`` ([z,] y, x)."""
    a = a.astype(np.float32)
    gain = 2 * 4 ** (a.ndim - 1)
    sizes = tuple(reversed(spacing))[-a.ndim:]  # (sz, sy, sx) or (sy, sx)
    return np.sqrt(sum((ndi.sobel(a, ax, mode="reflect") / (gain * sizes[ax])) ** 2
                       for ax in range(a.ndim)))


def test_sobel_3d_equals_scipy_on_real_ct(head):
    got = sobel_magnitude(head, mode="3d")
    ref = scipy_sobel(head.array, head.spacing)
    assert got.array.dtype == np.float32
    np.testing.assert_allclose(got.array, ref, rtol=1e-5, atol=1e-3)
    assert got.same_grid(head) and got.metadata["Units"] == "HU/mm"


def test_sobel_2d_equals_scipy_and_skimage_on_real_ct(ct_slice, mr):
    from skimage.filters import sobel as sk_sobel

    for vol in (ct_slice, mr):
        got = sobel_magnitude(vol, mode="2d").array
        ref = np.stack([scipy_sobel(s, vol.spacing) for s in vol.array])
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
    # scikit-image normalises its kernels and divides by sqrt(ndim): sqrt(2) * spacing * ours
    s = ct_slice.spacing[0]
    sk = sk_sobel(ct_slice.array[0].astype(np.float64), mode="reflect")
    mine = sobel_magnitude(ct_slice, mode="2d").array[0]
    np.testing.assert_allclose(mine * np.sqrt(2) * s, sk, rtol=1e-5, atol=1e-2)


def test_sobel_of_a_ramp_is_its_slope_in_mm_whatever_the_spacing():
    z, y, x = np.mgrid[0:9, 0:12, 0:14].astype(np.float64)
    for spacing in ((1.0, 1.0, 1.0), (0.5, 0.8, 3.0)):
        sx, sy, sz = spacing
        # 2 units/mm along x, -1 along y, 3 along z
        ramp = 2 * x * sx - 1 * y * sy + 3 * z * sz
        vol = Volume(ramp.astype(np.float32), spacing)
        g3 = sobel_magnitude(vol).array[1:-1, 1:-1, 1:-1]
        g2 = sobel_magnitude(vol, mode="2d").array[:, 1:-1, 1:-1]
        np.testing.assert_allclose(g3, np.sqrt(4 + 1 + 9), rtol=1e-4)
        np.testing.assert_allclose(g2, np.sqrt(4 + 1), rtol=1e-4)


def test_sobel_checks_cancellation():
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        sobel_magnitude(Volume(np.zeros((8, 16, 16), np.float32)), progress=progress)
    with pytest.raises(ValueError, match="mode"):
        sobel_magnitude(Volume(np.zeros((2, 4, 4))), mode="4d")


# -- Canny -----------------------------------------------------------------------------------
def f_score(a: np.ndarray, b: np.ndarray) -> float:
    """Agreement of two edge maps allowing 1 pixel of displacement."""
    grow = np.ones((3, 3), bool)
    precision = (a & ndi.binary_dilation(b, grow)).sum() / max(1, a.sum())
    recall = (b & ndi.binary_dilation(a, grow)).sum() / max(1, b.sum())
    return 2 * precision * recall / (precision + recall)


def test_canny_agrees_with_skimage_on_real_ct(ct_slice, liver):
    from skimage.feature import canny

    for vol, (low, high) in ((ct_slice, (20.0, 50.0)), (liver, (10.0, 30.0))):
        s = vol.spacing[0]
        got = canny_edges(vol, sigma_mm=1.5, low_threshold=low, high_threshold=high)
        assert isinstance(got, LabelMap) and got.array.dtype == np.uint8
        assert set(np.unique(got.array)) == {0, 1}
        for k in range(vol.shape[0]):
            ref = canny(vol.array[k].astype(np.float64), sigma=1.5 / s,
                        low_threshold=low * 8 * s, high_threshold=high * 8 * s)
            mine = got.array[k].astype(bool)
            assert mine.sum() > 500
            assert abs(int(mine.sum()) - int(ref.sum())) < 0.1 * ref.sum()
            assert f_score(mine, ref) > 0.94


def test_canny_quantile_thresholds_agree_with_skimage_on_real_mr(mr):
    from skimage.feature import canny

    got = canny_edges(mr, sigma_mm=2.0, low_threshold=0.8, high_threshold=0.9,
                      use_quantiles=True)
    s = mr.spacing[0]
    for k in (0, 3):
        ref = canny(mr.array[k].astype(np.float64), sigma=2.0 / s, low_threshold=0.8,
                    high_threshold=0.9, use_quantiles=True)
        assert f_score(got.array[k].astype(bool), ref) > 0.9


def test_canny_thresholds_are_physical_and_monotonic(ct_slice):
    # the same anatomy on pixels twice as large, thresholds in HU/mm: nearly the same edges
    fine = canny_edges(ct_slice, sigma_mm=2.0, low_threshold=15, high_threshold=40).array[0]
    down = ct_slice.array[0, ::2, ::2]
    coarse_vol = Volume(np.ascontiguousarray(down), tuple(2 * s for s in ct_slice.spacing))
    coarse = canny_edges(coarse_vol, sigma_mm=2.0, low_threshold=15,
                         high_threshold=40).array[0]
    assert abs(fine.sum() / 2 - coarse.sum()) < 0.15 * coarse.sum()
    stricter = canny_edges(ct_slice, sigma_mm=2.0, low_threshold=40, high_threshold=80).array
    assert stricter.sum() < fine.sum()
    assert not (stricter.astype(bool) & ~fine.astype(bool)).any()


def test_canny_validates_its_parameters():
    vol = Volume(np.zeros((1, 8, 8), np.float32))
    assert canny_edges(vol).array.sum() == 0  # a flat image has no edges
    with pytest.raises(ValueError, match="low_threshold"):
        canny_edges(vol, low_threshold=60, high_threshold=50)
    with pytest.raises(ValueError, match="sigma_mm"):
        canny_edges(vol, sigma_mm=-1)
    with pytest.raises(ValueError, match="high_threshold"):
        canny_edges(vol, low_threshold=0.5, high_threshold=2, use_quantiles=True)


# -- contract: every registered Features step ------------------------------------------------
@pytest.fixture(scope="module")
def tiny() -> Volume:
    return tiny_volume(slices=6, slice_mm=2.5)


FEATURE_STEPS = {
    "features.statistics": {"table": "statistics", "also": {"histogram": Table}},
    "features.sobel": {"dtype": np.float32},
    "features.canny": {"dtype": np.uint8, "labelmap": True},
    "features.gabor": {"dtype": np.float32, "also": {"strongest": Volume}},
    "features.lbp": {"dtype": np.uint8, "also": {"histogram": Table}},
    "features.glcm": {"table": True},
}


def test_every_features_step_is_covered():
    from medview.pipeline.registry import all_steps

    assert {s.id for s in all_steps() if s.category == "Features"} == set(FEATURE_STEPS)


@pytest.mark.parametrize("step_id", sorted(FEATURE_STEPS))
def test_step_contract(step_id, tiny):
    expect = FEATURE_STEPS[step_id]
    check_step_contract(step_id, {"image": tiny}, category="Features",
                        table=bool(expect.get("table")), dtype=expect.get("dtype"),
                        kind=LabelMap if expect.get("labelmap") else Volume,
                        also=expect.get("also"), also_grid=True)


def test_statistics_step_reads_a_mask_input_of_the_chain(tiny):
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain

    labels = np.zeros(tiny.shape, np.uint8)
    labels[:, 6:22, 8:24] = 1
    mask = LabelMap.like(tiny, labels, segments=(Segment(1, "blob"),))
    chain = Chain.from_dict({
        "inputs": {"image": "volume", "roi": "labelmap"},
        "steps": [{"step": "features.statistics", "params": {"percentiles": [50]},
                   "inputs": {"volume": "image", "mask": "roi"}, "output": "stats"}],
    })
    result = run_chain(chain, {"image": tiny, "roi": mask})
    row = result.values["stats.statistics"].rows[0]
    assert row["name"] == "blob" and row["count"] == labels.sum()
    assert row["p50"] == np.median(tiny.array[labels == 1])
    assert len(result.values["stats.histogram"]) == 256


def test_every_features_function_checks_cancellation(tiny):
    from medview.core.features.texture import gabor_bank, glcm_texture, local_binary_pattern

    progress = Progress()
    progress.cancel()
    for func in (gray_statistics, sobel_magnitude, canny_edges, gabor_bank,
                 local_binary_pattern, glcm_texture):
        with pytest.raises(Cancelled):
            func(tiny, progress=progress)


def test_progress_reaches_the_end():
    seen = []
    vol = Volume(np.arange(6 * 20 * 20, dtype=np.float32).reshape(6, 20, 20))
    sobel_magnitude(vol, progress=Progress(lambda f, m: seen.append(f)))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
