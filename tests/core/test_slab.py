"""Thick slabs (MIP, MinIP, average) equal NumPy on the same voxels, on real CT.

Real data: the KiTS abdominal CT (0.70 × 0.70 × 2.5 mm: anisotropic, orthogonal), the GE head
CT (18.5° gantry tilt, a sheared grid of 4.22 mm steps) and the Philips tilted head phantom.
On the sheared stacks the voxels a slab takes are checked against the perpendicular through
each pixel, computed in LPS through ``Volume.lps_to_index``.
"""

from __future__ import annotations

import numpy as np
import pytest

import medview
from medview.core.reformat.slab import SlabProjector, plan_slab, project_slab
from medview.core.volume import Volume

KITS = "kits_dupe_positions"
GE = "dcm_qa_ct/In/GE"
PHILIPS = "dcm_qa_ct/In/Philips/S21610/S2010"
REDUCE = {"mip": np.max, "minip": np.min, "average": np.mean}


@pytest.fixture(scope="module")
def kits(data_dir) -> Volume:
    return medview.load(data_dir / KITS)


@pytest.fixture(scope="module")
def ge(data_dir) -> Volume:
    return medview.load(data_dir / GE)


@pytest.fixture(scope="module")
def philips(data_dir) -> Volume:
    return medview.load(data_dir / PHILIPS)


@pytest.fixture(scope="module")
def xshear(kits) -> Volume:
    """KiTS voxels on a grid sheared along x (slices stepping 10° sideways): the sagittal
    slab's planes shift along z, in runs of many planes."""
    t = np.radians(10.0)
    direction = np.array([[1.0, 0.0, np.sin(t)], [0.0, 1.0, 0.0], [0.0, 0.0, np.cos(t)]])
    return Volume(kits.array[40:140], kits.spacing, kits.origin, direction)


def _numpy_slab(array: np.ndarray, axis: int, lo: int, hi: int, mode: str) -> np.ndarray:
    sel: list = [slice(None)] * 3
    sel[2 - axis] = slice(lo, hi)
    return REDUCE[mode](array[tuple(sel)], axis=2 - axis)


@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
@pytest.mark.parametrize(("axis", "index", "thickness", "lo", "hi"), [
    # axial: 2.5 mm planes; 10 mm takes the planes whose centres lie within ±5 mm: 5 planes
    (2, 100, 10.0, 98, 103),
    # coronal and sagittal: 0.703 mm planes; ±5 mm holds ⌊5 / 0.703⌋ = 7 planes each side
    (1, 300, 10.0, 293, 308),
    (0, 260, 10.0, 253, 268),
    (0, 3, 30.0, 0, 25),  # clipped at the volume's first plane (21 each side asked)
    (2, 100, 2.0, 100, 101),  # thinner than a plane: the slice itself
])
def test_orthogonal_slab_equals_numpy(kits, mode, axis, index, thickness, lo, hi):
    assert kits.spacing[2] == pytest.approx(2.5) and kits.spacing[0] == pytest.approx(0.703125)
    out = project_slab(kits, axis=axis, index=index, thickness_mm=thickness, mode=mode)
    ref = _numpy_slab(kits.array, axis, lo, hi, mode)
    assert out.shape == ref.shape
    if mode == "average":
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)
    else:
        assert out.dtype == kits.array.dtype
        np.testing.assert_array_equal(out, ref)
    # the projection differs from the plain slice wherever the slab holds other values
    if hi - lo > 1:
        plain = np.take(kits.array, index, axis=2 - axis)
        assert np.count_nonzero(out != plain) > 0.05 * plain.size


def test_anisotropic_plane_counts(kits):
    # thickness in mm → planes by the spacing along each normal (2.5 mm vs 0.703 mm)
    ax = plan_slab(kits, axis=2, index=50, thickness_mm=10.0)
    cor = plan_slab(kits, axis=1, index=256, thickness_mm=10.0)
    assert (ax.n_planes, ax.plane_spacing_mm) == (5, pytest.approx(2.5))
    assert (cor.n_planes, cor.plane_spacing_mm) == (15, pytest.approx(0.703125))
    assert ax.covered_mm == pytest.approx(12.5) and cor.covered_mm == pytest.approx(10.546875)
    # a centre 1 µm inside the edge is in; a plane just beyond half the thickness is out
    assert plan_slab(kits, axis=2, index=50, thickness_mm=4.999).n_planes == 3
    assert plan_slab(kits, axis=2, index=50, thickness_mm=5.0).n_planes == 3
    assert plan_slab(kits, axis=2, index=50, thickness_mm=4.99).n_planes == 1
    assert not ax.shifts.any()


def _perpendicular_shifts(volume: Volume, axis: int, index: int, offsets) -> np.ndarray:
    """In-plane voxel shifts along the perpendicular, from LPS positions (the test's own)."""
    d = volume.direction * np.asarray(volume.spacing)
    b, c = (a for a in (2, 1, 0) if a != axis)  # the remaining NumPy axes' voxel axes
    normal = np.cross(d[:, b], d[:, c])
    normal /= np.linalg.norm(normal)
    start = np.array([200.0, 180.0, 15.0])  # (x, y, z) index of a pixel
    start[axis] = index
    p0 = volume.index_to_lps(start)
    out = []
    for m in offsets:
        # the point of the perpendicular that lies on plane index + m
        plane_pt = volume.index_to_lps(np.where(np.arange(3) == axis, index + m, start))
        t = (plane_pt - p0) @ normal  # the planes are parallel, all with this normal
        ijk = volume.lps_to_index(p0 + t * normal)
        assert ijk[axis] == pytest.approx(index + m, abs=1e-6)
        out.append([round(ijk[b] - start[b]), round(ijk[c] - start[c])])
    return np.array(out)


def _shifted_reference(array, axis, plan, mode):
    """np.max/np.min/np.mean over each pixel's own voxels (NaN where shifted outside)."""
    rows, cols = np.take(array, 0, axis=2 - axis).shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    stack = np.full((plan.n_planes, rows, cols), np.nan)
    for i, (m, (sr, sc)) in enumerate(zip(plan.offsets, plan.shifts, strict=True)):
        plane = np.take(array, plan.index + m, axis=2 - axis).astype(np.float64)
        r, c = rr + sr, cc + sc
        ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        stack[i][ok] = plane[r[ok], c[ok]]
    return {"mip": np.nanmax, "minip": np.nanmin, "average": np.nanmean}[mode](stack, axis=0)


@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
@pytest.mark.parametrize(("name", "axis", "index", "thickness"), [
    ("ge", 2, 18, 10.0), ("ge", 2, 18, 30.0), ("ge", 1, 250, 30.0), ("ge", 0, 256, 10.0),
    ("philips", 2, 27, 10.0), ("xshear", 0, 256, 30.0), ("xshear", 2, 50, 10.0),
])
def test_tilted_slab_follows_true_normal(request, mode, name, axis, index, thickness):
    vol = request.getfixturevalue(name)
    assert vol.is_oblique_stack
    plan = plan_slab(vol, axis=axis, index=index, thickness_mm=thickness)
    # the slab's planes are counted along the true normal, not along the sheared z step
    if axis == 2 and name != "xshear":
        d = vol.direction
        cos_tilt = abs(np.cross(d[:, 0], d[:, 1]) @ d[:, 2])
        assert cos_tilt == pytest.approx(np.cos(np.radians(18.5)), abs=1e-3)
        assert plan.plane_spacing_mm == pytest.approx(vol.spacing[2] * cos_tilt)
        assert plan.n_planes == 2 * int(thickness / 2 / plan.plane_spacing_mm) + 1
        assert np.count_nonzero(plan.shifts) > 0  # the rows shift from plane to plane
    np.testing.assert_array_equal(plan.shifts,
                                  _perpendicular_shifts(vol, axis, index, plan.offsets))
    out = project_slab(vol, axis=axis, index=index, thickness_mm=thickness, mode=mode)
    ref = _shifted_reference(vol.array, axis, plan, mode)
    if mode == "average":
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)
    else:
        np.testing.assert_array_equal(out, ref.astype(vol.array.dtype))
    if np.count_nonzero(plan.shifts):
        # projecting straight down the sheared z step would take other voxels
        unsheared = _numpy_slab(vol.array, axis, plan.planes[0], plan.planes[-1] + 1, mode)
        assert not np.allclose(out, unsheared)


def test_bad_arguments_name_the_argument(kits):
    with pytest.raises(ValueError, match="mode"):
        project_slab(kits, axis=2, index=0, thickness_mm=10, mode="max")
    with pytest.raises(ValueError, match="index"):
        project_slab(kits, axis=2, index=kits.shape[0], thickness_mm=10)
    with pytest.raises(ValueError, match="axis"):
        project_slab(kits, axis=3, index=0, thickness_mm=10)
    with pytest.raises(ValueError, match="thickness_mm"):
        project_slab(kits, axis=2, index=0, thickness_mm=-1)
    rgb = Volume(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        project_slab(rgb, axis=2, index=0, thickness_mm=10)


def test_projector_caches_per_planes_taken(kits):
    proj = SlabProjector(kits, cache_size=2, x_major=False)
    a = proj.project(axis=1, index=256, thickness_mm=10.0, mode="mip")
    assert not a.flags.writeable
    # 10.2 mm takes the same 15 planes as 10 mm: the same result object
    assert proj.project(axis=1, index=256, thickness_mm=10.2, mode="mip") is a
    b = proj.project(axis=1, index=257, thickness_mm=10.0, mode="mip")
    np.testing.assert_array_equal(b, _numpy_slab(kits.array, 1, 250, 265, "mip"))
    proj.project(axis=0, index=10, thickness_mm=10.0, mode="mip")
    # the oldest entry went out of the 2-entry cache: a new, equal array
    again = proj.project(axis=1, index=256, thickness_mm=10.0, mode="mip")
    assert again is not a
    np.testing.assert_array_equal(again, a)


@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
def test_projector_x_major_copy_gives_the_same_sagittal_slabs(kits, xshear, mode):
    proj = SlabProjector(kits, x_major=True)
    out = proj.project(axis=0, index=260, thickness_mm=10.0, mode=mode)
    assert proj._xzy is not None  # the copy was made and used
    ref = _numpy_slab(kits.array, 0, 253, 268, mode)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(out, project_slab(kits, axis=0, index=260,
                                                    thickness_mm=10.0, mode=mode))
    # a sheared sagittal slab does not use the copy, and is still right
    sheared = SlabProjector(xshear, x_major=True)
    np.testing.assert_array_equal(
        sheared.project(axis=0, index=256, thickness_mm=30.0, mode=mode),
        project_slab(xshear, axis=0, index=256, thickness_mm=30.0, mode=mode))
    assert sheared._xzy is None


def test_projector_x_major_by_default_only_for_volumes_up_to_the_limit(kits, monkeypatch):
    assert kits.nbytes <= SlabProjector.X_MAJOR_MAX_BYTES
    small = SlabProjector(kits)
    small.project(axis=0, index=100, thickness_mm=5.0)
    assert small._xzy is not None
    monkeypatch.setattr(SlabProjector, "X_MAJOR_MAX_BYTES", kits.nbytes - 1)
    big = SlabProjector(kits)
    big.project(axis=0, index=100, thickness_mm=5.0)
    assert big._xzy is None
