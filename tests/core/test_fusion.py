"""Average, weighted and maximum fusion and the colour blend; contract tests of every Fuse step.

Real data: the same head scanned twice on the same grid (MR, HFS and HFDL), a real CT of the
liver (3 slices); PET-like uptake from the phantom on the CT's frame of reference (no real
PET/CT pair exists here).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from step_checks import check_step_contract

import medview
from medview.core.fusion.blend import (
    blend_colour,
    colormap_lut,
    fuse_average,
    fuse_maximum,
    fuse_weighted,
)
from medview.core.labelmap import LabelMap
from medview.core.progress import Cancelled, Progress
from medview.core.registration.rigid import resample_to_grid
from medview.core.table import Table
from medview.core.volume import Volume
from phantoms import pet_phantom_volume

HFS = "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"
HFDL = "dcm_qa_decubitus/In/HFDL/2_t1_fl2d_sag"


@pytest.fixture(scope="module")
def mr_pair(data_dir):
    a = medview.load(data_dir / HFS)
    b = medview.load(data_dir / HFDL)
    assert a.same_grid(b)
    return a, b


@pytest.fixture(scope="module")
def pet(ct3) -> Volume:
    """PET-like uptake (Bq/ml) on a coarse 4 mm grid over the real CT, its field of view
    narrower than the CT's (as on a real scanner)."""
    full = pet_phantom_volume(ct3.shape, ct3.spacing, ct3.origin, spacing_xyz=(4.0, 4.0, 4.0))
    return Volume(full.array[:, 15:90, 10:95], full.spacing, full.index_to_lps((10, 15, 0)),
                  full.direction, dict(full.metadata))


# -- average, weighted, maximum --------------------------------------------------------------
def test_fusions_equal_numpy_on_a_real_mr_pair(mr_pair):
    a, b = mr_pair
    fa, fb = a.array.astype(np.float64), b.array.astype(np.float64)
    for w in (0.0, 0.3, 1.0):
        out = fuse_weighted(a, b, weight=w)
        assert out.array.dtype == np.float32 and out.same_grid(a)
        np.testing.assert_allclose(out.array, (1 - w) * fa + w * fb, rtol=0, atol=1e-3)
    np.testing.assert_allclose(fuse_average(a, b).array, (fa + fb) / 2, rtol=0, atol=1e-3)
    mx = fuse_maximum(a, b)
    assert mx.array.dtype == np.uint16  # both uint16: the common dtype
    np.testing.assert_array_equal(mx.array, np.maximum(a.array, b.array))
    assert mx.metadata["SeriesInstanceUID"] == a.metadata["SeriesInstanceUID"]


def test_weighted_fusion_of_a_volume_with_itself_is_itself(ct3):
    for w in (0.0, 0.25, 0.5, 0.7, 1.0):
        np.testing.assert_array_equal(fuse_weighted(ct3, ct3, weight=w).array,
                                      ct3.array.astype(np.float32))
    np.testing.assert_array_equal(fuse_average(ct3, ct3).array, ct3.array.astype(np.float32))
    np.testing.assert_array_equal(fuse_maximum(ct3, ct3).array, ct3.array)


@pytest.mark.parametrize("w", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_fusion_of_two_constant_volumes_lies_between_them(w):
    low = Volume(np.full((3, 8, 9), -1000.0, np.float32), (0.7, 0.7, 2.0))
    high = low.with_array(np.full((3, 8, 9), 250.0, np.float32))
    out = fuse_weighted(low, high, weight=w).array
    assert np.all((out >= -1000.0) & (out <= 250.0))
    np.testing.assert_allclose(out, (1 - w) * -1000.0 + w * 250.0, rtol=0, atol=1e-4)
    assert np.all(fuse_maximum(low, high).array == 250.0)
    assert np.all(fuse_average(high, low).array == -375.0)


def test_fusion_resamples_a_moving_volume_on_another_grid(ct3, pet):
    out = fuse_average(ct3, pet)
    ref = resample_to_grid(ct3, pet, default_value=np.nan).array
    inside = ~np.isnan(ref)
    assert inside.any() and not inside.all()
    expect = np.where(inside, (ct3.array + np.nan_to_num(ref)) / 2, ct3.array)
    np.testing.assert_allclose(out.array, expect, rtol=1e-6, atol=1e-2)
    mx = fuse_maximum(ct3, pet)
    assert mx.array.dtype == np.float32
    np.testing.assert_array_equal(mx.array[~inside], ct3.array[~inside])


def test_fusion_refuses_bad_input_naming_the_argument(ct3):
    with pytest.raises(ValueError, match="weight"):
        fuse_weighted(ct3, ct3, weight=1.5)
    rgb = Volume(np.zeros((3, 4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="moving"):
        fuse_average(ct3, rgb)
    with pytest.raises(TypeError, match="volume"):
        fuse_maximum(ct3.array, ct3)


def test_fusion_stops_when_cancelled(ct3):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        fuse_average(ct3, ct3, progress=progress)


# -- colour blend ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "tolerance"), [("jet", 1), ("viridis", 5), ("inferno", 2)])
def test_colour_maps_match_opencvs(name, tolerance):
    ref = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None],
                            getattr(cv2, f"COLORMAP_{name.upper()}"))[0, :, ::-1]
    diff = np.abs(colormap_lut(name).astype(int) - ref.astype(int))
    assert diff.max() <= tolerance


def test_grey_is_the_identity_ramp():
    lut = colormap_lut("grey")
    assert np.array_equal(lut, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))


def test_hot_goes_from_black_through_red_and_yellow_to_white():
    lut = colormap_lut("hot").astype(int)
    assert lut.shape == (256, 3) and lut[0].tolist() == [0, 0, 0]
    assert lut[-1].tolist() == [255, 255, 255]
    assert np.all(np.diff(lut, axis=0) >= 0)  # every channel rises
    assert lut[96, 0] == 255 and lut[95, 1] == 0  # red first (up to 3/8)
    assert lut[192, 1] == 255 and lut[191, 2] == 0  # then green (3/4), blue last


def _blend_reference(fixed, moving_on_grid, center, width, lut, lo, hi, opacity, hide):
    """The documented formula in float64."""
    g = np.rint(np.clip((fixed.astype(np.float64) - (center - width / 2)) / width, 0, 1) * 255)
    gray = np.repeat(g[..., None], 3, axis=-1)
    m = moving_on_grid.astype(np.float64)
    idx = np.rint(np.clip((np.nan_to_num(m) - lo) / (hi - lo), 0, 1) * 255).astype(int)
    colour = lut[idx].astype(np.float64)
    hidden = np.isnan(m) | ((m < lo) if hide else False)
    colour[hidden] = gray[hidden]
    return np.rint((1 - opacity) * gray + opacity * colour)


@pytest.mark.parametrize(("colormap", "opacity", "hide"),
                         [("hot", 0.5, True), ("viridis", 0.3, False), ("jet", 1.0, True)])
def test_blend_of_pet_over_real_ct_follows_the_formula(ct3, pet, colormap, opacity, hide):
    lo, hi = 2000.0, 20000.0  # Bq/ml
    out = blend_colour(ct3, pet, window_center=40.0, window_width=400.0, colormap=colormap,
                       moving_min=lo, moving_max=hi, opacity=opacity, hide_below_min=hide)
    assert out.array.shape == (*ct3.shape, 3) and out.array.dtype == np.uint8
    assert out.is_rgb and out.same_grid(ct3)
    on_grid = resample_to_grid(ct3, pet, default_value=np.nan).array
    ref = _blend_reference(ct3.array, on_grid, 40.0, 400.0, colormap_lut(colormap), lo, hi,
                           opacity, hide)
    diff = np.abs(out.array.astype(np.float64) - ref)
    assert diff.max() <= 1  # rounding of the single-precision intermediate
    assert (diff > 0).mean() < 0.01
    # outside the PET field of view: plain gray
    outside = np.isnan(on_grid)
    assert outside.any()
    px = out.array[outside]
    assert np.all(px[:, 0] == px[:, 1]) and np.all(px[:, 1] == px[:, 2])


def test_blend_at_zero_opacity_is_the_gray_window(ct3, pet):
    out = blend_colour(ct3, pet, window_center=40.0, window_width=400.0, opacity=0.0)
    gray = np.rint(np.clip((ct3.array + 160.0) / 400.0, 0, 1) * 255)
    for c in range(3):
        np.testing.assert_array_equal(out.array[..., c], gray)


def test_blend_automatic_ranges_show_uptake_in_colour(ct3, pet):
    out = blend_colour(ct3, pet, opacity=0.6)  # CT: abdomen window; PET: 1–99 percentiles
    r, _g, b = (out.array[..., c].astype(int) for c in range(3))
    lo, hi = np.percentile(pet.array, (1, 99))
    level = (resample_to_grid(ct3, pet).array - lo) / (hi - lo)
    red = (level > 0.4) & (level < 0.7)  # "hot": full red, no blue over this stretch
    assert red.any() and np.all(r[red] - b[red] >= 0.6 * 255 - 2)
    gray = resample_to_grid(ct3, pet, default_value=np.nan).array
    gray = np.isnan(gray)
    assert gray.any() and np.all(r[gray] == b[gray])


def test_blend_of_a_series_resampled_beforehand_is_grey_where_it_has_no_data(ct3, pet):
    """The window's Fusion dock resamples the second series once (NaN where it has no data)
    and exports the Secondary Capture from that: the same picture as blending the series
    itself, the CT alone outside its field of view (with 0 there, a coloured frame)."""
    kw = {"window_center": 40.0, "window_width": 400.0, "colormap": "hot",
          "moving_min": -5000.0, "moving_max": 20000.0, "opacity": 0.5}
    direct = blend_colour(ct3, pet, **kw).array
    on_grid = resample_to_grid(ct3, pet, default_value=np.nan)
    np.testing.assert_array_equal(blend_colour(ct3, on_grid, **kw).array, direct)
    outside = np.isnan(on_grid.array)
    assert outside.mean() > 0.05
    gray = np.rint(np.clip((ct3.array[outside] + 160.0) / 400.0, 0, 1) * 255)
    for c in range(3):
        np.testing.assert_array_equal(direct[outside][:, c], gray)
    with_zero = blend_colour(ct3, resample_to_grid(ct3, pet, default_value=0.0), **kw).array
    assert np.all(with_zero[outside][:, 0] > with_zero[outside][:, 2])  # red: the old frame


def test_blend_refuses_bad_parameters_naming_them(ct3, pet):
    for kw, name in [({"opacity": 1.5}, "opacity"), ({"window_width": 0.0}, "window_width"),
                     ({"moving_min": 5.0, "moving_max": 5.0}, "moving_max"),
                     ({"colormap": "rainbow"}, "colormap")]:
        with pytest.raises(ValueError, match=name):
            blend_colour(ct3, pet, **kw)


# -- contract: every registered Fuse step ----------------------------------------------------
def _tiny_pair():
    rng = np.random.default_rng(0)
    c, s = np.cos(0.2), np.sin(0.2)
    direction = np.array([[c, -s, 0.1], [s, c, 0.0], [0.0, 0.0, 0.995]])  # sheared
    fixed = Volume(rng.normal(40, 200, (12, 24, 28)).astype(np.float32), (1.5, 1.5, 3.0),
                   (-20.0, -18.0, -15.0), direction, {"Modality": "CT"})
    moving = Volume(rng.gamma(2.0, 3000.0, (8, 10, 12)).astype(np.float32), (4.0, 4.0, 5.0),
                    (-22.0, -20.0, -18.0), metadata={"Modality": "PT"})
    return fixed, moving


FUSE_STEPS = {
    "fuse.resample": {"dtype": np.float32},
    "fuse.register_rigid": {"dtype": np.float32, "also": {"transform": Table}},
    "fuse.average": {"dtype": np.float32},
    "fuse.weighted": {"dtype": np.float32},
    "fuse.maximum": {"dtype": np.float32},
    "fuse.blend": {"dtype": np.uint8, "rgb": True},
}


def test_every_fuse_step_is_covered():
    from medview.pipeline.registry import all_steps

    assert {s.id for s in all_steps() if s.category == "Fuse"} == set(FUSE_STEPS)


@pytest.mark.parametrize("step_id", sorted(FUSE_STEPS))
def test_step_contract(step_id):
    expect = FUSE_STEPS[step_id]
    fixed, moving = _tiny_pair()
    check_step_contract(step_id, {"image": fixed, "moving": moving}, category="Fuse",
                        input_names=["volume", "moving"], step_inputs={"moving": "moving"},
                        dtype=expect["dtype"], not_kind=LabelMap,
                        rgb=expect.get("rgb", False), also=expect.get("also"),
                        also_to_json=True)
