"""Label-map clean-up against SciPy / scikit-image / SimpleITK on masks of real CT: opening
and closing with millimetre ellipsoids, hole filling in 2D and 3D, the largest component,
connected components with volumes in mL; and what ``label`` does with several labels."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

import medview
from medview.core.labelmap import LabelMap, Segment
from medview.core.morphology import cleanup as morph
from medview.core.progress import Cancelled, Progress
from medview.core.volume import Volume

KITS = "kits_dupe_positions"


@pytest.fixture(scope="module")
def kits(data_dir) -> Volume:
    """Real abdominal/chest CT, 189 slices (mostly interpolated), cropped in-plane."""
    vol = medview.load(data_dir / KITS)
    return Volume(vol.array[:, 96:416:2, 64:448:2].copy(),
                  (vol.spacing[0] * 2, vol.spacing[1] * 2, vol.spacing[2]))


def mask_of(vol: Volume, low: float, high: float, crop=None) -> LabelMap:
    arr = (vol.array >= low) & (vol.array <= high)
    if crop is not None:
        arr = arr[crop]
    return LabelMap(arr.astype(np.uint8), vol.spacing, vol.origin, vol.direction,
                    segments=(Segment(1, "mask"),))


@pytest.fixture(scope="module")
def lung(ct3) -> LabelMap:
    """Air and lung of the real CT (< -400 HU inside the field of view), 3×200×256 crop."""
    return mask_of(ct3, -1100, -400, (slice(None), slice(250, 450), slice(100, 356)))


@pytest.fixture(scope="module")
def body(kits) -> LabelMap:
    """Body (> -400 HU) of the real CT: lungs and bowel gas are holes in it."""
    return mask_of(kits, -400, 4000)


# -- structuring element -------------------------------------------------------------------
def test_footprint_honours_the_spacing():
    fp = morph.ellipsoid_footprint(2.0, (0.5, 0.8, 2.0))
    assert fp.shape == (3, 5, 9)  # radius 1 slice in z, 2 rows in y, 4 columns in x
    assert fp[1, 2, 0] and fp[1, 2, -1] and fp[1, 0, 4] and fp[0, 2, 4]
    assert not fp[0, 0, 0] and not fp[0, 2, 0]  # corners lie outside 2 mm
    np.testing.assert_array_equal(fp, fp[::-1, ::-1, ::-1])
    assert morph.ellipsoid_footprint(2.0, (0.5, 0.8, 2.0), in_plane_only=True).shape == (1, 5, 9)
    with pytest.raises(ValueError, match="radius_mm"):
        morph.ellipsoid_footprint(-1, (1, 1, 1))


# -- opening / closing ---------------------------------------------------------------------
def _scipy_open(m, fp):
    return ndi.binary_dilation(ndi.binary_erosion(m, fp, border_value=1), fp)


def _scipy_close(m, fp):
    return ndi.binary_erosion(ndi.binary_dilation(m, fp), fp, border_value=1)


@pytest.mark.parametrize("radius", [1.0, 2.5, 8.0])  # 8 mm: the distance-transform path
def test_open_and_close_equal_scipy_and_skimage(lung, radius):
    from skimage.morphology import closing, opening

    arr = lung.array if radius < 5 else lung.array[:, 40:140, 40:168].copy()  # keep it quick
    m = arr.astype(bool)
    spacing = (0.8, 0.8, 1.0)
    lm = LabelMap(arr, spacing)
    fp = morph.ellipsoid_footprint(radius, spacing)
    assert fp.shape[0] == 2 * int(radius) + 1  # a real 3D element
    opened = morph.open_labels(lm, radius_mm=radius)
    np.testing.assert_array_equal(opened.array, _scipy_open(m, fp))
    np.testing.assert_array_equal(opened.array, opening(m, fp, mode="ignore"))
    closed = morph.close_labels(lm, radius_mm=radius)
    np.testing.assert_array_equal(closed.array, _scipy_close(m, fp))
    np.testing.assert_array_equal(closed.array, closing(m, fp, mode="ignore"))
    # opening removes, closing adds, and both really change this mask
    assert (opened.array <= lm.array).all() and (closed.array >= lm.array).all()
    assert opened.array.sum() < lm.array.sum() < closed.array.sum()
    for out in (opened, closed):
        assert out.array.dtype == np.uint8 and out.same_grid(lm, atol=0)
        assert out.segments == lm.segments


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 1.0), (0.8, 0.8, 0.5)])
def test_kernel_and_distance_paths_equal_scipy(lung, spacing):
    from medview.core.progress import NO_PROGRESS

    fp = morph.ellipsoid_footprint(4.0, spacing)
    m = lung.array
    for op, ref in (("dilate", ndi.binary_dilation(m, fp)),
                    ("erode", ndi.binary_erosion(m, fp, border_value=1))):
        for method in ("kernel", "distance"):
            out = morph._morph(m, fp, op, NO_PROGRESS, method=method)
            np.testing.assert_array_equal(out, ref, err_msg=f"{op} {method}")


def test_open_in_plane_equals_per_slice_scipy(lung):
    fp = morph.ellipsoid_footprint(2.0, lung.spacing, in_plane_only=True)[0]
    out = morph.open_labels(lung, radius_mm=2.0, in_plane_only=True)
    for z in range(lung.shape[0]):
        ref = ndi.binary_dilation(ndi.binary_erosion(lung.array[z], fp, border_value=1), fp)
        np.testing.assert_array_equal(out.array[z], ref)


def test_open_close_agree_with_simpleitk_ball(lung):
    """SimpleITK's ball is a little larger than the mm ellipsoid: close, not equal."""
    import SimpleITK as sitk

    lm = LabelMap(lung.array, (1.0, 1.0, 1.0))
    img = sitk.GetImageFromArray(lm.array)
    ref = sitk.GetArrayFromImage(sitk.BinaryMorphologicalOpening(img, [2, 2, 1], sitk.sitkBall))
    out = morph.open_labels(lm, radius_mm=2.0).array
    dice = 2 * np.sum(out & ref) / (out.sum() + ref.sum())
    assert dice > 0.97


# -- holes ---------------------------------------------------------------------------------
def test_fill_holes_3d_equals_scipy_and_simpleitk(body):
    import SimpleITK as sitk

    out = morph.fill_holes(body)
    ref = ndi.binary_fill_holes(body.array)
    np.testing.assert_array_equal(out.array, ref)
    sitk_ref = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(body.array)))
    np.testing.assert_array_equal(out.array, sitk_ref)
    # real holes were filled, but not everything that is closed in 2D
    filled3 = int(out.array.sum() - body.array.sum())
    filled2 = int(morph.fill_holes(body, in_plane_only=True).array.sum() - body.array.sum())
    assert 0 < filled3 < filled2


def test_fill_holes_2d_equals_scipy_per_slice(body):
    out = morph.fill_holes(body, in_plane_only=True)
    for z in range(0, body.shape[0], 7):
        np.testing.assert_array_equal(out.array[z], ndi.binary_fill_holes(body.array[z]))


def test_fill_holes_3d_tube_and_ball():
    """An open tube is filled slice by slice but not in 3D; a closed shell is filled."""
    z, y, x = np.ogrid[:20, :20, :20]
    r2 = (y - 10) ** 2 + (x - 10) ** 2
    tube = ((r2 <= 36) & (r2 >= 16)).astype(np.uint8) * np.ones((20, 1, 1), np.uint8)
    lm = LabelMap(tube)
    assert (morph.fill_holes(lm).array == tube).all()
    assert morph.fill_holes(lm, in_plane_only=True).array.sum() > tube.sum()
    d2 = (z - 10) ** 2 + r2
    shell = ((d2 <= 49) & (d2 >= 16)).astype(np.uint8)
    filled = morph.fill_holes(LabelMap(shell)).array
    np.testing.assert_array_equal(filled, d2 <= 49)


# -- components ----------------------------------------------------------------------------
@pytest.mark.parametrize("noisy", [False, True])
def test_stitched_labelling_equals_scipy_label(kits, noisy):
    """Real CT masks, clean (OpenCV slices + stitching) and noisy (SciPy chunks + stitching):
    numbering, partition and sizes equal ndimage.label's."""
    if noisy:  # thresholding inside the noise of soft tissue: thousands of specks a slice
        m = ((kits.array > 40) & (kits.array < 60)).astype(np.uint8)
    else:
        m = (kits.array < -400).astype(np.uint8)  # air: lungs, bowel gas, outside
    for full in (False, True):
        comps = morph.Components(m, full=full, progress=Progress())
        assert (len(comps.bounds) < m.shape[0]) == noisy  # the path under test
        ours = comps.paint(np.arange(1, comps.count + 1), np.int32, Progress())
        ref, n = ndi.label(m, ndi.generate_binary_structure(3, 3 if full else 1))
        assert comps.count == n and n > 1
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(comps.sizes(), np.bincount(ref.ravel())[1:])


def test_components_volumes_by_hand_on_a_real_threshold(ct3):
    """Air of the real CT: components ordered by size, volumes = voxel count × voxel mL."""
    import SimpleITK as sitk

    lm = mask_of(ct3, -1100, -400)
    res = morph.label_components(lm)
    labels, table = res["labels"], res["table"]
    assert labels.same_grid(lm, atol=0)
    n = int(labels.array.max())
    assert n == len(table) == labels.metadata["ComponentCount"] > 2
    counts = np.bincount(labels.array.ravel())[1:]
    assert list(counts) == sorted(counts, reverse=True)
    voxel_ml = (0.8105 * 0.8105 * 1.0) / 1000  # spacing of this series, by hand
    assert lm.voxel_volume_ml == pytest.approx(voxel_ml, rel=1e-3)
    for row in table.rows[:50]:
        k = row["label"]
        assert row["voxels"] == int(np.sum(labels.array == k))
        assert row["volume_ml"] == pytest.approx(row["voxels"] * lm.voxel_volume_ml, rel=1e-12)
    assert table.units["volume_ml"] == "mL"
    # the same partition and order as SimpleITK's ConnectedComponent + RelabelComponent
    ref = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(lm.array)))
    np.testing.assert_array_equal(labels.array, sitk.GetArrayFromImage(ref))


def test_components_min_volume_and_label_choice(ct3):
    lm = mask_of(ct3, -1100, -400)
    all_ = morph.label_components(lm)["table"]
    big = morph.label_components(lm, min_volume_ml=1.0)
    assert len(big["table"]) == sum(r["volume_ml"] >= 1.0 for r in all_.rows) >= 1
    assert big["table"].rows == all_.rows[:len(big["table"])]
    kept = big["labels"].array > 0
    assert kept.sum() == sum(r["voxels"] for r in big["table"].rows)
    two = LabelMap(lm.array * 2 + (ct3.array > 300).astype(np.uint8), lm.spacing)
    only2 = morph.label_components(two, label=2)["labels"].array > 0
    np.testing.assert_array_equal(only2, lm.array > 0)


def test_keep_largest_equals_scipy_label(ct3):
    lm = mask_of(ct3, -1100, -400)
    for full in (False, True):
        out = morph.keep_largest_component(lm, full_connectivity=full)
        ref, _ = ndi.label(lm.array, ndi.generate_binary_structure(3, 3 if full else 1))
        sizes = np.bincount(ref.ravel())
        sizes[0] = 0
        np.testing.assert_array_equal(out.array, ref == np.argmax(sizes))
        assert out.array.dtype == np.uint8 and out.array.sum() < lm.array.sum()


def test_keep_largest_in_plane_equals_skimage_per_slice(ct3):
    from skimage.measure import label

    lm = mask_of(ct3, -1100, -400)
    out = morph.keep_largest_component(lm, in_plane_only=True, full_connectivity=True)
    for z in range(lm.shape[0]):
        ref = label(lm.array[z], connectivity=2)
        sizes = np.bincount(ref.ravel())
        sizes[0] = 0
        np.testing.assert_array_equal(out.array[z], ref == np.argmax(sizes))


# -- several labels ------------------------------------------------------------------------
def test_each_label_is_cleaned_on_its_own_and_never_takes_another(lung):
    spacing = (0.8, 0.8, 1.0)
    m = lung.array.astype(bool)
    two = np.where(m, 1, 0).astype(np.uint8)
    other = np.zeros_like(two)
    other[:, 100:, :] = 1
    two[(other == 1) & m] = 2  # split the lung mask into labels 1 and 2
    lm = LabelMap(two, spacing)
    fp = morph.ellipsoid_footprint(2.0, spacing)
    closed = morph.close_labels(lm, radius_mm=2.0).array
    for k in (1, 2):
        ref = _scipy_close(two == k, fp)
        # kept voxels of k stay k; added voxels only where the input was background
        assert ((two == k) <= (closed == k)).all()
        added = (closed == k) & (two != k)
        assert (two[added] == 0).all()
        np.testing.assert_array_equal(added, ref & (two == 0) & ~((k == 2) & (closed == 1)))
    only1 = morph.open_labels(lm, radius_mm=2.0, label=1).array
    np.testing.assert_array_equal(only1 == 2, two == 2)  # label 2 untouched
    np.testing.assert_array_equal(only1 == 1, _scipy_open(two == 1, fp))


def test_errors_name_the_argument_and_cancel_stops(lung):
    with pytest.raises(ValueError, match="label"):
        morph.open_labels(lung, label=-1)
    with pytest.raises(ValueError, match="min_volume_ml"):
        morph.label_components(lung, min_volume_ml=-1)
    with pytest.raises(TypeError, match="labels"):
        morph.fill_holes(Volume(lung.array))
    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled):
        morph.close_labels(lung, progress=p)
