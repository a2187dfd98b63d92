"""Resampling onto a fixed grid and rigid registration, on real CT and MR.

References: SimpleITK's own ``Resample`` on the same geometry, SciPy's ``map_coordinates`` at
the patient positions (independent of SimpleITK's index/physical conventions), a known rigid
motion applied to a real MR (TRE), and a real pair of the same head in two patient positions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

import medview
from medview.core.labelmap import LabelMap
from medview.core.progress import Cancelled, Progress
from medview.core.registration.rigid import register_rigid, resample_to_grid, rigid_matrix
from medview.core.table import Table
from medview.core.volume import Volume

HFDL = "dcm_qa_decubitus/In/HFDL/2_t1_fl2d_sag"


def _rotation(axis, degrees: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = math.radians(degrees)
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k


def _moved(vol: Volume, rot: np.ndarray, shift, centre) -> Volume:
    """The same voxels placed so that the anatomy at fixed LPS p sits at R (p - c) + c + t."""
    c = np.asarray(centre, float)
    origin = rot @ (np.asarray(vol.origin) - c) + c + np.asarray(shift, float)
    return Volume(vol.array, vol.spacing, origin, rot @ vol.direction, dict(vol.metadata))


def _sub(vol: Volume, z: slice, y: slice, x: slice) -> Volume:
    """A crop with the geometry that keeps every voxel at its patient position."""
    start = (x.start or 0, y.start or 0, z.start or 0)
    return Volume(vol.array[z, y, x], vol.spacing, vol.index_to_lps(start), vol.direction,
                  dict(vol.metadata))


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# fixtures (tests/core/conftest.py): head, the whole head CT (gantry-tilted: a sheared grid);
# mr, the whole HFS MR


@pytest.fixture(scope="module")
def sheared_pair(head):
    """A sheared fixed crop of the tilted head CT, and a moving crop of it rotated by 10°
    and shifted: both grids sheared, neither aligned with the other, the moving one covering
    only part of the fixed one."""
    assert head.is_oblique_stack
    fixed = _sub(head, slice(4, 40), slice(150, 260), slice(170, 280))
    moving = _sub(head, slice(14, None), slice(110, 300), slice(130, 320))
    nz, ny, nx = fixed.shape
    centre = fixed.index_to_lps((nx / 2, ny / 2, nz / 2))
    return fixed, _moved(moving, _rotation((0.2, 0.3, 1.0), 10.0), (1.3, -2.1, 0.7), centre)


def _at_positions(fixed: Volume, moving: Volume, order: int):
    """Moving values at the LPS position of every fixed voxel (SciPy), and which are inside."""
    nz, ny, nx = fixed.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    idx = moving.lps_to_index(fixed.index_to_lps(np.stack([i, j, k], -1).reshape(-1, 3)))
    inside = np.all((idx >= 0) & (idx <= np.array(moving.shape[::-1]) - 1), axis=1)
    data = moving.array.astype(np.float64)
    if order == 3:  # ITK's cubic B-spline: mirror boundary, exact coefficients
        data = ndi.spline_filter(data, order=3, mode="mirror")
    values = ndi.map_coordinates(data, idx[:, ::-1].T, order=order, mode="mirror",
                                 prefilter=False)
    return values.reshape(fixed.shape), inside.reshape(fixed.shape)


@pytest.mark.parametrize(("interpolation", "sitk_interp", "order", "tol_sitk", "tol_pos"), [
    ("linear", sitk.sitkLinear, 1, 0.0, 1e-3),
    ("nearest", sitk.sitkNearestNeighbor, 0, 0.0, 0.0),
    ("bspline", sitk.sitkBSpline, 3, 1e-3, 1e-3),
])
def test_resample_equals_simpleitk_and_puts_each_value_at_its_patient_position(
        sheared_pair, interpolation, sitk_interp, order, tol_sitk, tol_pos):
    fixed, moving = sheared_pair
    out = resample_to_grid(fixed, moving, interpolation=interpolation, default_value=-2000)
    assert out.same_grid(fixed) and out.array.shape == fixed.shape
    assert out.array.dtype == (moving.array.dtype if order == 0 else np.float32)
    src = moving.to_sitk()
    if order:
        src = sitk.Cast(src, sitk.sitkFloat32)
    ref = sitk.GetArrayFromImage(sitk.Resample(src, fixed.to_sitk(), sitk.Transform(),
                                               sitk_interp, -2000.0, src.GetPixelID()))
    assert np.abs(out.array.astype(np.float64) - ref).max() <= tol_sitk
    values, inside = _at_positions(fixed, moving, order)
    assert inside.mean() > 0.5 and not inside.all()  # the test sees both cases
    assert np.abs(out.array[inside] - values[inside]).max() <= tol_pos
    # outside the moving volume (beyond its half-voxel border): the default value
    far = ~ndi.binary_dilation(inside, iterations=2)
    assert far.any() and np.all(out.array[far] == -2000)


@pytest.mark.parametrize("first", [(30.0, 40.0, 1.5), (30.3, 40.7, 1.2)])
def test_grids_sharing_their_axes_take_the_fast_path_with_simpleitks_values(head, first,
                                                                          monkeypatch):
    # a coarse grid on the same sheared axes (PET beside CT): trilinear interpolation splits
    # into three 1D passes; with first = (30, 40, 1.5) fixed voxels fall exactly on the
    # moving volume's half-voxel border (ties), which SimpleITK's rounding decides either way
    fixed = _sub(head, slice(None), slice(0, 400), slice(0, 400))
    coarse = Volume(head.array[::3, ::5, ::4].astype(np.float32),
                    (head.spacing[0] * 4, head.spacing[1] * 5, head.spacing[2] * 3),
                    head.index_to_lps(first), head.direction)
    import medview.core.registration.resample as resample_module

    def no_simpleitk(*args):
        raise AssertionError("the separable path should have been taken")

    # resample_to_grid lives in core/registration/resample.py: patch the SimpleITK path where it is
    # looked up
    monkeypatch.setattr(resample_module, "_prepare_moving", no_simpleitk)
    out = resample_to_grid(fixed, coarse, default_value=-5000).array
    ref = sitk.GetArrayFromImage(sitk.Resample(coarse.to_sitk(), fixed.to_sitk(),
                                               sitk.Transform(), sitk.sitkLinear, -5000.0,
                                               sitk.sitkFloat32))
    nz, ny, nx = fixed.shape
    c = [(np.arange(n) - f) / s for n, f, s in zip((nx, ny, nz), first, (4, 5, 3), strict=True)]
    m = coarse.shape[::-1]
    tie = [(np.abs(ci + 0.5) < 1e-6) | (np.abs(ci - (mi - 0.5)) < 1e-6)
           for ci, mi in zip(c, m, strict=True)]
    ties = tie[2][:, None, None] | tie[1][None, :, None] | tie[0][None, None, :]
    assert np.any(ref == -5000) and np.any(ref != -5000)
    assert np.abs(out[~ties] - ref[~ties]).max() <= 1e-3  # float32 passes vs double
    assert ties.any() == (first[2] == 1.5)
    if ties.any():  # either reading of a tie: the edge value or the default
        assert np.all((np.abs(ref[ties] - out[ties]) <= 1e-3) | (ref[ties] == -5000)
                      | (out[ties] == -5000))
    # flipped axes share their lines too
    d = head.direction.copy()
    d[:, 0] *= -1
    flipped = Volume(head.array[:, :, ::-1], head.spacing,
                     head.index_to_lps((head.shape[2] - 1, 0, 0)), d)
    np.testing.assert_array_equal(resample_to_grid(fixed, flipped).array,
                                  fixed.array.astype(np.float32))


def test_pet_phantom_resampled_onto_the_ct_grid_keeps_uptake_where_it_was():
    from phantoms import ct_phantom_volume, pet_phantom_volume

    shape, spacing = (24, 96, 96), (3.0, 3.0, 4.0)
    ct = Volume(ct_phantom_volume(shape, spacing).astype(np.float32), spacing,
                (-142.5, -142.5, -46.0), metadata={"Modality": "CT"})
    pet = pet_phantom_volume(shape, spacing, ct.origin, spacing_xyz=(5.0, 5.0, 6.0))
    out = resample_to_grid(ct, pet)
    assert out.same_grid(ct) and out.metadata["Modality"] == "PT"
    # the hottest PET voxel's patient position holds (about) the hottest resampled value
    k, j, i = np.unravel_index(np.argmax(pet.array), pet.shape)
    at = ct.lps_to_index(pet.index_to_lps((i, j, k)))
    near = out.array[int(round(at[2])), int(round(at[1])), int(round(at[0]))]
    assert near >= 0.5 * pet.array.max() > 10 * np.median(out.array)


def test_label_map_is_resampled_with_nearest_and_keeps_its_segments(sheared_pair):
    fixed, moving = sheared_pair
    labels = LabelMap.like(moving, (moving.array > 300).astype(np.uint8) * 2)
    out = resample_to_grid(fixed, labels, interpolation="linear")
    assert isinstance(out, LabelMap) and out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 2}
    assert out.segments == labels.segments and "nearest" in out.warnings[-1]


def test_resample_refuses_bad_input_naming_the_argument(mr):
    with pytest.raises(ValueError, match="default_value"):
        resample_to_grid(mr, mr, interpolation="nearest", default_value=-1)  # uint16 voxels
    with pytest.raises(ValueError, match="interpolation"):
        resample_to_grid(mr, mr, interpolation="cubic")
    rgb = Volume(np.zeros((2, 3, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="moving"):
        resample_to_grid(mr, rgb)
    with pytest.raises(TypeError, match="volume"):
        resample_to_grid(mr.array, mr)


def test_resample_stops_when_cancelled(sheared_pair):
    fixed, moving = sheared_pair
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        resample_to_grid(fixed, moving, progress=progress)


def test_rigid_matrix_is_simpleitks_euler_transform():
    params, center = (0.1, -0.2, 0.3, 4.0, -5.0, 6.0), (10.0, 20.0, -30.0)
    tx = sitk.Euler3DTransform()
    tx.SetCenter(center)
    tx.SetParameters(params)
    m = rigid_matrix(params, center)
    for p in [(0, 0, 0), (100, -50, 25), center]:
        np.testing.assert_allclose(m[:3, :3] @ p + m[:3, 3], tx.TransformPoint(p), atol=1e-9)


def _tre(table: Table, truth, points) -> np.ndarray:
    m = np.asarray(table.rows[0]["matrix"])
    return np.linalg.norm(points @ m[:3, :3].T + m[:3, 3] - truth(points), axis=1)


def test_registration_recovers_a_known_rigid_motion_of_a_real_mr(mr):
    rot = _rotation((1.0, 2.0, 0.5), 3.0)
    shift = 4.0 * np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5])
    nz, ny, nx = mr.shape
    centre = mr.index_to_lps(((nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2))
    moving = _moved(mr, rot, shift, centre)

    def truth(p):
        return (p - centre) @ rot.T + centre + shift

    # points spread through the head: the corners of a box inside it
    points = mr.index_to_lps([(nx * a, ny * b, (nz - 1) * c)
                              for a in (0.3, 0.7) for b in (0.3, 0.7) for c in (0.2, 0.8)])
    assert np.linalg.norm(truth(points) - points, axis=1).mean() > 4.0  # identity is far off
    result = register_rigid(mr, moving, seed=3)
    tre = _tre(result["transform"], truth, points)
    assert tre.max() < 1.0, f"TRE {tre.max():.3f} mm"
    row = result["transform"].rows[0]
    assert abs(row["rotation_angle_deg"] - 3.0) < 0.2 and abs(row["translation_mm"] - 4.0) < 1
    out = result["volume"]
    assert out.same_grid(mr) and out.array.dtype == np.float32
    # the realigned volume is the fixed one again, up to interpolation
    centre_block = (slice(8, 27), slice(60, 200), slice(60, 200))
    assert _ncc(out.array[centre_block], mr.array[centre_block]) > 0.98
    assert _ncc(resample_to_grid(mr, moving).array[centre_block],
                mr.array[centre_block]) < 0.9


def test_registration_is_repeatable_bit_for_bit(mr):
    fixed = _sub(mr, slice(None), slice(60, 196), slice(60, 196))
    moving = _moved(mr, _rotation((0, 0, 1), 2.0), (2.0, 1.0, -1.0),
                    fixed.index_to_lps((68, 68, 17)))
    kw = {"levels": 2, "samples": 5000, "iterations": 60, "seed": 7}
    a, b = register_rigid(fixed, moving, **kw), register_rigid(fixed, moving, **kw)
    assert a["transform"].rows == b["transform"].rows
    np.testing.assert_array_equal(a["volume"].array, b["volume"].array)


def test_the_default_seed_is_repeatable_too(mr):
    # SimpleITK takes seed 0 as "from the wall clock"; medview's seed 0 must not be
    fixed = _sub(mr, slice(None), slice(60, 196), slice(60, 196))
    moving = _moved(mr, _rotation((0, 0, 1), 2.0), (2.0, 1.0, -1.0),
                    fixed.index_to_lps((68, 68, 17)))
    kw = {"levels": 2, "samples": 5000, "iterations": 60}
    a, b = register_rigid(fixed, moving, **kw), register_rigid(fixed, moving, **kw)
    assert a["transform"].rows == b["transform"].rows


def test_registration_aligns_the_same_head_scanned_in_two_patient_positions(data_dir, mr):
    # HFS and HFDL: the same head, supine and lying on its left side; the headers give the
    # same scanner geometry, so the head itself moved (a real registration problem)
    other = medview.load(data_dir / HFDL)
    before = _ncc(resample_to_grid(mr, other).array, mr.array)
    result = register_rigid(mr, other, initialize="moments", samples=10_000)
    row = result["transform"].rows[0]
    after = _ncc(result["volume"].array, mr.array)
    assert before < 0.45 and after > 0.6, (before, after)
    assert row["translation_mm"] > 30 and 5 < row["rotation_angle_deg"] < 30


def test_registration_refuses_bad_parameters_naming_them(mr):
    for kw, name in [({"levels": 0}, "levels"), ({"samples": 10}, "samples"),
                     ({"histogram_bins": 2}, "histogram_bins"),
                     ({"initialize": "guess"}, "initialize"), ({"finest_mm": -1.0}, "finest_mm")]:
        with pytest.raises(ValueError, match=name):
            register_rigid(mr, mr, **kw)


def test_registration_stops_when_cancelled(mr):
    calls = []

    def cancel_soon(fraction, message):
        calls.append(fraction)
        if len(calls) == 3:
            progress.cancel()

    progress = Progress(cancel_soon)
    with pytest.raises(Cancelled):
        register_rigid(mr, mr, progress=progress)
    assert len(calls) >= 3
