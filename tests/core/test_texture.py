"""Texture features: Gabor bank, LBP and GLCM against scikit-image on real data, and properties.

(The contract tests of these steps are with the other Features steps in test_features.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from step_checks import crop

from medview.core.features.texture import (
    GLCM_MEASURES,
    _lbp_offsets,
    gabor_bank,
    gabor_kernel_mm,
    glcm_texture,
    lbp_code_count,
    local_binary_pattern,
)
from medview.core.labelmap import LabelMap, Segment
from medview.core.volume import Volume

CT_SLICE_CROP = (slice(0, 1), slice(120, 300), slice(130, 350))
LIVER_CROP = (slice(0, 3), slice(180, 330), slice(120, 320))
MR_CROP = (slice(15, 18), slice(40, 220), slice(30, 230))  # 3 slices


# -- Gabor -----------------------------------------------------------------------------------
def test_gabor_kernel_is_skimages_for_square_pixels():
    from skimage.filters import gabor_kernel

    for f_mm, theta, s, b in ((0.25, 0.0, 0.7, 1.0), (0.1, 1.1, 0.81, 1.5), (0.4, 2.5, 1.0, 0.7)):
        ours = gabor_kernel_mm(f_mm, theta, (s, s), bandwidth=b)
        ref = gabor_kernel(f_mm * s, theta, bandwidth=b)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_gabor_kernel_keeps_its_size_in_mm_on_non_square_pixels():
    # rows of 1 mm: row j of the kernel is row 2j of the kernel on 0.5 mm square pixels
    for theta in (0.0, 0.6):
        k = gabor_kernel_mm(0.2, theta, (0.5, 1.0))
        square = gabor_kernel_mm(0.2, theta, (0.5, 0.5))
        hk, hs = k.shape[0] // 2, square.shape[0] // 2
        assert k.shape[1] == square.shape[1] and hk == math.ceil(hs / 2)
        rows = np.arange(-(hs // 2), hs // 2 + 1)
        np.testing.assert_allclose(k[hk + rows], square[hs + 2 * rows], rtol=1e-12, atol=1e-15)


def test_gabor_bank_equals_skimage_gabor_on_real_ct(ct_slice):
    from skimage.filters import gabor

    out = gabor_bank(ct_slice, frequency_per_mm=0.3, n_frequencies=2, n_orientations=3,
                     theta_deg=10.0)
    mag, strongest = out["magnitude"], out["strongest"]
    bank = mag.metadata["GaborFilters"]
    assert len(bank) == 6 and bank[0] == [0.3, 10.0] and bank[5] == [0.15, 130.0]
    s = ct_slice.spacing[0]
    image = ct_slice.array[0].astype(np.float32)
    each = np.stack([np.hypot(*gabor(image, f * s, math.radians(t), mode="reflect"))
                     for f, t in bank])
    ref = each.max(axis=0)
    np.testing.assert_allclose(mag.array[0], ref, rtol=1e-4, atol=1e-3 * ref.max())
    # the winning filter is the same wherever the best two are not a near tie
    top2 = np.sort(each, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-3 * ref.max()
    assert clear.mean() > 0.9
    assert (strongest.array[0][clear] == each.argmax(axis=0)[clear]).all()
    assert mag.array.dtype == np.float32 and strongest.array.dtype == np.uint8
    assert mag.same_grid(ct_slice) and strongest.same_grid(ct_slice)


def test_gabor_bank_finds_the_orientation_and_frequency_of_a_grating():
    spacing = 0.8
    y, x = np.mgrid[0:96, 0:96] * spacing
    theta = math.radians(45)
    grating = np.cos(2 * np.pi * 0.15 * (x * math.cos(theta) + y * math.sin(theta)))
    vol = Volume((100 * grating)[None].astype(np.float32), (spacing, spacing, 1.0))
    out = gabor_bank(vol, frequency_per_mm=0.3, n_frequencies=2, n_orientations=4)
    # filters: 0.3 mm⁻¹ at 0/45/90/135°, then 0.15 mm⁻¹: index 4 + 1 is (0.15, 45°)
    centre = out["strongest"].array[0, 30:66, 30:66]
    assert (centre == 5).mean() > 0.99


def test_gabor_bank_rejects_frequencies_beyond_nyquist():
    vol = Volume(np.zeros((1, 16, 16), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="frequency_per_mm"):
        gabor_bank(vol, frequency_per_mm=0.6)


# -- LBP -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "default", "ror", "nri_uniform"])
def test_lbp_equals_skimage_on_real_ct_and_mr(method, ct_slice, mr):
    from skimage.feature import local_binary_pattern as sk_lbp

    for vol, points, radius_mm in ((ct_slice, 8, 1.0), (ct_slice, 16, 2.5), (mr, 12, 1.5)):
        out = local_binary_pattern(vol, points=points, radius_mm=radius_mm, method=method)
        codes = out["map"]
        assert codes.same_grid(vol)
        assert codes.array.max() < lbp_code_count(points, method)
        for k in range(vol.shape[0]):
            ref = sk_lbp(vol.array[k], points, radius_mm / vol.spacing[0], method)
            np.testing.assert_array_equal(codes.array[k], ref)
        table = out["histogram"]
        counts = np.bincount(codes.array.ravel(), minlength=lbp_code_count(points, method))
        if lbp_code_count(points, method) <= 4096:
            assert table.column("count") == counts.tolist()
        else:
            assert table.column("count") == counts[counts > 0].tolist()


def test_lbp_histogram_per_segment_and_dtype(liver):
    labels = np.zeros(liver.shape, np.uint8)
    labels[:, 10:80, 20:120] = 1
    labels[:, 90:140, 100:190] = 2
    mask = LabelMap(labels, liver.spacing, liver.origin, liver.direction,
                    segments=(Segment(1, "a"), Segment(2, "b")))
    out = local_binary_pattern(liver, mask, points=8, radius_mm=1.0, method="uniform")
    codes = out["map"].array
    assert codes.dtype == np.uint8
    rows = out["histogram"].rows
    assert len(rows) == 2 * 10
    for label in (1, 2):
        mine = [r["count"] for r in rows if r["label"] == label]
        assert mine == np.bincount(codes[labels == label], minlength=10).tolist()
        assert sum(r["fraction"] for r in rows if r["label"] == label) == pytest.approx(1.0)
    wide = local_binary_pattern(liver, points=12, radius_mm=1.0, method="default")
    assert wide["map"].array.dtype == np.uint16


def test_uniform_lbp_histogram_is_rotation_invariant(ct_slice):
    image = ct_slice.array[0, :160, :160]
    a = local_binary_pattern(Volume(image[None].copy()), points=8, radius_mm=1.0)
    b = local_binary_pattern(Volume(np.rot90(image)[None].copy()), points=8, radius_mm=1.0)
    assert a["histogram"].column("count") == b["histogram"].column("count")


def test_lbp_circle_is_in_mm_on_non_square_pixels():
    rp, cp = _lbp_offsets(4, 2.0, 0.5, 1.0)
    np.testing.assert_allclose(np.abs(cp).max(), 4.0)  # 2 mm over 0.5 mm columns
    np.testing.assert_allclose(np.abs(rp).max(), 2.0)  # 2 mm over 1 mm rows
    with pytest.raises(ValueError, match="radius_mm"):
        local_binary_pattern(Volume(np.zeros((1, 8, 8))), radius_mm=0)


# -- GLCM ------------------------------------------------------------------------------------
def quantise(values: np.ndarray, lo: float, hi: float, levels: int) -> np.ndarray:
    return np.clip(np.floor((values - lo) * (levels / (hi - lo))), 0, levels - 1).astype(np.uint8)


def skimage_measures(glcm: np.ndarray) -> dict[str, float]:
    from skimage.feature import graycoprops

    return {m: float(graycoprops(glcm, "ASM" if m == "asm" else m).mean())
            for m in GLCM_MEASURES}


ANGLES = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]


@pytest.mark.parametrize("levels", [8, 32, 64])
def test_glcm_equals_skimage_on_real_ct_and_mr(levels, ct_slice, mr):
    from skimage.feature import graycomatrix

    for vol in (ct_slice, mr):
        row = glcm_texture(vol, levels=levels).rows[0]
        image = vol.array.astype(np.float64)
        lo, hi = image.min(), image.max()
        assert (row["value_min"], row["value_max"]) == (lo, hi)
        total = sum(graycomatrix(quantise(s, lo, hi, levels), [1], ANGLES, levels,
                                 symmetric=True).astype(np.float64) for s in image)
        ref = skimage_measures(total / total.sum(axis=(0, 1), keepdims=True))
        for m in GLCM_MEASURES:
            assert row[m] == pytest.approx(ref[m], rel=1e-9, abs=1e-12), m
        assert row["directions"] == 4


def test_glcm_per_segment_equals_skimage_with_an_outside_level(liver):
    from skimage.feature import graycomatrix

    labels = np.zeros(liver.shape, np.uint8)
    labels[1, 20:110, 30:140] = 1
    labels[1, 60:140, 100:190] = 2
    mask = LabelMap(labels, liver.spacing, liver.origin, liver.direction,
                    segments=(Segment(1, "a"), Segment(2, "b"), Segment(3, "absent")))
    rows = glcm_texture(liver, mask, levels=16).rows
    image = liver.array[1].astype(np.float64)
    for row in rows[:2]:
        inside = labels[1] == row["label"]
        lo, hi = image[inside].min(), image[inside].max()
        q = quantise(image, lo, hi, 16)
        q[~inside] = 16  # an extra level outside the region, dropped from the matrix
        glcm = graycomatrix(q, [1], ANGLES, 17, symmetric=True)[:16, :16].astype(np.float64)
        ref = skimage_measures(glcm / glcm.sum(axis=(0, 1), keepdims=True))
        assert row["count"] == inside.sum()
        for m in GLCM_MEASURES:
            assert row[m] == pytest.approx(ref[m], rel=1e-9), m
    assert rows[2]["count"] == 0 and rows[2]["contrast"] is None


def brute_force_3d(q: np.ndarray, offset, levels: int) -> np.ndarray:
    oz, oy, ox = offset
    nz, ny, nx = q.shape
    counts = np.zeros((levels, levels))
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                z2, y2, x2 = z + oz, y + oy, x + ox
                if 0 <= z2 < nz and 0 <= y2 < ny and 0 <= x2 < nx:
                    counts[q[z, y, x], q[z2, y2, x2]] += 1
    return counts + counts.T


def test_glcm_3d_equals_a_brute_force_count(liver):
    from medview.core.features.texture import _ALL_13, _glcm_measures

    small = crop(liver, slice(0, 3), slice(40, 52), slice(60, 74))
    row = glcm_texture(small, levels=6, mode="3d").rows[0]
    image = small.array.astype(np.float64)
    q = quantise(image, image.min(), image.max(), 6)
    per = [_glcm_measures(brute_force_3d(q, d, 6)) for d in _ALL_13]
    assert row["directions"] == 13
    for m in GLCM_MEASURES:
        assert row[m] == pytest.approx(np.mean([p[m] for p in per]), rel=1e-9), m


def test_glcm_properties(ct_slice):
    # one slice in 3D: only the in-plane directions have pairs, the same as 2D
    a = glcm_texture(ct_slice, levels=16, mode="2d").rows[0]
    b = glcm_texture(ct_slice, levels=16, mode="3d").rows[0]
    assert b["directions"] == 4 and all(a[m] == pytest.approx(b[m]) for m in GLCM_MEASURES)
    flat = glcm_texture(Volume(np.full((2, 10, 10), 5.0)), levels=8).rows[0]
    assert (flat["contrast"], flat["energy"], flat["correlation"]) == (0.0, 1.0, 1.0)
    # a fixed range clips values outside it into the end levels
    clipped = glcm_texture(ct_slice, levels=16, value_min=-100, value_max=200).rows[0]
    image = ct_slice.array[0].astype(np.float64)
    from skimage.feature import graycomatrix

    glcm = graycomatrix(quantise(image, -100, 200, 16), [1], ANGLES, 16, symmetric=True,
                        normed=True)
    assert clipped["contrast"] == pytest.approx(skimage_measures(glcm)["contrast"])
    # 2 mm on 0.70 mm pixels: a step of 3 pixels
    far = glcm_texture(ct_slice, levels=16, distance_mm=2.0).rows[0]
    q = quantise(image, image.min(), image.max(), 16)
    glcm = graycomatrix(q, [3, 3 * np.sqrt(2)], ANGLES, 16, symmetric=True, normed=True)
    # offsets (0, 3), (3, 3), (3, 0), (3, -3): 3 px straight, 3√2 px on the diagonals
    picked = np.stack([glcm[:, :, 0, 0], glcm[:, :, 1, 1], glcm[:, :, 0, 2], glcm[:, :, 1, 3]],
                      axis=-1)[:, :, None, :]
    ref = skimage_measures(picked)
    for m in GLCM_MEASURES:
        assert far[m] == pytest.approx(ref[m], rel=1e-9), m
    assert far["contrast"] > 1.5 * a["contrast"]  # farther pairs differ more
    with pytest.raises(ValueError, match="levels"):
        glcm_texture(ct_slice, levels=300)
    with pytest.raises(ValueError, match="value_min"):
        glcm_texture(ct_slice, value_min=5, value_max=1)
