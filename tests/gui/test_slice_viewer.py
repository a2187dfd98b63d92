"""The slice viewer widget on real series: scrolling, window/level drag, cursor readout, aspect."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from viewer_helpers import make_viewer

from medview.core.volume import Volume
from medview.gui.overlays import corner_texts
from medview.gui.slice_viewer import SliceViewer


def _viewer(qtbot, volume: Volume | None, size=(640, 640)) -> SliceViewer:
    return make_viewer(qtbot, volume, size)


def _wheel(viewer: SliceViewer, notches: int) -> None:
    """Turn the wheel over the centre of the view; positive = away from the user."""
    vp = viewer.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    event = QWheelEvent(
        pos, QPointF(vp.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, event)


def _drag(viewer: SliceViewer, button, start: QPoint, offsets) -> None:
    vp = viewer.viewport()
    QTest.mousePress(vp, button, Qt.KeyboardModifier.NoModifier, start)
    for dx, dy in offsets:
        QTest.mouseMove(vp, start + QPoint(dx, dy))
    end = start + QPoint(*offsets[-1])
    QTest.mouseRelease(vp, button, Qt.KeyboardModifier.NoModifier, end)


def _assert_shows(viewer: SliceViewer, volume: Volume, k: int) -> None:
    assert viewer.state.slice_index == k
    assert viewer.displayed_slice == k
    assert np.array_equal(viewer.displayed_image(), volume.array[k])
    assert f"Slice {k + 1}/{volume.shape[0]}" in viewer.overlays["bottom_left"].text()


def test_empty_viewer_shows_a_hint(app, qtbot):
    viewer = _viewer(qtbot, None)
    assert viewer.hint.isVisible()
    assert viewer.displayed_image() is None
    _wheel(viewer, -1)  # nothing open: nothing happens, nothing breaks
    qtbot.keyClick(viewer, Qt.Key.Key_Down)


def test_opening_shows_the_middle_slice_windowed(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    assert not viewer.hint.isVisible()
    _assert_shows(viewer, demo_volume, 17)
    assert tuple(viewer.image_item.levels) == pytest.approx(viewer.state.window_levels)


def test_wheel_pages_through_slices(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    _wheel(viewer, -1)  # towards the user: next slice
    _assert_shows(viewer, demo_volume, 18)
    _wheel(viewer, -3)
    _assert_shows(viewer, demo_volume, 21)
    _wheel(viewer, 2)
    _assert_shows(viewer, demo_volume, 19)
    _wheel(viewer, 100)
    _assert_shows(viewer, demo_volume, 0)


def test_keys_page_through_slices(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    qtbot.keyClick(viewer, Qt.Key.Key_Down)
    _assert_shows(viewer, demo_volume, 18)
    qtbot.keyClick(viewer, Qt.Key.Key_PageDown)
    _assert_shows(viewer, demo_volume, 19)
    qtbot.keyClick(viewer, Qt.Key.Key_Up)
    qtbot.keyClick(viewer, Qt.Key.Key_PageUp)
    _assert_shows(viewer, demo_volume, 17)
    qtbot.keyClick(viewer, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    _assert_shows(viewer, demo_volume, 27)
    qtbot.keyClick(viewer, Qt.Key.Key_End)
    _assert_shows(viewer, demo_volume, 34)
    qtbot.keyClick(viewer, Qt.Key.Key_Down)
    _assert_shows(viewer, demo_volume, 34)
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    _assert_shows(viewer, demo_volume, 0)


def test_left_drag_right_widens_the_window(app, qtbot, ct_volume):
    viewer = _viewer(qtbot, ct_volume)
    c0, w0 = viewer.state.window
    centre = viewer.viewport().rect().center()
    _drag(viewer, Qt.MouseButton.LeftButton, centre, [(20, 0), (60, 0), (100, 0)])
    c1, w1 = viewer.state.window
    assert w1 > w0
    assert c1 == pytest.approx(c0)
    assert tuple(viewer.image_item.levels) == pytest.approx((c1 - w1 / 2, c1 + w1 / 2))
    _drag(viewer, Qt.MouseButton.LeftButton, centre, [(-20, 0), (-100, 0)])
    assert viewer.state.window_width < w1


def test_left_drag_up_lowers_the_level(app, qtbot, ct_volume):
    viewer = _viewer(qtbot, ct_volume)
    c0, w0 = viewer.state.window
    centre = viewer.viewport().rect().center()
    _drag(viewer, Qt.MouseButton.LeftButton, centre, [(0, -20), (0, -80)])
    c1, w1 = viewer.state.window
    assert c1 < c0
    assert w1 == pytest.approx(w0)
    assert viewer.overlays["bottom_right"].text() == corner_texts(viewer.state)["bottom_right"]
    _drag(viewer, Qt.MouseButton.LeftButton, centre, [(0, 20), (0, 150)])
    assert viewer.state.window_center > c1


def test_right_drag_zooms_and_reset_fits_again(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    assert viewer.state.zoom == pytest.approx(1.0, abs=1e-3)
    centre = viewer.viewport().rect().center()
    _drag(viewer, Qt.MouseButton.RightButton, centre, [(0, -10), (0, -60)])
    assert viewer.state.zoom > 1.5
    assert viewer.current_zoom() == pytest.approx(viewer.state.zoom, rel=1e-3)
    assert f"Zoom {viewer.state.zoom:.2f}×" in viewer.overlays["bottom_right"].text()
    viewer.state.reset()
    assert viewer.state.zoom == 1.0
    assert viewer.current_zoom() == pytest.approx(1.0, rel=1e-3)
    viewer.state.set_zoom(2.0)  # the state drives the view too
    assert viewer.current_zoom() == pytest.approx(2.0, rel=1e-3)


def test_cursor_readout_is_the_voxel_under_the_mouse(app, qtbot, ct_volume):
    viewer = _viewer(qtbot, ct_volume)
    k = viewer.state.slice_index
    samples = []
    viewer.cursor_sample.connect(samples.append)
    for x, y in [(100, 400), (256, 256), (511, 0)]:
        QTest.mouseMove(viewer.viewport(), viewer.viewport_pos_of_pixel(x, y))
        # the move goes through the window system's queue: under load it may come a little
        # later than mouseMove returns (bounded wait; the readout must be this voxel's)
        qtbot.waitUntil(lambda x=x, y=y: bool(samples) and samples[-1] is not None
                        and samples[-1].index == (x, y, k), timeout=5000)
        sample = samples[-1]
        assert sample.index == (x, y, k)
        assert sample.value == ct_volume.array[k, y, x]
        assert sample.lps == pytest.approx(tuple(ct_volume.index_to_lps((x, y, k))))
    # scrolling under a still mouse updates the readout
    qtbot.keyClick(viewer, Qt.Key.Key_Down)
    assert samples[-1].index == (511, 0, k + 1)
    assert samples[-1].value == ct_volume.array[k + 1, 0, 511]


def test_pixels_keep_their_physical_aspect_ratio(app, qtbot):
    # 0.5 mm columns, 2 mm rows: 40 columns x 10 rows are 20 mm x 20 mm, a square on screen
    volume = Volume(np.arange(2 * 10 * 40, dtype=np.int16).reshape(2, 10, 40),
                    spacing=(0.5, 2.0, 3.0), metadata={"Modality": "MR"})
    viewer = _viewer(qtbot, volume, size=(500, 400))
    top_left = viewer.viewport_pos_of_pixel(-0.5, -0.5)
    bottom_right = viewer.viewport_pos_of_pixel(39.5, 9.5)
    width = bottom_right.x() - top_left.x()
    height = bottom_right.y() - top_left.y()
    assert height > 0  # row 0 at the top
    assert width == pytest.approx(height, abs=2)
    # and the image fits the view (zoom 1): its larger side fills the smaller view side
    assert min(width, height) == pytest.approx(min(viewer.viewport().width(),
                                                   viewer.viewport().height()), abs=3)


def test_demo_pixels_are_square_and_centred(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume, size=(800, 600))
    a = viewer.viewport_pos_of_pixel(0, 0)
    b = viewer.viewport_pos_of_pixel(255, 255)
    assert b.x() - a.x() == pytest.approx(b.y() - a.y(), abs=2)
    mid = (a + b) / 2
    vp = viewer.viewport()
    assert mid.x() == pytest.approx(vp.width() / 2, abs=3)
    assert mid.y() == pytest.approx(vp.height() / 2, abs=3)
