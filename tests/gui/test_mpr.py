"""The 2×2 layout on real series: crosshair, measurements by mouse, cine, colour maps, labels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from medview.app.state import ViewerState
from medview.core.labelmap import LabelMap
from medview.formats.volume_io import write_volume
from medview.gui.colormaps import colormap_lut
from medview.gui.main_window import MainWindow
from medview.gui.view_grid import ViewGrid


@pytest.fixture
def grid(app, qtbot, ct_volume):
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(1000, 900)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(ct_volume)
    grid.set_layout("2x2")
    QTest.qWait(50)
    return grid


def _click(view, pos: QPoint) -> None:
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)


def _drag(view, start: QPoint, end: QPoint) -> None:
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    steps = 6
    for i in range(1, steps + 1):
        QTest.mouseMove(vp, start + (end - start) * i / steps)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def test_grid_shows_three_planes_and_info(grid, ct_volume):
    assert grid.layout_name == "2x2"
    for plane, view in grid.views.items():
        assert view.isVisible()
        assert view.crosshair_visible()
        g = view.geometry_
        assert view.displayed_image().shape[:2] == (g.height, g.width)
        assert np.array_equal(view.displayed_image(),
                              g.image(ct_volume.array, grid.state.plane_slice(plane)))
    assert grid.info.isVisible()
    assert "crosshair" in grid.info.text()


def test_a_click_moves_the_other_views_to_the_same_patient_position(grid, ct_volume):
    state = grid.state
    axial = grid.views["axial"]
    state.set_zoom(3.0, "axial")  # several screen pixels per voxel: exact clicks
    col, row = 236, 281
    _click(axial, axial.viewport_pos_of_pixel(col, row))
    g = axial.geometry_
    clicked = np.asarray(ct_volume.index_to_lps(
        g.display_to_index(col + 0.5, row + 0.5, state.plane_slice("axial"))))
    assert np.allclose(state.cursor_lps(), clicked, atol=1e-6)
    for plane in ("coronal", "sagittal"):
        view = grid.views[plane]
        gp = view.geometry_
        k = view.displayed_slice
        assert k == state.plane_slice(plane)
        # the slice shown contains the clicked point: the crosshair's display point maps to it
        u, v = view.crosshair_display()
        shown = np.asarray(ct_volume.index_to_lps(gp.display_to_index(u, v, k)))
        assert np.allclose(shown, clicked, atol=1e-6)
        assert np.array_equal(view.displayed_image(), gp.image(ct_volume.array, k))
        # and the crosshair lines are drawn there (mm coordinates of the view)
        pw, ph = gp.pixel_mm
        assert view.crosshair[0].value() == pytest.approx(u * pw)
        assert view.crosshair[1].value() == pytest.approx(v * ph)


def test_scrolling_one_view_moves_the_crosshair_in_the_others(grid, qtbot):
    state = grid.state
    coronal = grid.views["coronal"]
    before = state.cursor
    coronal.setFocus()
    qtbot.keyClick(coronal, Qt.Key.Key_Down)
    assert state.cursor[1] == before[1] + 1  # coronal's normal is voxel y on an axial CT
    axial = grid.views["axial"]
    _u, v = axial.crosshair_display()
    assert v == pytest.approx(state.cursor[1] + 0.5)


def test_double_click_maximises_and_restores(grid):
    sagittal = grid.views["sagittal"]
    QTest.mouseDClick(sagittal.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, sagittal.viewport().rect().center())
    assert grid.layout_name == "single"
    assert grid.active_plane == "sagittal"
    assert sagittal.isVisible() and not grid.views["axial"].isVisible()
    assert not sagittal.crosshair_visible()
    QTest.mouseDClick(sagittal.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, sagittal.viewport().rect().center())
    assert grid.layout_name == "2x2"


def test_distance_measured_by_mouse_equals_the_geometry(grid, ct_volume):
    """Across the body on an axial slice: the two edges found in the pixels, measured by a
    drag between them, equal the distance of their patient positions."""
    state = grid.state
    state.set_tool("distance")
    axial = grid.views["axial"]
    k = state.plane_slice("axial")
    image = axial.displayed_image()
    row = image.shape[0] // 2
    body = np.nonzero(image[row] > -300)[0]
    c0, c1 = int(body[0]), int(body[-1])
    _drag(axial, axial.viewport_pos_of_pixel(c0, row), axial.viewport_pos_of_pixel(c1, row))
    [m] = state.measurements
    assert m.kind == "distance" and m.plane == "axial" and m.slice_index == k
    a = ct_volume.index_to_lps((c0, row, k))
    b = ct_volume.index_to_lps((c1, row, k))
    expected = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
    # the mouse lands on whole screen pixels: within one screen pixel of the view
    tolerance = axial.view_box.viewPixelSize()[0] * 2
    text = axial.measurement_texts[m.id]
    assert float(text.split()[0]) == pytest.approx(expected, abs=tolerance + 0.05)
    assert expected > 100  # a body, not a pixel


def test_roi_statistics_equal_numpy_on_the_same_pixels(grid, ct_volume):
    state = grid.state
    state.set_tool("rectangle")
    view = grid.views["coronal"]
    g = view.geometry_
    k = state.plane_slice("coronal")
    _drag(view, view.viewport_pos_of_pixel(60, 40), view.viewport_pos_of_pixel(200, 140))
    [m] = state.measurements
    # the pixels whose centres the drawn rectangle holds, found by NumPy from the corners
    u0, u1 = sorted((m.p0[0], m.p1[0]))
    v0, v1 = sorted((m.p0[1], m.p1[1]))
    cols = np.arange(g.width) + 0.5
    rows = np.arange(g.height) + 0.5
    image = g.image(ct_volume.array, k)
    pixels = image[(rows >= v0) & (rows <= v1)][:, (cols >= u0) & (cols <= u1)].astype(float)
    assert pixels.size > 1000
    text = view.measurement_texts[m.id]
    # the area of the drawn outline (what the SR saves), in the view's millimetres
    pw, ph = g.pixel_mm
    assert f"area {(u1 - u0) * pw * (v1 - v0) * ph:.1f} mm²" in text
    assert f"mean {pixels.mean():.1f}".rstrip("0").rstrip(".") in text
    assert f"max {pixels.max():g}" in text
    # Delete removes it
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert state.measurements == ()


def test_colour_map_and_label_overlay(grid, tmp_path, ct_volume):
    state = grid.state
    state.set_colormap("hot")
    axial = grid.views["axial"]
    lut = axial.image_item.lut
    assert lut.shape == (256, 3)
    assert tuple(lut[0]) == (0, 0, 0) and tuple(lut[-1]) == (255, 255, 255)
    assert np.array_equal(lut, colormap_lut("hot"))
    state.set_colormap("grey")
    assert axial.image_item.lut is None

    labels = LabelMap.like(ct_volume, (ct_volume.array > 200).astype(np.uint8))
    path = write_volume(labels, tmp_path / "bone.nii.gz")
    from medview.app.library import read_label_map

    state.set_labels(read_label_map(path))
    state.set_label_opacity(0.6)
    rgba = axial.label_item.image
    k = state.plane_slice("axial")
    mask = ct_volume.array[k] > 200
    assert mask.any()
    colour = labels.segments[0].color
    assert np.array_equal(rgba[mask][:, :3], np.tile(colour, (mask.sum(), 1)))
    assert np.all(rgba[mask][:, 3] == round(0.6 * 255))
    assert np.all(rgba[~mask][:, 3] == 0)


def test_a_label_map_on_another_grid_is_refused_with_a_message(app, qtbot, tmp_path,
                                                               ct_volume, demo_volume):
    window = MainWindow(catalog_path=tmp_path / "c.sqlite")
    qtbot.addWidget(window)
    window.state.set_volume(ct_volume)
    path = write_volume(LabelMap.like(demo_volume, np.zeros(demo_volume.shape, np.uint8)),
                        tmp_path / "other.nii.gz")
    assert window.open_label_map(path) is False
    assert window.state.labels is None
    assert "grid" in window.last_error.message


def test_cine_plays_and_wraps(app, qtbot, tmp_path, ct_volume):
    window = MainWindow(catalog_path=tmp_path / "c.sqlite")
    qtbot.addWidget(window)
    window.show()
    window.state.set_volume(ct_volume)
    n = ct_volume.shape[0]
    window.state.set_slice(n - 2)
    window.cine_fps.setValue(60)
    seen = []
    window.state.slice_changed.connect(seen.append)
    window.cine_action.trigger()  # Space
    assert window.cine_timer.isActive()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=3000)
    window.cine_action.trigger()
    assert not window.cine_timer.isActive()
    assert seen[:3] == [n - 1, 0, 1]  # wraps to the first slice
    assert window.cine_timer.interval() == round(1000 / 60)


def test_layout_action_switches_to_the_grid(app, qtbot, tmp_path, demo_volume):
    window = MainWindow(catalog_path=tmp_path / "c.sqlite")
    qtbot.addWidget(window)
    window.show()
    window.state.set_volume(demo_volume)
    assert window.view_grid.layout_name == "single"
    assert window.viewer is window.views["sagittal"]  # the demo is a sagittal series
    window.layout_action.trigger()
    assert window.view_grid.layout_name == "2x2"
    assert all(v.isVisible() for v in window.views.values())
    out = window.save_view_png(tmp_path / "grid.png")
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert image.width() == window.view_grid.width()


def test_the_tool_bar_offers_the_window_presets(app, qtbot, tmp_path, ct_volume):
    window = MainWindow(catalog_path=tmp_path / "c.sqlite")
    qtbot.addWidget(window)
    window.state.set_volume(ct_volume)
    menu = window.presets_button.menu()
    lung = next(a for a in menu.actions() if a.text().startswith("Lung"))
    lung.trigger()
    assert window.state.window == (-600, 1500)
