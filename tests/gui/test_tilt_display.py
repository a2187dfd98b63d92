"""A gantry-tilted CT's reformats are drawn in patient geometry, and stay exact.

Real data: the Philips head phantom of dcm_qa_ct (18.5° tilt, a sheared grid). Two bright
markers are written into acquired slices at pixels whose patient positions come from those
slices' own headers (ImagePositionPatient, ImageOrientationPatient, PixelSpacing); the
sagittal view is grabbed and the markers must appear where the patient geometry puts them:
their screen displacement is their anterior–posterior and superior–inferior displacement
in the patient, at the view's scale (on the sheared index grid it is off by ~16 mm).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from scipy import ndimage

from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.gui.slice_viewer import SliceViewer
from medview.gui.view_grid import ViewGrid
from tests.gui.conftest import require

#: (slice, row) of the two markers; both in column COLUMN, so one sagittal view shows them
MARKERS = ((10, 200), (40, 330))
COLUMN = 256
BRIGHT = 20000


@pytest.fixture(scope="module")
def tilted(data_dir):
    import medview

    path = data_dir / "dcm_qa_ct" / "In" / "Philips" / "S21610"
    require(path.is_dir(), f"the tilted Philips CT at {path}")
    return medview.load(path, series=201)


def header_lps(path: str, row: int, column: int) -> np.ndarray:
    """Patient position (LPS, mm) of pixel (row, column) from the file's own header."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    ps = [float(v) for v in ds.PixelSpacing]  # row spacing, column spacing
    return (np.asarray(ds.ImagePositionPatient, dtype=float)
            + column * ps[1] * iop[:3] + row * ps[0] * iop[3:])


def marked(volume: Volume) -> Volume:
    """``volume`` with a 3×3-pixel block of BRIGHT on one slice at each marker."""
    array = np.array(volume.array)
    for k, r in MARKERS:
        array[k, r - 1:r + 2, COLUMN - 1:COLUMN + 2] = BRIGHT
    return volume.with_array(array)


def blob_centres(viewer: SliceViewer) -> list[np.ndarray]:
    """Viewport centres (x, y) of the white blobs in a grab of the view, left to right."""
    image = viewer.grab().toImage()
    w, h = image.width(), image.height()
    ptr = image.constBits()
    rgba = np.frombuffer(ptr, dtype=np.uint8).reshape(h, image.bytesPerLine() // 4, 4)[:, :w]
    white = (rgba[..., :3].min(axis=2) > 240)
    labels, n = ndimage.label(white)
    sizes = ndimage.sum(white, labels, range(1, n + 1))
    # the markers, not the overlay text: the two largest blobs of plain white
    keep = np.argsort(sizes)[::-1][:2] + 1
    centres = [np.array(ndimage.center_of_mass(white, labels, int(k)))[::-1] + 0.5
               for k in keep]
    return sorted(centres, key=lambda c: c[0])


@pytest.fixture
def sagittal(app, qtbot, tilted):
    state = ViewerState()
    viewer = SliceViewer(state, plane="sagittal")
    qtbot.addWidget(viewer)
    viewer.resize(700, 700)
    viewer.show()
    qtbot.waitExposed(viewer)
    state.set_volume(marked(tilted))
    state.set_window(BRIGHT - 100.0, 100.0)  # only the markers are white
    state.set_cursor(COLUMN, 256, 27)
    viewer.set_annotations_visible(False)
    QTest.qWait(20)
    return viewer


def test_the_sagittal_reformat_of_a_tilted_ct_is_in_patient_geometry(sagittal, tilted):
    g = sagittal.geometry_
    assert g.sheared and not sagittal.state.geometry("axial").sheared  # acquired plane as is
    files = tilted.metadata["source_files"]
    lps = [header_lps(files[k], r, COLUMN) for k, r in MARKERS]
    centres = blob_centres(sagittal)
    assert len(centres) == 2
    mm_per_px = sagittal.view_box.viewPixelSize()
    assert math.isclose(mm_per_px[0], mm_per_px[1], rel_tol=1e-3)
    # anterior (−P) on the left, superior up: screen right = +P, screen down = −S
    delta = lps[1] - lps[0]
    expected = np.array([delta[1], -delta[2]]) / mm_per_px[0]
    got = centres[1] - centres[0]
    assert np.allclose(got, expected, atol=1.5), (got, expected)
    # the sheared index grid would have put them ~16 mm (tens of pixels) elsewhere
    pw, ph = g.pixel_mm
    (k0, r0), (k1, r1) = MARKERS
    grid_delta = np.array([(r1 - r0) * pw, -(k1 - k0) * ph]) / mm_per_px[0]
    assert np.abs(grid_delta - expected).max() > 20
    # and each marker is where the view's own mapping says its patient position is
    for point, centre in zip(lps, centres[::-1] if lps[0][1] > lps[1][1] else centres,
                             strict=True):
        ijk = tilted.lps_to_index(point)
        u, v = g.index_to_display(ijk)
        pos = sagittal.viewport_pos_of_display(u, v)
        assert np.hypot(pos.x() - centre[0], pos.y() - centre[1]) <= 1.5


def test_cursor_readout_crosshair_and_distance_are_exact_on_the_tilted_reformat(
        sagittal, tilted, qtbot):
    files = tilted.metadata["source_files"]
    lps = [header_lps(files[k], r, COLUMN) for k, r in MARKERS]
    centres = blob_centres(sagittal)
    if lps[0][1] > lps[1][1]:
        centres = centres[::-1]
    vp = sagittal.viewport()
    # the readout under the mouse: the marker's voxel and its header position
    for (k, r), point, centre in zip(MARKERS, lps, centres, strict=True):
        samples = []
        sagittal.cursor_sample.connect(samples.append)
        QTest.mouseMove(vp, QPoint(round(centre[0] - 0.5), round(centre[1] - 0.5)))
        sagittal.cursor_sample.disconnect(samples.append)
        assert samples and samples[-1] is not None
        x, y, z = samples[-1].index
        # the mouse rests within the marker's 3 pixels (a screen pixel is ~0.7 voxel)
        assert (x, z) == (COLUMN, k) and abs(y - r) <= 1
        # and the readout is the header position of the voxel under it
        assert np.allclose(samples[-1].lps, header_lps(files[k], y, COLUMN), atol=0.01)
        assert np.linalg.norm(np.asarray(samples[-1].lps) - point) <= 0.5
    # the crosshair on marker 0: its lines cross at the marker, the row line along the
    # tilted acquired slice (18.5° from horizontal), the column line vertical
    k, r = MARKERS[0]
    sagittal.set_crosshair_visible(True)
    sagittal.state.set_cursor(COLUMN, r, k)
    h_line, v_line = sagittal.crosshair[1], sagittal.crosshair[0]
    crossing = sagittal.mapFromScene(sagittal.view_box.mapViewToScene(QPointF(h_line.pos())))
    assert np.hypot(crossing.x() - centres[0][0], crossing.y() - centres[0][1]) <= 1.5
    assert math.isclose(abs(h_line.angle), 18.5, abs_tol=0.1)
    assert math.isclose(v_line.angle % 180.0, 90.0, abs_tol=1e-6)
    # a distance drawn by mouse from one marker to the other measures their true distance
    sagittal.state.set_tool("distance")
    start, end = (QPoint(round(c[0] - 0.5), round(c[1] - 0.5)) for c in centres)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 7):
        QTest.mouseMove(vp, start + (end - start) * i / 6)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    (m,) = sagittal.state.measurements
    text = sagittal.measurement_texts[m.id]
    measured = float(text.split()[0])
    true = float(np.linalg.norm(lps[1] - lps[0]))
    # one screen pixel is ~0.3 mm here; the index grid's error would be ~16 mm
    assert abs(measured - true) <= 1.0, (measured, true)


def test_screenshot_of_a_tilted_head_in_the_grid(app, qtbot, data_dir):
    import medview

    path = data_dir / "dcm_qa_ct" / "In" / "GE"
    require(path.is_dir(), f"the tilted GE head CT at {path}")
    volume = medview.load(path)
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(900, 900)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(volume)
    grid.set_layout("2x2")
    QTest.qWait(20)
    grid.grab().save("/tmp/display_tilt_ge.png")
    # the sagittal image is a parallelogram: its top-left corner is empty background
    sag = grid.views["sagittal"]
    g = sag.geometry_
    assert g.sheared
    m = g.view_matrix
    assert math.isclose(math.degrees(math.atan2(m[1, 0], m[0, 0])), 18.5, abs_tol=0.1)


def test_the_coronal_reformat_of_a_tilted_ct_is_in_patient_geometry(app, qtbot, tilted):
    row, marks = 250, ((10, 150), (40, 350))  # (slice, column) in one image row
    files = tilted.metadata["source_files"]
    array = np.array(tilted.array)
    for k, c in marks:
        array[k, row - 1:row + 2, c - 1:c + 2] = BRIGHT
    state = ViewerState()
    viewer = SliceViewer(state, plane="coronal")
    qtbot.addWidget(viewer)
    viewer.resize(700, 700)
    viewer.show()
    qtbot.waitExposed(viewer)
    state.set_volume(tilted.with_array(array))
    state.set_window(BRIGHT - 100.0, 100.0)
    state.set_cursor(256, row, 27)
    viewer.set_annotations_visible(False)
    QTest.qWait(20)
    lps = [header_lps(files[k], row, c) for k, c in marks]
    centres = blob_centres(viewer)
    mm_per_px = viewer.view_box.viewPixelSize()[0]
    # the patient's right on the screen's left (+L to the right), superior up
    delta = lps[1] - lps[0]
    expected = np.array([delta[0], -delta[2]]) / mm_per_px
    assert np.allclose(centres[1] - centres[0], expected, atol=1.5)


def test_a_stack_tilted_along_its_slices_is_drawn_as_an_isometry(app):
    """A tilt written the other way (untilted images stepping along a tilted line): the
    sagittal's display → view mapping keeps every in-plane distance, superior up."""
    from medview.app.planes import plane_geometry

    t = math.radians(20.0)
    direction = np.column_stack([(1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                                 (0.0, math.sin(t), math.cos(t))])
    spacing = (0.5, 0.5, 3.0)
    volume = Volume(np.zeros((30, 64, 64), np.int16), spacing, (0.0, 0.0, 0.0), direction)
    g = plane_geometry("sagittal", volume.shape, spacing, direction)
    assert g.sheared
    rng = np.random.default_rng(3)
    points = rng.uniform(0, 60, size=(6, 2))
    view = np.array([g.to_view(u, v) for u, v in points])
    lps = np.array([volume.index_to_lps(g.display_to_index(u, v, 10)) for u, v in points])
    for i, j in itertools.combinations(range(len(points)), 2):
        assert math.isclose(np.linalg.norm(view[i] - view[j]),
                            np.linalg.norm(lps[i] - lps[j]), rel_tol=1e-9)
        # screen down is the patient's inferior, screen right posterior
        assert math.isclose(view[j, 1] - view[i, 1], -(lps[j, 2] - lps[i, 2]), abs_tol=1e-9)
        assert math.isclose(view[j, 0] - view[i, 0], lps[j, 1] - lps[i, 1], abs_tol=1e-9)
    # and back: view → display is the inverse
    u, v = g.from_view(*view[0])
    assert np.allclose((u, v), points[0])
    right, down = g.screen_axes(direction)
    assert np.allclose(right, (0, 1, 0)) and np.allclose(down, (0, 0, -1))
