"""Reference lines against plane intersections computed by hand in LPS, on the Philips study.

Real data: the Philips head phantom study of dcm_qa_ct — a sagittal localizer (S1000) and an
axial series with 18.5° gantry tilt (S2010), one frame of reference. Headers are read with
pydicom here (core takes numbers, not datasets).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import medview
from medview.core.reformat.oblique import MprFrame, mpr_plane
from medview.core.reformat.plane import ImagePlane
from medview.core.reformat.reference_lines import reference_line

STUDY = "dcm_qa_ct/In/Philips/S21610"


@pytest.fixture(scope="module")
def volume(data_dir):
    return medview.load(data_dir / STUDY / "S2010")


@pytest.fixture(scope="module")
def localizer(data_dir):
    ds = pydicom.dcmread(data_dir / STUDY / "S1000" / "I10", stop_before_pixels=True)
    assert "LOCALIZER" in ds.ImageType
    return ds


def _header(path):
    return pydicom.dcmread(path, stop_before_pixels=True)


def _plane(ds) -> ImagePlane:
    return ImagePlane.from_dicom(ds.ImagePositionPatient, ds.ImageOrientationPatient,
                                 ds.Rows, ds.Columns, ds.PixelSpacing)


def _hand_segment(a, b):
    """Where images a and b (datasets) meet, by hand: the line of their planes in LPS,
    then the part of it over both rectangles (pixel edges half a pixel around the centres)."""
    def geom(ds):
        iop = np.array(ds.ImageOrientationPatient, float)
        return (np.array(ds.ImagePositionPatient, float), iop[:3], iop[3:],
                float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]), ds.Rows, ds.Columns)
    ga, gb = geom(a), geom(b)
    na, nb = np.cross(ga[1], ga[2]), np.cross(gb[1], gb[2])
    d = np.cross(na, nb)
    d /= np.linalg.norm(d)
    x0 = np.linalg.solve(np.array([na, nb, d]), [na @ ga[0], nb @ gb[0], 0.0])
    lo, hi = -np.inf, np.inf
    for ipp, row_cos, col_cos, ps_r, ps_c, rows, cols in (ga, gb):
        for cos, ps, n in ((row_cos, ps_c, cols), (col_cos, ps_r, rows)):
            # pixel coordinate along this axis: (X − IPP)·cos / spacing, edges at −½ and n − ½
            c0, dc = (x0 - ipp) @ cos / ps, d @ cos / ps
            if abs(dc) < 1e-12:  # the line runs along this axis: inside or not at all
                assert -0.5 <= c0 <= n - 0.5
                continue
            s0, s1 = sorted(((-0.5 - c0) / dc, (n - 0.5 - c0) / dc))
            lo, hi = max(lo, s0), min(hi, s1)
    assert hi > lo
    return x0 + lo * d, x0 + hi * d


def _same_segment(line, ends, atol=1e-4):
    # (IOP's 7 digits are orthonormal to ~1e-7: the two ways differ by ~3e-5 mm over 250 mm)
    got = [line.start_lps, line.end_lps]
    if np.linalg.norm(got[0] - ends[0]) > np.linalg.norm(got[0] - ends[1]):
        got = got[::-1]
    np.testing.assert_allclose(got[0], ends[0], atol=atol)
    np.testing.assert_allclose(got[1], ends[1], atol=atol)


def test_localizer_on_axial_slice(volume, localizer):
    k = 27
    axial = _header(volume.metadata["source_files"][k])
    assert axial.FrameOfReferenceUID == localizer.FrameOfReferenceUID
    current = _plane(axial)
    # the volume's view of slice k is the file's own plane
    view = ImagePlane.from_volume_slice(volume, axis=2, index=k, horizontal=0, vertical=1)
    for attr in ("origin", "col_step", "row_step"):
        np.testing.assert_allclose(getattr(view, attr), getattr(current, attr), atol=1e-4)
    line = reference_line(current, _plane(localizer))
    _same_segment(line, _hand_segment(axial, localizer))
    # the localizer is the sagittal plane x = 0: on the axial slice, the column of x = 0
    u_expected = (0.0 - float(axial.ImagePositionPatient[0])) / float(axial.PixelSpacing[1]) + 0.5
    assert line.start[0] == pytest.approx(u_expected) and line.end[0] == pytest.approx(u_expected)
    assert 0 <= min(line.start[1], line.end[1]) < max(line.start[1], line.end[1]) <= axial.Rows


@pytest.mark.parametrize("k", [0, 27, 53])
def test_axial_slices_on_localizer(volume, localizer, k):
    axial = _header(volume.metadata["source_files"][k])
    line = reference_line(_plane(localizer), _plane(axial))
    _same_segment(line, _hand_segment(localizer, axial))
    # the trace of a slice tilted 18.5° (square localizer pixels: angle in pixels = in mm)
    du, dv = np.subtract(line.end, line.start)
    angle = np.degrees(np.arctan2(abs(dv), abs(du)))
    assert angle == pytest.approx(18.5, abs=0.05)
    full = axial.Rows * float(axial.PixelSpacing[0])
    if k == 0:
        # the lowest slice dips below the localizer's lower edge: clipped there
        assert max(line.start[1], line.end[1]) == pytest.approx(localizer.Rows)
        assert line.length_mm < full - 1.0
    else:
        # within the localizer, the trace spans the slice's whole column extent
        assert line.length_mm == pytest.approx(full, rel=1e-6)


def test_neighbouring_slices_are_one_plane_spacing_apart_on_localizer(volume, localizer):
    scout = _plane(localizer)
    lines = [reference_line(scout, _plane(_header(volume.metadata["source_files"][k])))
             for k in (20, 21)]
    a0, a1 = lines[0].start_lps, lines[0].end_lps
    direction = (a1 - a0) / np.linalg.norm(a1 - a0)
    gap = lines[1].start_lps - a0
    gap_perpendicular = np.linalg.norm(gap - (gap @ direction) * direction)
    assert gap_perpendicular == pytest.approx(2.5 * np.cos(np.radians(18.5)), abs=2e-3)


def test_reformat_planes_on_native_view(volume):
    k, j, i = 27, 300, 200
    current = ImagePlane.from_volume_slice(volume, axis=2, index=k, horizontal=0, vertical=1)
    coronal = ImagePlane.from_volume_slice(volume, axis=1, index=j, horizontal=0, vertical=2,
                                           flip_v=True)
    sagittal = ImagePlane.from_volume_slice(volume, axis=0, index=i, horizontal=1,
                                            vertical=2, flip_v=True)
    row = reference_line(current, coronal)
    assert row.start[1] == pytest.approx(j + 0.5) and row.end[1] == pytest.approx(j + 0.5)
    assert sorted((row.start[0], row.end[0])) == pytest.approx([0.0, 512.0])
    col = reference_line(current, sagittal)
    assert col.start[0] == pytest.approx(i + 0.5) and col.end[0] == pytest.approx(i + 0.5)
    assert sorted((col.start[1], col.end[1])) == pytest.approx([0.0, 512.0])


def test_mpr_lines_cross_at_the_crosshair(volume):
    centre = volume.index_to_lps([230.0, 280.0, 30.0])
    frame = MprFrame.acquisition(volume, centre).rotated_in_view("axial", np.radians(35))
    frame = frame.rotated_in_view("sagittal", np.radians(-20))
    current = mpr_plane(volume, frame, "axial")
    cu, cv = current.lps_to_display(centre)
    lines = [reference_line(current, mpr_plane(volume, frame, n))
             for n in ("coronal", "sagittal")]
    dirs = []
    for line in lines:
        d = np.subtract(line.end, line.start)
        rel = np.array([cu - line.start[0], cv - line.start[1]])
        assert abs(d[0] * rel[1] - d[1] * rel[0]) / np.linalg.norm(d) < 1e-6
        dirs.append(line.end_lps - line.start_lps)
    # the two traces are perpendicular in patient space (the planes are orthogonal)
    assert abs(dirs[0] @ dirs[1]) / np.prod([np.linalg.norm(d) for d in dirs]) < 1e-9


def test_no_line_when_parallel_or_outside(volume, localizer):
    a = _plane(_header(volume.metadata["source_files"][10]))
    b = _plane(_header(volume.metadata["source_files"][30]))
    assert reference_line(a, b) is None  # parallel slices
    scout = _plane(localizer)
    far = ImagePlane(b.origin + np.array([400.0, 0.0, 0.0]), b.col_step, b.row_step,
                     b.rows, b.columns)
    assert reference_line(scout, far) is None  # the slice lies beside the localizer
    # its infinite plane still crosses the localizer
    line = reference_line(scout, far, clip_to_other=False)
    assert line is not None and abs(far.distance(line.start_lps)) < 1e-6
