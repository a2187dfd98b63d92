"""Which voxels each view shows and where they are in the patient (plain Python, real data)."""

from __future__ import annotations

import numpy as np
import pytest

from medview.app.measurements import Measurement, distance_mm, roi_mask, roi_stats
from medview.app.planes import PLANES, anatomical_axes, plane_geometry
from medview.app.state import ViewerState


def _geometries(volume):
    return {name: plane_geometry(name, volume.shape, volume.spacing, volume.direction)
            for name in PLANES}


def _screen_lps(volume, g, k, col, row):
    return np.asarray(volume.index_to_lps(g.display_to_index(col + 0.5, row + 0.5, k)))


@pytest.mark.parametrize("which", ["ct_volume", "demo_volume"])
def test_each_view_is_read_in_the_radiological_orientation(request, which):
    """Axial: patient left to the screen's right, posterior down. Coronal: left to the right,
    superior up. Sagittal: posterior to the right, superior up (reformats); the acquired
    plane is shown as stored."""
    volume = request.getfixturevalue(which)
    geoms = _geometries(volume)
    assert sorted(g.normal for g in geoms.values()) == [0, 1, 2]
    native = [name for name, g in geoms.items() if g.native]
    assert len(native) == 1
    want = {"axial": ((0, +1), (1, +1)), "coronal": ((0, +1), (2, -1)),
            "sagittal": ((1, +1), (2, -1))}
    for name, g in geoms.items():
        k = g.n_slices // 2
        p = _screen_lps(volume, g, k, 1, 1)
        right = _screen_lps(volume, g, k, 2, 1) - p
        down = _screen_lps(volume, g, k, 1, 2) - p
        normal = _screen_lps(volume, g, min(k + 1, g.n_slices - 1), 1, 1) - p
        # the view's normal is the patient axis it is named after
        axis = {"sagittal": 0, "coronal": 1, "axial": 2}[name]
        if g.n_slices > 1:
            assert int(np.argmax(np.abs(normal))) == axis
        if g.native:
            # as stored: right = +x index, down = +y index
            assert np.allclose(right, volume.direction[:, 0] * volume.spacing[0])
            assert np.allclose(down, volume.direction[:, 1] * volume.spacing[1])
            continue
        (h_comp, h_sign), (v_comp, v_sign) = want[name]
        assert int(np.argmax(np.abs(right))) == h_comp and np.sign(right[h_comp]) == h_sign
        assert int(np.argmax(np.abs(down))) == v_comp and np.sign(down[v_comp]) == v_sign


def test_the_demo_is_a_sagittal_acquisition(demo_volume):
    assert anatomical_axes(demo_volume.direction)["sagittal"] == 2
    state = ViewerState()
    state.set_volume(demo_volume)
    assert state.native_plane == "sagittal"


@pytest.mark.parametrize("which", ["ct_volume", "demo_volume"])
def test_view_images_are_the_volume_voxels_at_the_mapped_indices(request, which):
    volume = request.getfixturevalue(which)
    rng = np.random.default_rng(0)
    for g in _geometries(volume).values():
        k = g.n_slices // 3
        image = g.image(volume.array, k)
        assert image.shape[:2] == (g.height, g.width)
        for _ in range(50):
            col, row = int(rng.integers(g.width)), int(rng.integers(g.height))
            x, y, z = g.pixel_to_index(col, row, k)
            assert image[row, col] == volume.array[z, y, x]
            # and back
            u, v = g.index_to_display((x, y, z))
            assert (u, v) == pytest.approx((col + 0.5, row + 0.5))


def test_crosshair_puts_every_view_through_the_same_patient_position(ct_volume):
    state = ViewerState()
    state.set_volume(ct_volume)
    state.set_cursor(100, 321, 17)
    lps = state.cursor_lps()
    for name in PLANES:
        g = state.geometry(name)
        u, v = g.index_to_display(state.cursor)
        point = ct_volume.index_to_lps(g.display_to_index(u, v, state.plane_slice(name)))
        assert np.allclose(point, lps, atol=1e-6)
    # moving it by a patient position lands on the nearest voxel
    target = np.asarray(ct_volume.index_to_lps((40.2, 60.7, 5.1)))
    state.set_cursor_lps(target)
    assert state.cursor == (40, 61, 5)


def test_distance_and_roi_statistics_follow_the_geometry(ct_volume):
    state = ViewerState()
    state.set_volume(ct_volume)
    g = state.geometry("coronal")
    k = g.n_slices // 2
    m = Measurement("distance", "coronal", k, (10.5, 20.5), (210.5, 120.5))
    a = ct_volume.index_to_lps(g.display_to_index(10.5, 20.5, k))
    b = ct_volume.index_to_lps(g.display_to_index(210.5, 120.5, k))
    assert distance_mm(ct_volume, g, m) == pytest.approx(float(np.linalg.norm(a - b)))

    # a rectangle from pixel centre (c0, r0) to (c1, r1) holds exactly those pixels
    c0, r0, c1, r1 = 40, 30, 90, 70
    rect = Measurement("rectangle", "coronal", k, (c0 + 0.5, r0 + 0.5), (c1 + 0.5, r1 + 0.5))
    pixels = g.image(ct_volume.array, k)[r0:r1 + 1, c0:c1 + 1].astype(float)
    st = roi_stats(ct_volume, g, rect)
    assert st.count == pixels.size
    assert st.mean == pytest.approx(pixels.mean())
    assert st.std == pytest.approx(pixels.std())
    assert (st.min, st.max) == (pixels.min(), pixels.max())
    sx, _sy, sz = ct_volume.spacing
    assert st.area_mm2 == pytest.approx(pixels.size * sx * sz, rel=1e-6)

    # an ellipse: pixel centres inside (u-cu)²/a² + (v-cv)²/b² <= 1, counted one by one
    ell = Measurement("ellipse", "coronal", k, (50.0, 40.0), (130.0, 80.0))
    mask = roi_mask(g, ell)
    expected = [(r, c) for r in range(g.height) for c in range(g.width)
                if ((c + 0.5 - 90.0) / 40.0) ** 2 + ((r + 0.5 - 60.0) / 20.0) ** 2 <= 1.0]
    assert sorted(zip(*np.nonzero(mask), strict=True)) == expected
    area_pixels = np.pi * 40.0 * 20.0
    assert mask.sum() == pytest.approx(area_pixels, rel=0.02)
