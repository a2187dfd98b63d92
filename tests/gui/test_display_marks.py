"""What the views mark on the image: made-up slices, the warning badge, texts that never
overlap, the zoom rate of a right drag, the even 2×2 grid and smooth display."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from viewer_helpers import make_viewer

import medview
from medview.app.measurements import Measurement
from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.gui.view_grid import ViewGrid
from phantoms import write_ct_series


def grab_rgb(widget) -> np.ndarray:
    """The widget as drawn, ``[row, column, (r, g, b)]``."""
    image = widget.grab().toImage()
    w, h = image.width(), image.height()
    arr = np.frombuffer(image.constBits(), dtype=np.uint8)
    arr = arr.reshape(h, image.bytesPerLine() // 4, 4)[:, :w]
    return arr[..., 2::-1].astype(int)  # BGRA (little endian ARGB32) → RGB


def orange(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 200) & (g > 110) & (g < 185) & (b < 90)


@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    """A CT of 8 slices 4 mm apart whose 4th file (at 12 mm) is missing: slice 3 made up."""
    folder = tmp_path_factory.mktemp("gapped")
    files = write_ct_series(folder, shape=(8, 64, 64), spacing_xyz=(1.0, 1.0, 4.0), seed=21)
    files[3].unlink()
    return medview.load(folder)


@pytest.fixture
def grid(app, qtbot, gapped):
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(800, 800)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(gapped)
    grid.set_layout("2x2")
    for view in grid.views.values():
        view.set_crosshair_visible(False)  # its yellow is not the marks' orange
    QTest.qWait(20)
    return grid


def test_a_made_up_slice_is_marked_on_the_acquired_plane(grid):
    state, axial = grid.state, grid.views["axial"]
    badge = axial.warning_badge.geometry()

    def orange_on_image():
        mask = orange(grab_rgb(axial))
        mask[badge.top():badge.bottom() + 1, badge.left():badge.right() + 1] = False
        return int(mask.sum())

    state.set_cursor(32, 32, 2)
    assert axial.made_up.current_mark() == ""
    assert orange_on_image() == 0
    state.set_cursor(32, 32, 3)
    assert axial.made_up.current_mark() == (
        "INTERPOLATED slice\ninterpolated between acquired slices at 8.0 and 16.0 mm")
    assert orange_on_image() > 200  # the dashed frame and the mark's text
    mark = axial.label_rect(axial.made_up.label)
    assert not any(mark.intersects(r) for r in axial.text_rects())


def test_reformats_tint_the_rows_of_the_made_up_slice(grid):
    for plane in ("coronal", "sagittal"):
        view = grid.views[plane]
        g = view.geometry_
        assert g.vertical == 2 and g.flip_v  # z runs up the screen
        assert view.made_up.band_rows() == [(4, 4)]  # z = 3 of 8, shown from the top
        rgb = grab_rgb(view)
        for row, tinted in ((2.5, False), (3.5, False), (4.5, True), (5.5, False)):
            p = view.viewport_pos_of_display(20.0, row) + view.viewport().pos()
            r, _, b = rgb[p.y(), p.x()]
            assert (r - b > 25) == tinted, (plane, row, r, b)


def test_the_warning_badge_stays_and_opens_the_details(grid, gapped, qtbot):
    for view in grid.views.values():
        badge = view.warning_badge
        assert badge.isVisible() and badge.text() == f"⚠ {len(gapped.warnings)}"
        c = badge.geometry().center()
        around = grab_rgb(view)[c.y() - 6:c.y() + 7, c.x() - 6:c.x() + 7]
        assert orange(around).sum() >= 20  # drawn in orange on the view
    badge = grid.views["coronal"].warning_badge
    with qtbot.waitSignal(badge.opened, timeout=2000) as blocker:
        QTest.mouseClick(badge, Qt.MouseButton.LeftButton)
    dialog = blocker.args[0]
    assert dialog.isVisible()
    text = dialog.text.text()
    assert "missing" in text and "1 of 8 slices interpolated" in text
    dialog.close()
    assert badge.isVisible()  # unlike the status bar message, it does not go away


def test_texts_never_overlap_on_a_small_view(app, qtbot, ct_volume):
    long = ct_volume.with_array(
        ct_volume.array,
        PatientName="Wolfeschlegelsteinhausenbergerdorff^Hubert Blaine^Maximilian",
        PatientID="ID-0123456789-ABCDEFGHIJ",
        SeriesDescription="Abdomen arterial phase thin slices soft tissue kernel B30f 1 mm")
    viewer = make_viewer(qtbot, long, size=(200, 200))
    assert viewer.warning_badge.isVisible()
    # measurements in the top left corner (under the patient's name) and the bottom right
    k = viewer.state.plane_slice(viewer.plane)
    viewer.state.set_tool("distance")
    for p0, p1 in (((10, 10), (60, 40)), ((400, 450), (500, 500)), ((30, 480), (90, 500))):
        viewer.state.add_measurement(Measurement("distance", viewer.plane, k, p0, p1))
    viewer.grab()
    rects = viewer.text_rects() + [viewer.label_rect(x) for x in viewer.floating_labels()]
    assert len(rects) >= 1 + 4 + 4 + 3 - 1  # badge, corners, letters, measurement labels
    for a, b in itertools.combinations(rects, 2):
        assert not a.intersects(b), (a, b)
    assert viewer.overlays["top_left"].shown_text().endswith("…")
    # on a large view nothing is cut
    viewer.resize(1400, 1000)
    QTest.qWait(10)
    assert viewer.overlays["top_left"].shown_text() == viewer.overlays["top_left"].text()


def test_right_drag_zooms_twice_per_100_pixels(app, qtbot, demo_volume):
    viewer = make_viewer(qtbot, demo_volume)
    vp = viewer.viewport()
    z0 = viewer.state.zoom
    start = vp.rect().center()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start)
    for dy in range(10, 101, 10):
        QTest.mouseMove(vp, start - QPoint(0, dy))
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                       start - QPoint(0, 100))
    assert viewer.state.zoom / z0 == pytest.approx(2.0, rel=0.05)


def test_the_2x2_grid_splits_evenly_whatever_the_texts(grid, gapped):
    long = gapped.with_array(gapped.array)
    long = Volume(long.array, long.spacing, long.origin, long.direction, long.metadata,
                  tuple(f"warning {i}: " + "a long explanation " * 8 for i in range(6)))
    grid.resize(700, 480)
    grid.state.set_volume(long)
    QTest.qWait(20)
    cells = [grid.views[p].geometry() for p in ("axial", "coronal", "sagittal")]
    cells.append(grid.info.geometry())
    assert max(c.width() for c in cells) - min(c.width() for c in cells) <= 1
    assert max(c.height() for c in cells) - min(c.height() for c in cells) <= 1
    # and one view alone fills the whole area (the hidden cells keep no share)
    grid.set_layout("single")
    QTest.qWait(10)
    assert grid.active_view.geometry() == grid.rect()


def _edge_values(viewer) -> np.ndarray:
    """Grey values along the middle row of the view, across the image's vertical edge."""
    a = viewer.viewport_pos_of_display(4.0, 8.0) + viewer.viewport().pos()
    b = viewer.viewport_pos_of_display(12.0, 8.0) + viewer.viewport().pos()
    return grab_rgb(viewer)[a.y(), a.x():b.x(), 0]


def test_smooth_display_blends_a_zoomed_edge_and_sharp_does_not(app, qtbot):
    array = np.zeros((3, 16, 16), dtype=np.int16)
    array[:, :, 8:] = 1000
    viewer = make_viewer(qtbot, Volume(array, (1.0, 1.0, 1.0)))
    viewer.state.set_window(500.0, 1000.0)
    viewer.set_annotations_visible(False)
    sharp = _edge_values(viewer)
    assert set(np.unique(sharp)) <= {0, 255}
    viewer.image_item.set_smooth(True)
    smooth = _edge_values(viewer)
    between = (smooth > 20) & (smooth < 235)
    assert between.sum() >= 10  # a ramp of tens of screen pixels across the edge
    assert smooth[0] < 20 and smooth[-1] > 235


def test_the_smooth_display_choice_is_a_view_menu_toggle_kept_in_settings(app, qtbot,
                                                                          tmp_path):
    from medview.gui.main_window import MainWindow

    settings = tmp_path / "settings.ini"
    win = MainWindow(catalog_path=tmp_path / "c.sqlite", settings_path=settings,
                     thumbnail_dir=tmp_path / "thumbs")
    qtbot.addWidget(win)
    assert not win.smooth_action.isChecked()
    assert not any(v.image_item.smooth for v in win.views.values())
    view_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    assert win.smooth_action in view_menu.actions()
    win.smooth_action.trigger()
    assert all(v.image_item.smooth for v in win.views.values())
    win.settings.sync()
    again = MainWindow(catalog_path=tmp_path / "c.sqlite", settings_path=settings,
                       thumbnail_dir=tmp_path / "thumbs")
    qtbot.addWidget(again)
    assert again.smooth_action.isChecked()
    assert all(v.image_item.smooth for v in again.views.values())
    for w in (win, again):
        assert w.tasks.shutdown(timeout_ms=10_000)


def test_stand_ins_arriving_with_a_replaced_volume_are_marked(grid, gapped):
    state, axial = grid.state, grid.views["axial"]
    standin = "unreadable file IM0006.dcm: pixel data truncated"
    entries = (*gapped.metadata["made_up_slices"], (5, standin))
    state.replace_volume(gapped.with_array(gapped.array, made_up_slices=entries))
    state.set_cursor(32, 32, 5)
    assert axial.made_up.current_mark() == f"MISSING — stand-in slice\n{standin}"
    assert grid.views["coronal"].made_up.band_rows() == [(2, 2), (4, 4)]
