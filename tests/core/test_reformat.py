"""Oblique MPR: acquisition planes equal the orthogonal slices, 90° turns give the other
slices, rotated planes equal SimpleITK's Resample of the same plane, on real CT.

Real data: the KiTS abdominal CT (0.70 × 0.70 × 2.5 mm, orthogonal) and the Philips head
phantom (18.5° gantry tilt: a sheared grid, which SimpleITK takes as a non-orthogonal
direction matrix).
"""

from __future__ import annotations

import numpy as np
import pytest

import medview
from medview.core.reformat.oblique import VIEWS, MprFrame, mpr_plane, sample_plane
from medview.core.volume import Volume

KITS = "kits_dupe_positions"
PHILIPS = "dcm_qa_ct/In/Philips/S21610/S2010"
CENTRE = (250, 260, 100)  # (x, y, z) voxel of the crosshair in KiTS


@pytest.fixture(scope="module")
def kits(data_dir) -> Volume:
    return medview.load(data_dir / KITS)


@pytest.fixture(scope="module")
def philips(data_dir) -> Volume:
    return medview.load(data_dir / PHILIPS)


@pytest.fixture(scope="module")
def frame(kits) -> MprFrame:
    return MprFrame.acquisition(kits, kits.index_to_lps(CENTRE))


def _orthogonal(kits, name):
    """The orthogonal slice through CENTRE as the views show it (gui.planes): acquired plane
    as stored; reformats with superior up, patient's right on the left, anterior left."""
    x, y, z = CENTRE
    a = kits.array
    return {"axial": a[z], "coronal": a[::-1, y, :], "sagittal": a[::-1, :, x]}[name]


def _voxel_pixels(kits, name):
    sx, sy, sz = kits.spacing
    return {"axial": (sx, sy), "coronal": (sx, sz), "sagittal": (sy, sz)}[name]


def _orthonormal_views(frame: MprFrame) -> None:
    normals = np.column_stack([frame.normal(n) for n in VIEWS])
    np.testing.assert_allclose(normals.T @ normals, np.eye(3), atol=1e-12)
    for m in frame.views.values():
        np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-12)
        assert np.linalg.det(m) == pytest.approx(1.0)


@pytest.mark.parametrize("name", VIEWS)
def test_zero_rotation_equals_orthogonal_slice(kits, frame, name):
    _orthonormal_views(frame)
    plane = mpr_plane(kits, frame, name, pixel_mm=_voxel_pixels(kits, name))
    assert abs(plane.distance(kits.index_to_lps(CENTRE))) < 1e-9  # through the crosshair
    expected = _orthogonal(kits, name)
    assert (plane.rows, plane.columns) == expected.shape
    np.testing.assert_array_equal(sample_plane(kits, plane), expected.astype(np.float32))


def test_default_pixels_are_square_and_interpolate_between_slices(kits, frame):
    plane = mpr_plane(kits, frame, "coronal")
    assert plane.pixel_mm == pytest.approx((0.703125, 0.703125))  # min in-plane spacing
    img = sample_plane(kits, plane)
    nz, zc = kits.shape[0], CENTRE[2]
    # the pixel grid runs through the crosshair: whole pixels up to the top and bottom slices
    step = 0.703125 / 2.5  # slices per pixel
    assert img.shape == (int(np.ceil((nz - 1 - zc) / step)) + int(np.ceil(zc / step)) + 1,
                         kits.shape[2])
    # row r lies at z index zc + (rows above the crosshair − r)·step: linear between slices
    coronal = kits.array[:, CENTRE[1], :].astype(np.float64)
    z = zc + (np.ceil((nz - 1 - zc) / step) - np.arange(img.shape[0])) * step
    assert z.max() <= nz - 0.5 and z.min() >= -0.5
    expected = np.stack([np.interp(z, np.arange(nz), coronal[:, c])
                         for c in range(coronal.shape[1])], axis=1)
    np.testing.assert_allclose(img, expected, atol=2e-3)


def test_crosshair_drag_turns_the_other_planes(kits, frame):
    turned = frame.rotated_in_view("sagittal", np.radians(90))
    _orthonormal_views(turned)
    np.testing.assert_array_equal(turned.views["sagittal"], frame.views["sagittal"])
    # the axial plane turned 90° about the L–R axis is the coronal slice through the centre
    plane = mpr_plane(kits, turned, "axial", pixel_mm=_voxel_pixels(kits, "coronal"))
    np.testing.assert_allclose(sample_plane(kits, plane),
                               _orthogonal(kits, "coronal"), atol=1e-3)
    # turned the other way it is the same slice upside down
    back = frame.rotated_in_view("sagittal", np.radians(-90))
    plane = mpr_plane(kits, back, "axial", pixel_mm=_voxel_pixels(kits, "coronal"))
    np.testing.assert_allclose(sample_plane(kits, plane),
                               _orthogonal(kits, "coronal")[::-1], atol=1e-3)
    # in the axial view, 90° turns the coronal plane into the sagittal one (mirrored A–P)
    spun = frame.rotated_in_view("axial", np.radians(90))
    plane = mpr_plane(kits, spun, "coronal", pixel_mm=_voxel_pixels(kits, "sagittal"))
    img = sample_plane(kits, plane)
    sag = _orthogonal(kits, "sagittal")
    assert any(np.allclose(img, s, atol=1e-3) for s in (sag, sag[:, ::-1]))
    # the reset brings back the acquisition planes
    reset = MprFrame.acquisition(kits, turned.centre)
    for n in VIEWS:
        np.testing.assert_array_equal(reset.views[n], frame.views[n])


def test_positive_drag_turns_the_axes_clockwise_on_screen(kits, frame):
    right, down, _ = frame.views["axial"].T
    t = np.radians(20)
    turned = frame.rotated_in_view("axial", t)
    # the coronal plane's trace on the axial view ran along the screen's right; it now
    # points right and down (clockwise), and the coronal normal turned with it
    trace = np.cross(turned.normal("coronal"), turned.normal("axial"))
    trace *= np.sign(trace @ right)
    np.testing.assert_allclose(trace, np.cos(t) * right + np.sin(t) * down, atol=1e-12)


def _sitk_plane(volume, plane, fill):
    import SimpleITK as sitk

    image = volume.to_sitk()
    axes = np.column_stack([plane.col_step / plane.pixel_mm[0],
                            plane.row_step / plane.pixel_mm[1], plane.normal])
    out = sitk.Resample(image, [plane.columns, plane.rows, 1], sitk.Transform(),
                        sitk.sitkLinear, tuple(plane.origin), (*plane.pixel_mm, 1.0),
                        tuple(axes.ravel()), fill, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)[0]


@pytest.mark.parametrize(("name", "view", "axis", "degrees"), [
    ("kits", "axial", (0.3, -1.0, 0.2), 27.0),
    ("kits", "sagittal", (0.0, 0.0, 1.0), -40.0),
    ("philips", "coronal", (1.0, 0.4, -0.3), 33.0),
    ("philips", "axial", (1.0, 0.0, 0.0), 18.5),  # undoes the tilt: a true axial plane
])
def test_rotated_plane_equals_simpleitk_resample(request, name, view, axis, degrees):
    vol = request.getfixturevalue(name)
    nz, ny, nx = vol.shape
    centre = vol.index_to_lps([nx / 2 - 10.3, ny / 2 + 7.7, nz / 2 + 0.4])
    frame = MprFrame.acquisition(vol, centre).rotated(axis, np.radians(degrees))
    _orthonormal_views(frame)
    plane = mpr_plane(vol, frame, view)
    fill = float(vol.array.min())
    ours = sample_plane(vol, plane)
    ref = _sitk_plane(vol, plane, fill)
    assert ours.shape == ref.shape
    inside = ref != fill
    assert inside.mean() > 0.25  # the plane crosses the volume, not just the fill
    assert np.std(ours[inside]) > 50  # anatomy, not a constant
    diff = np.abs(ours - ref)
    # the same trilinear values; at most a few edge pixels decided differently at ±0.5
    assert np.count_nonzero(diff > 1e-2) <= 1e-3 * diff.size
    assert np.median(diff[inside]) < 1e-3


def test_tilted_stack_acquisition_planes(philips):
    assert philips.is_oblique_stack
    k = 27
    frame = MprFrame.acquisition(philips, philips.index_to_lps([255, 255, k]))
    _orthonormal_views(frame)
    d = philips.direction
    slice_normal = np.cross(d[:, 0], d[:, 1])
    # the reset axial plane is the acquired (tilted) slice; the others stand perpendicular
    assert abs(frame.normal("axial") @ slice_normal) == pytest.approx(1.0)
    plane = mpr_plane(philips, frame, "axial")
    # the plane covers the whole sheared stack's projection; the slice is a block of it
    u, v = plane.lps_to_display(philips.index_to_lps([0, 0, k]))
    c0, r0 = round(float(u) - 0.5), round(float(v) - 0.5)
    # (IOP's 7 digits leave the tilted axes orthogonal to ~1e-7: 1e-5 pixel over the image)
    assert (float(u) - 0.5, float(v) - 0.5) == pytest.approx((c0, r0), abs=1e-4)
    assert r0 > 0 and plane.rows > 512 + r0 - 1  # other slices reach beyond it
    img = sample_plane(philips, plane)
    np.testing.assert_allclose(img[r0:r0 + 512, c0:c0 + 512], philips.array[k], atol=0.05)
    for n in ("coronal", "sagittal"):
        assert abs(frame.normal(n) @ slice_normal) < 1e-12


def test_bad_arguments(kits, frame):
    with pytest.raises(ValueError, match="name"):
        mpr_plane(kits, frame, "oblique")
    with pytest.raises(ValueError, match="axis"):
        frame.rotated((0, 0, 0), 0.3)
    with pytest.raises(ValueError, match="pixel_mm"):
        mpr_plane(kits, frame, "axial", pixel_mm=0.0)
