"""Segmentation steps against scikit-image / SimpleITK / scikit-learn on real CT and MR,
properties from the issue (thresholds are binary, Otsu equals scikit-image's), and one
contract test per registered Segment step (the clean-up steps' own tests are in
test_morphology.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview.core.labelmap import LabelMap
from medview.core.progress import Cancelled, Progress
from medview.core.segmentation import intensity as seg
from medview.core.volume import Volume

# fixtures (tests/core/conftest.py): ct3, the real liver CT with lung bases (3×512×512 int16
# HU); ct_slice, the whole real chest CT slice with both lungs (1×512×512 int16 HU); mr, the
# real T1 MR cropped to 12 slices to keep the suite fast
MR_CROP = (slice(10, 22),)


def as_float(vol: Volume, scale: float = 1.0, offset: float = 0.0) -> Volume:
    """The same image as float32 (optionally rescaled so the values are not integers)."""
    return vol.with_array(vol.array.astype(np.float32) * np.float32(scale) + np.float32(offset))


def same_grid(a: Volume, b: Volume) -> bool:
    return a.same_grid(b, atol=0) and a.shape == b.shape


# -- histogram -----------------------------------------------------------------------------
@pytest.mark.parametrize("nbins", [256, 100, 300])
def test_histogram_equals_skimage_bin_for_bin(ct3, mr, nbins):
    from skimage.exposure import histogram

    for vol in (ct3, as_float(ct3, 0.37, 0.1), as_float(mr, 1.7)):
        counts, centers = seg.intensity_histogram(vol, nbins=nbins)
        ref_counts, ref_centers = histogram(vol.array.ravel(), nbins, source_range="image")
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_array_equal(centers, ref_centers)
        assert centers.dtype == ref_centers.dtype


def test_histogram_of_integers_in_bins_equals_numpy(ct3):
    counts, centers = seg.intensity_histogram(ct3, nbins=64, integer_bins=False)
    ref_counts, edges = np.histogram(ct3.array, bins=64)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(centers, (edges[:-1] + edges[1:]) / 2)


def test_histogram_refuses_nan(ct3):
    arr = ct3.array.astype(np.float32)
    arr[1, 5, 5] = np.nan
    with pytest.raises(ValueError, match="volume: values must be finite"):
        seg.intensity_histogram(ct3.with_array(arr))


# -- thresholds ----------------------------------------------------------------------------
def test_otsu_equals_skimage_exactly(ct3, mr):
    from skimage.filters import threshold_otsu

    for vol in (ct3, as_float(ct3, 0.37, 0.1), mr, as_float(mr, 1.7)):
        out = seg.threshold_otsu(vol)
        t = threshold_otsu(vol.array)
        assert out.metadata["Threshold"] == float(t)
        np.testing.assert_array_equal(out.array, vol.array > t)


def test_otsu_per_slice_equals_skimage_per_slice(mr):
    from skimage.filters import threshold_otsu

    out = seg.threshold_otsu(mr, in_plane_only=True)
    for z in range(mr.shape[0]):
        t = threshold_otsu(mr.array[z])
        assert out.metadata["Threshold"][z] == float(t)
        np.testing.assert_array_equal(out.array[z], mr.array[z] > t)


def test_triangle_equals_skimage(ct3, mr):
    from skimage.filters import threshold_triangle

    for vol in (ct3, as_float(ct3, 0.37, 0.1), as_float(mr, 1.7)):
        out = seg.threshold_triangle(vol)
        t = threshold_triangle(vol.array)
        assert out.metadata["Threshold"] == float(t)
        np.testing.assert_array_equal(out.array, vol.array > t)


def test_li_equals_skimage_on_integers_and_agrees_on_floats(ct3, mr):
    from skimage.filters import threshold_li

    for vol in (ct3, mr):  # integer data: scikit-image's own histogram iteration
        out = seg.threshold_li(vol)
        t = threshold_li(vol.array)
        assert out.metadata["Threshold"] == pytest.approx(float(t), abs=1e-9)
        np.testing.assert_array_equal(out.array, vol.array > t)
    # float data: same fixed point; scikit-image stops within half the smallest value gap
    vol = as_float(ct3, 0.37, 0.1)
    out = seg.threshold_li(vol)
    t = threshold_li(vol.array)
    gap = np.min(np.diff(np.unique(vol.array)))
    assert abs(out.metadata["Threshold"] - float(t)) <= gap
    agree = np.mean(out.array == (vol.array > t))
    assert agree > 0.9999


def test_multiotsu_equals_skimage(ct3):
    from skimage.filters import threshold_multiotsu

    vol = as_float(ct3, 0.37, 0.1)
    out = seg.threshold_multiotsu(vol, classes=3)
    ts = threshold_multiotsu(vol.array, classes=3)
    np.testing.assert_array_equal(out.metadata["Thresholds"], ts.astype(np.float64))
    np.testing.assert_array_equal(out.array, np.digitize(vol.array, ts))
    assert set(np.unique(out.array)) == {0, 1, 2}
    assert [s.number for s in out.segments] == [1, 2]
    # integer CT is binned like numpy.histogram: thresholds at numpy's bin centres
    out_i = seg.threshold_multiotsu(ct3, classes=3, nbins=128)
    counts, edges = np.histogram(ct3.array, bins=128)
    ref = threshold_multiotsu(hist=(counts / counts.sum(), (edges[:-1] + edges[1:]) / 2),
                              classes=3)
    np.testing.assert_allclose(out_i.metadata["Thresholds"], ref)


def test_manual_threshold_is_the_lung_range(ct_slice):
    out = seg.threshold_manual(ct_slice, low=-1000, high=-400)
    a = ct_slice.array
    np.testing.assert_array_equal(out.array, (a >= -1000) & (a <= -400))
    # realistic: lungs are a large part of a chest slice, not the whole image
    assert 0.05 < out.array.mean() < 0.5
    # integer volumes: fractional bounds round inwards
    np.testing.assert_array_equal(
        seg.threshold_manual(ct_slice, low=-1000.5, high=-399.5).array, out.array)


@pytest.mark.parametrize("fn", [
    lambda v: seg.threshold_manual(v, low=-500, high=200),
    seg.threshold_otsu, seg.threshold_li, seg.threshold_triangle,
    lambda v: seg.threshold_otsu(v, in_plane_only=True),
])
def test_thresholds_are_binary_and_keep_the_grid(ct3, fn):
    for vol in (ct3, as_float(ct3, 0.37, 0.1)):
        out = fn(vol)
        assert isinstance(out, LabelMap) and out.array.dtype == np.uint8
        assert set(np.unique(out.array)) == {0, 1}
        assert same_grid(out, vol)
        assert [s.number for s in out.segments] == [1]


def test_threshold_errors_name_the_argument(ct3):
    with pytest.raises(ValueError, match="low"):
        seg.threshold_manual(ct3, low=100, high=-100)
    with pytest.raises(ValueError, match="classes"):
        seg.threshold_multiotsu(ct3.with_array(np.zeros(ct3.shape, np.int16)), classes=3)
    rgb = Volume(np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"volume: .*RGB"):
        seg.threshold_otsu(rgb)


def test_constant_volume_gives_empty_foreground(ct3):
    flat = ct3.with_array(np.full(ct3.shape, 7.5, np.float32))
    for fn in (seg.threshold_otsu, seg.threshold_li, seg.threshold_triangle):
        out = fn(flat)
        assert not out.array.any()


def test_cancel_stops_a_threshold(ct3):
    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled):
        seg.threshold_otsu(ct3, progress=p)


# -- region growing ------------------------------------------------------------------------
def _lung_seed(vol: Volume, z: int) -> tuple[int, int, int]:
    """A voxel (x, y, z) deep inside lung (-950..-600 HU) in the central part of slice z."""
    import scipy.ndimage as ndi

    s = vol.array[z]
    lung = (s > -950) & (s < -600)
    ny, nx = s.shape
    central = np.zeros_like(lung)
    central[ny // 5:4 * ny // 5, nx // 5:4 * nx // 5] = True
    depth = ndi.distance_transform_edt(lung & central)
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return int(x), int(y), z


@pytest.mark.parametrize("full", [False, True])
def test_region_growing_equals_simpleitk_connected_threshold(ct3, full):
    import SimpleITK as sitk

    seed = _lung_seed(ct3, 1)
    lps = ct3.index_to_lps(seed).tolist()
    out = seg.grow_region(ct3, seeds=[lps], criterion="range", low=-1024, high=-400,
                          full_connectivity=full)
    conn = (sitk.ConnectedThresholdImageFilter.FullConnectivity if full
            else sitk.ConnectedThresholdImageFilter.FaceConnectivity)
    ref = sitk.GetArrayFromImage(sitk.ConnectedThreshold(
        ct3.to_sitk(), seedList=[seed], lower=-1024, upper=-400, connectivity=conn))
    np.testing.assert_array_equal(out.array, ref)
    assert out.array[seed[2], seed[1], seed[0]] == 1
    # a lung, not the whole air of the image
    assert 1000 < out.array.sum() < (ct3.array <= -400).sum()
    assert same_grid(out, ct3)


def test_region_growing_tolerance_is_around_the_seed_mean(ct3):
    import SimpleITK as sitk

    seeds = [_lung_seed(ct3, 1), _lung_seed(ct3, 2)]
    mean = float(np.mean([ct3.array[z, y, x] for x, y, z in seeds]))
    out = seg.grow_region(ct3, seeds=[ct3.index_to_lps(s).tolist() for s in seeds],
                          tolerance=150)
    assert out.metadata["RangeLow"] == pytest.approx(mean - 150)
    ref = sitk.GetArrayFromImage(sitk.ConnectedThreshold(
        ct3.to_sitk(), seedList=seeds, lower=np.ceil(mean - 150), upper=np.floor(mean + 150)))
    np.testing.assert_array_equal(out.array, ref)


def test_region_growing_in_plane_stays_in_the_seed_slice(ct3):
    import SimpleITK as sitk

    seed = _lung_seed(ct3, 1)
    out = seg.grow_region(ct3, seeds=[ct3.index_to_lps(seed).tolist()], criterion="range",
                          low=-1024, high=-400, in_plane_only=True)
    assert not out.array[0].any() and not out.array[2].any()
    ref = sitk.GetArrayFromImage(sitk.ConnectedThreshold(
        sitk.GetImageFromArray(ct3.array[1]), seedList=[seed[:2]], lower=-1024, upper=-400))
    np.testing.assert_array_equal(out.array[1], ref)


def test_region_growing_errors_name_the_seeds(ct3):
    far = ct3.index_to_lps((5000, 0, 0)).tolist()
    with pytest.raises(ValueError, match=r"seeds: point .* outside the volume"):
        seg.grow_region(ct3, seeds=[far])
    bone = ct3.index_to_lps(_lung_seed(ct3, 1)).tolist()
    with pytest.raises(ValueError, match="seeds: no seed voxel"):
        seg.grow_region(ct3, seeds=[bone], criterion="range", low=200, high=1000)


# -- k-means -------------------------------------------------------------------------------
def _kmeans_reference(values: np.ndarray, k: int):
    """scikit-learn's KMeans on every voxel, run to convergence (tol=0), sorted by centre."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = values.astype(np.float64).reshape(-1, 1)
    with threadpool_limits(1):  # OpenMP spinning on a busy 2-core machine costs seconds
        km = KMeans(n_clusters=k, n_init=4, random_state=0, tol=0).fit(x)
    order = np.argsort(km.cluster_centers_[:, 0])
    rank = np.empty(k, int)
    rank[order] = np.arange(k)
    return km.cluster_centers_[order, 0], rank[km.labels_].reshape(values.shape), km.inertia_


def _check_kmeans(vol: Volume, k: int, seed: int) -> None:
    out = seg.cluster_kmeans(vol, k=k, seed=seed)
    means = np.asarray(out.metadata["ClusterMeans"])
    centers, labels, inertia = _kmeans_reference(vol.array, k)
    # 1-D k-means has nearby local optima: the same clustering up to a few boundary levels
    span = float(vol.array.max() - vol.array.min())
    np.testing.assert_allclose(means, centers, atol=0.005 * span)
    assert np.mean(out.array == labels) > 0.99
    x = vol.array.astype(np.float64)
    assert ((x - means[out.array]) ** 2).sum() <= inertia * 1.001
    # a fixed point of Lloyd's iteration on the voxels: each label's mean is its centre,
    # labels ordered by mean (0 darkest) and every voxel at its nearest centre
    np.testing.assert_allclose([x[out.array == i].mean() for i in range(k)], means, rtol=1e-9)
    assert np.all(np.diff(means) > 0)
    nearest = np.argmin(np.abs(x[..., None] - means), axis=-1)
    assert np.mean(nearest == out.array) > 0.99999


def test_kmeans_equals_sklearn_on_real_ct(ct_slice):
    crop = Volume(ct_slice.array[:, 150:342, 150:342].copy(), ct_slice.spacing)
    _check_kmeans(crop, 3, 0)


def test_kmeans_on_float_mr_converges_on_the_voxels(mr):
    crop = as_float(mr, 1.7, 0.25)
    crop = Volume(crop.array[2:10, 80:176, 80:176].copy(), mr.spacing)
    _check_kmeans(crop, 4, 3)


def test_kmeans_is_deterministic_and_checks_k(ct3):
    a = seg.cluster_kmeans(ct3, k=4, seed=5)
    b = seg.cluster_kmeans(ct3, k=4, seed=5)
    np.testing.assert_array_equal(a.array, b.array)
    assert a.metadata["ClusterMeans"] == b.metadata["ClusterMeans"]
    assert set(np.unique(a.array)) == {0, 1, 2, 3}
    two = ct3.with_array((ct3.array > 0).astype(np.int16))
    with pytest.raises(ValueError, match="k: the volume has only 2"):
        seg.cluster_kmeans(two, k=3)


# -- contract: every registered Segment step ---------------------------------------------
SEGMENT_STEPS = {
    "segment.threshold": {},
    "segment.otsu": {},
    "segment.multi_otsu": {},
    "segment.li": {},
    "segment.triangle": {},
    "segment.region_grow": {"seeds": "lung"},
    "segment.kmeans": {},
    "segment.open": {"labelmap": True},
    "segment.close": {"labelmap": True},
    "segment.fill_holes": {"labelmap": True},
    "segment.keep_largest": {"labelmap": True},
    "segment.components": {"labelmap": True, "outputs": True},
}


@pytest.fixture(scope="module")
def tiny(ct3) -> Volume:
    """A 3×40×48 crop of the real CT with lung and soft tissue, oblique direction kept."""
    y, x = _lung_seed(ct3, 1)[1], _lung_seed(ct3, 1)[0]
    y0, x0 = max(0, y - 20), max(0, x - 24)
    arr = ct3.array[:, y0:y0 + 40, x0:x0 + 48].copy()
    c, s = np.cos(0.2), np.sin(0.2)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return Volume(arr, (0.8, 0.8, 2.5), (10.0, -20.0, 30.0), direction, {"Modality": "CT"})


def test_every_segment_step_is_covered():
    from medview.pipeline.registry import all_steps

    mine = {s.id for s in all_steps() if s.category == "Segment"
            and not s.id.startswith("segment.classifier")}
    assert mine == set(SEGMENT_STEPS)


@pytest.mark.parametrize("step_id", sorted(SEGMENT_STEPS))
def test_step_contract(step_id, tiny):
    from medview.pipeline.chain import Chain, chain_schema
    from medview.pipeline.registry import get_step
    from medview.pipeline.runner import run_chain

    spec = get_step(step_id)
    expect = SEGMENT_STEPS[step_id]
    assert spec.category == "Segment" and spec.title
    schema = spec.params_schema()
    json.dumps(schema)
    assert any(b["properties"]["step"]["const"] == step_id
               for b in chain_schema()["properties"]["steps"]["items"]["oneOf"])
    params = spec.defaults()
    for p in spec.params:
        assert p.name in schema["properties"]
        if not p.required:
            assert p.validate(p.default) == p.default
    if expect.get("seeds"):
        params["seeds"] = [tiny.index_to_lps((24, 20, 1)).tolist()]
        params["tolerance"] = 200.0
    if expect.get("labelmap"):
        source = seg.threshold_manual(tiny, low=-3000, high=-400)
        inputs, kinds = {"labels": source}, {"labels": "labelmap"}
    else:
        source = tiny
        inputs, kinds = {"image": tiny}, {"image": "volume"}
    chain = Chain.from_dict({"inputs": kinds, "steps": [{"step": step_id, "params": params}]})
    result = run_chain(chain, inputs)
    out = result.result
    assert isinstance(out, LabelMap)
    assert out.shape == tiny.shape and same_grid(out, tiny)
    assert out.array.dtype.kind in "ui"
    if expect.get("labelmap") and not expect.get("outputs"):
        assert out.array.dtype == source.array.dtype
    if expect.get("outputs"):
        table = result.values["step1.table"]
        assert len(table) == int(out.array.max())
    again = run_chain(chain, inputs).result
    np.testing.assert_array_equal(again.array, out.array)
