"""Oblique MPR, reference lines and the localizer of the views (issue 17), without Qt.

Real series: the KiTS CT (anisotropic), the gantry-tilted Philips head phantom and its
sagittal localizer (``S1000``, ImageType ORIGINAL\\PRIMARY\\LOCALIZER) found through a real
catalog of the study's folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from realparts import require

import medview
from medview.app.localizer import find_localizer, localizer_plane
from medview.app.planes import PLANES
from medview.app.state import ViewerState
from medview.core.reformat.oblique import MprFrame, mpr_plane, sample_plane
from medview.core.reformat.plane import ImagePlane
from medview.core.reformat.reference_lines import reference_line

STUDY = "dcm_qa_ct/In/Philips/S21610"


@pytest.fixture
def state(ct_volume) -> ViewerState:
    s = ViewerState()
    s.set_volume(ct_volume)
    s.set_cursor(260, 250, 60)
    return s


def _same_plane(a: ImagePlane, b: ImagePlane) -> bool:
    return (a.rows, a.columns) == (b.rows, b.columns) and all(
        np.allclose(getattr(a, f), getattr(b, f), atol=1e-9)
        for f in ("origin", "col_step", "row_step"))


def test_rotation_turns_the_other_planes_and_keeps_them_orthogonal(state, ct_volume):
    assert not state.mpr.rotated
    frames = []
    state.mpr.model.events.frame.connect(lambda new, old: frames.append(new))
    state.mpr.rotate_in_view("axial", np.radians(30))
    assert state.mpr.rotated and len(frames) == 1
    want = MprFrame.acquisition(ct_volume, centre=state.cursor_lps()).rotated_in_view(
        "axial", np.radians(30))
    planes = {}
    for name in PLANES:
        planes[name] = state.mpr.view_plane(name)
        assert _same_plane(planes[name], mpr_plane(ct_volume, want, name)), name
        image, shown = state.mpr.oblique_image(name)
        np.testing.assert_array_equal(image, sample_plane(ct_volume, shown))
    normals = np.array([planes[n].normal for n in PLANES])
    np.testing.assert_allclose(normals @ normals.T, np.eye(3), atol=1e-9)
    # the axial plane did not move; the coronal normal turned 30° about the axial normal
    assert abs(planes["axial"].normal @ np.array([0, 0, 1.0])) > 1 - 1e-9
    acquired = MprFrame.acquisition(ct_volume).normal("coronal")
    assert np.degrees(np.arccos(abs(planes["coronal"].normal @ acquired))) == pytest.approx(30)


def test_reset_gives_back_the_acquired_planes(state, ct_volume):
    state.mpr.rotate_in_view("coronal", 0.4)
    state.mpr.rotate_in_view("sagittal", -0.2)
    state.mpr.reset()
    assert not state.mpr.rotated and state.mpr.oblique_image("axial") is None
    for name in PLANES:
        g = state.geometry(name)
        want = ImagePlane.from_volume_slice(ct_volume, axis=g.normal,
                                            index=state.plane_slice(name),
                                            horizontal=g.horizontal, vertical=g.vertical,
                                            flip_h=g.flip_h, flip_v=g.flip_v)
        assert _same_plane(state.mpr.view_plane(name), want)


def test_the_oblique_centre_moves_along_the_normal_and_the_cursor_follows(state, ct_volume):
    state.mpr.rotate_in_view("axial", np.radians(45))
    frame = state.mpr.model.frame
    assert state.mpr.step("coronal", 10)
    moved = state.mpr.model.frame
    step = min(ct_volume.spacing[:2]) * 10
    np.testing.assert_allclose(moved.centre - frame.centre, step * frame.normal("coronal"))
    assert state.cursor == tuple(int(round(c)) for c in ct_volume.lps_to_index(moved.centre))
    # a crosshair moved by anyone else takes the oblique planes along
    state.set_cursor(100, 120, 30)
    np.testing.assert_allclose(state.mpr.model.frame.centre, state.cursor_lps())


def test_no_rotation_means_no_oblique_step(state):
    assert state.mpr.step("axial", 1) is False


def test_reference_lines_are_the_other_views_traces(state):
    for rotated in (False, True):
        if rotated:
            state.mpr.rotate_in_view("axial", np.radians(20))
        for name in PLANES:
            lines = dict(state.mpr.reference_lines(name))
            assert set(lines) == set(PLANES) - {name}
            for other, line in lines.items():
                want = reference_line(state.mpr.view_plane(name), state.mpr.view_plane(other))
                np.testing.assert_allclose(line.start, want.start)
                np.testing.assert_allclose(line.end, want.end)
                # every point of the line lies on both planes
                for p in (line.start_lps, line.end_lps):
                    assert abs(state.mpr.view_plane(other).distance(p)) < 1e-6


@pytest.fixture(scope="module")
def philips(data_dir, tmp_path_factory):
    from medview.dicom.catalog.db import Catalog

    require((data_dir / STUDY).is_dir(), f"the Philips study at {data_dir / STUDY}")
    catalog = Catalog(tmp_path_factory.mktemp("cat") / "catalog.sqlite")
    catalog.index(data_dir / STUDY)
    volume = medview.load(data_dir / STUDY / "S2010")
    yield catalog, volume
    catalog.close()


def test_the_study_localizer_is_found_in_the_catalog(philips, data_dir):
    import pydicom

    catalog, volume = philips
    found = find_localizer(catalog, volume)
    assert found is not None
    ds = pydicom.dcmread(data_dir / STUDY / "S1000" / "I10", stop_before_pixels=True)
    want = ImagePlane.from_dicom(ds.ImagePositionPatient, ds.ImageOrientationPatient,
                                 ds.Rows, ds.Columns, ds.PixelSpacing)
    assert _same_plane(found.plane, want)
    assert found.frame_of_reference_uid == ds.FrameOfReferenceUID
    state = ViewerState()
    state.set_volume(volume)
    state.mpr.set_localizer(found)
    lines = dict(state.mpr.reference_lines("axial"))
    assert "localizer" in lines  # the sagittal scout cuts the axial view
    assert abs(want.distance(lines["localizer"].start_lps)) < 1e-6
    assert "localizer" not in dict(state.mpr.reference_lines("sagittal"))  # parallel


def test_no_localizer_without_one_or_in_another_frame(philips, ct_volume):
    catalog, volume = philips
    assert find_localizer(catalog, ct_volume) is None  # not in this catalog's studies
    found = find_localizer(catalog, volume)
    state = ViewerState()
    state.set_volume(volume)
    state.mpr.set_localizer(type(found)(found.plane, found.description, "1.2.3.other"))
    assert "localizer" not in dict(state.mpr.reference_lines("axial"))
    state.set_volume(ct_volume)
    assert state.mpr.model.localizer is None  # another series: another study's scout


def test_a_header_without_geometry_has_no_plane():
    from medview.dicom.scan.header import InstanceHeader

    assert localizer_plane(InstanceHeader(path="x")) is None
