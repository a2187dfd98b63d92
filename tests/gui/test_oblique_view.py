"""Oblique MPR on screen (issue 17): a rotated frame shows the expected plane, the crosshair
drag turns the other planes, the reset gives back the acquired views.

Real CT (KiTS). The expected picture is :func:`medview.core.reformat.oblique.sample_plane` of the
frame's plane, windowed; it is compared with the grab pixel by pixel through the mapping the
view uses (display → view mm → ViewBox → viewport).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from viewer_helpers import grab_rgb

from medview.app.planes import PLANES
from medview.app.state import ViewerState
from medview.core.reformat.oblique import MprFrame, mpr_plane, sample_plane
from medview.gui.view_grid import ViewGrid

CURSOR = (260, 250, 60)
WINDOW = (0.0, 4000.0)  # a wide window: neighbouring voxels differ by a grey level or two


@pytest.fixture
def grid(app, qtbot, ct_volume):
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(1000, 1000)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(ct_volume)
    grid.set_layout("2x2")
    state.set_cursor(*CURSOR)
    state.set_window(*WINDOW)
    qtbot.waitUntil(lambda: all(v.isVisible() and v.width() > 400 for v in grid.views.values()))
    return grid


def _widget_of_view_mm(view, x: float, y: float) -> np.ndarray:
    scene = view.view_box.mapViewToScene(QPointF(x, y))
    p = view.viewportTransform().map(scene)
    offset = view.viewport().mapTo(view, QPoint(0, 0))
    return np.array([p.x() + offset.x(), p.y() + offset.y()])


def _expected_grey(view, image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per widget pixel: the windowed grey of the image pixel under its centre, and whether
    the centre is on the image (at least 1.5 image pixels in from its edge)."""
    o = _widget_of_view_mm(view, *(matrix @ [0.0, 0.0, 1.0]))
    a = np.column_stack([_widget_of_view_mm(view, *(matrix @ [1.0, 0.0, 1.0])) - o,
                         _widget_of_view_mm(view, *(matrix @ [0.0, 1.0, 1.0])) - o])
    inv = np.linalg.inv(a)
    ys, xs = np.mgrid[0:view.height(), 0:view.width()] + 0.5
    u = inv[0, 0] * (xs - o[0]) + inv[0, 1] * (ys - o[1])
    v = inv[1, 0] * (xs - o[0]) + inv[1, 1] * (ys - o[1])
    rows, cols = image.shape
    on = (u >= 1.5) & (u < cols - 1.5) & (v >= 1.5) & (v < rows - 1.5)
    c = np.clip(np.floor(u).astype(int), 0, cols - 1)
    r = np.clip(np.floor(v).astype(int), 0, rows - 1)
    centre, width = WINDOW
    grey = np.clip((image[r, c] - (centre - width / 2)) / width * 255.0, 0, 255)
    return grey, on


def _match(view, image, matrix) -> tuple[float, float]:
    """Fraction of judged widget pixels within 4 grey levels, and the mean difference."""
    grey, on = _expected_grey(view, image, matrix)
    got = grab_rgb(view)[..., 0].astype(float)
    # not under the corner texts and letters, nor on the crosshair's axes
    for label in (*view.overlays.values(), *view.edge_labels.values()):
        r = label.geometry()
        on[max(r.top(), 0):r.bottom() + 1, max(r.left(), 0):r.right() + 1] = False
    diff = np.abs(got - grey)[on]
    assert diff.size > 50_000
    return float((diff <= 4).mean()), float(np.median(diff))


def test_a_rotated_frame_shows_the_sampled_plane(grid, ct_volume):
    state = grid.state
    for view in grid.views.values():
        view.set_crosshair_visible(False)
    state.mpr.rotate_in_view("axial", math.radians(30))
    frame = MprFrame.acquisition(ct_volume, centre=state.cursor_lps()).rotated_in_view(
        "axial", math.radians(30))
    for name in ("coronal", "sagittal"):
        view = grid.views[name]
        plane = mpr_plane(ct_volume, frame, name)
        image = sample_plane(ct_volume, plane)
        np.testing.assert_array_equal(view.oblique.item.image, image)
        assert view.oblique.item.isVisible() and not view.image_item.isVisible()
        fraction, median = _match(view, image, view.oblique.matrix)
        assert fraction > 0.97 and median <= 1.0, (name, fraction, median)
        # the acquired (unrotated) reformat is not what is shown
        g = view.geometry_
        acquired = g.image(ct_volume.array, state.plane_slice(name)).astype(np.float32)
        wrong, _ = _match(view, acquired, g.view_matrix)
        assert wrong < 0.8, (name, wrong)
        assert "Oblique" in view.overlays["bottom_left"].text()


def test_dragging_an_axis_turns_the_other_planes(grid, qtbot, ct_volume):
    state = grid.state
    axial = grid.views["axial"]
    handle = axial.oblique.handles[0]
    assert handle.isVisible() and not handle.drawn  # on the crosshair, not drawn over it
    c = handle.centre
    d = handle.line.p2() - handle.line.p1()
    t = np.array([d.x(), d.y()]) / math.hypot(d.x(), d.y())
    arm = 60.0 * axial.view_box.viewPixelSize()[0]  # 60 screen pixels out along the axis
    start = np.array([c.x(), c.y()]) + arm * t
    turn = math.radians(25)
    rot = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    end = np.array([c.x(), c.y()]) + rot @ (arm * t)
    vp = axial.viewport()

    def at(p):
        scene = axial.view_box.mapViewToScene(QPointF(*p))
        return axial.mapFromScene(scene)

    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(start))
    for i in range(1, 7):
        QTest.mouseMove(vp, at(start + (end - start) * i / 6))
    assert state.mpr.model.coarse  # coarse while dragging
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(end))
    assert state.mpr.rotated and not state.mpr.model.coarse
    assert state.window == WINDOW  # the drag turned the planes, it did not set the window
    acquired = MprFrame.acquisition(ct_volume)
    frame = state.mpr.model.frame
    # the axial plane stays; coronal and sagittal turned ~25° about its normal, orthogonal
    assert abs(frame.normal("axial") @ acquired.normal("axial")) > 1 - 1e-9
    for name in ("coronal", "sagittal"):
        angle = math.degrees(math.acos(min(1.0, abs(frame.normal(name)
                                                    @ acquired.normal(name)))))
        assert angle == pytest.approx(25, abs=1.5), name
    normals = np.array([frame.normal(n) for n in PLANES])
    np.testing.assert_allclose(normals @ normals.T, np.eye(3), atol=1e-9)
    # the axis follows the mouse: it now runs through the release point, drawn
    handle = axial.oblique.handles[0]
    assert handle.drawn and not axial.crosshair_visible()
    p1, p2 = handle.line.p1(), handle.line.p2()
    a, b = np.array([p1.x(), p1.y()]), np.array([p2.x(), p2.y()])
    (dx, dy), (ex, ey) = b - a, end - a
    dist = abs(dx * ey - dy * ex) / math.hypot(dx, dy)
    assert dist < 2.0 * axial.view_box.viewPixelSize()[0]


def test_the_wheel_moves_an_oblique_plane_along_its_normal(grid, ct_volume):
    state = grid.state
    state.mpr.rotate_in_view("axial", math.radians(40))
    before = state.mpr.model.frame
    view = grid.views["coronal"]
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Down)
    after = state.mpr.model.frame
    step = min(ct_volume.spacing[:2])
    np.testing.assert_allclose(after.centre - before.centre, step * before.normal("coronal"))
    np.testing.assert_array_equal(view.oblique.item.image,
                                  sample_plane(ct_volume, mpr_plane(ct_volume, after,
                                                                    "coronal")))


def test_a_click_on_an_oblique_view_moves_the_crosshair_there(grid, ct_volume):
    state = grid.state
    state.mpr.rotate_in_view("axial", math.radians(30))
    view = grid.views["sagittal"]
    plane, m = view.oblique.image_plane, view.oblique.matrix
    u, v = plane.columns * 0.4 + 0.5, plane.rows * 0.45 + 0.5
    target = plane.display_to_lps(u, v)
    pos = view.mapFromScene(view.view_box.mapViewToScene(QPointF(*(m @ [u, v, 1.0]))))
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pos)
    # within a screen pixel (about 0.75 mm here) and an image pixel (0.70 mm)
    assert np.linalg.norm(state.mpr.model.frame.centre - target) < 1.5
    assert state.cursor == tuple(int(round(c)) for c in ct_volume.lps_to_index(
        state.mpr.model.frame.centre))


def test_reset_gives_back_the_acquired_views(grid, ct_volume):
    state = grid.state
    state.mpr.rotate_in_view("sagittal", 0.5)
    state.mpr.reset()
    for name, view in grid.views.items():
        g = view.geometry_
        assert view.image_item.isVisible() and not view.oblique.item.isVisible()
        np.testing.assert_array_equal(view.displayed_image(),
                                      g.image(ct_volume.array, state.plane_slice(name)))
        assert view.crosshair_visible()
        assert "Oblique" not in view.overlays["bottom_left"].text()


def test_measuring_and_painting_are_refused_on_oblique_planes_until_reset(grid, qtbot,
                                                                            ct_volume):
    """Tools work in the acquired grid's display coordinates: on a rotated plane they would
    measure other voxels than those under the cursor, so they are refused (with the reason)
    and the measurements of the acquired slices are not drawn there."""
    state = grid.state
    view = grid.views["coronal"]
    refused = []
    view.tool_refused.connect(refused.append)
    vp = view.viewport()
    a, b = QPoint(vp.width() // 3, vp.height() // 2), QPoint(2 * vp.width() // 3,
                                                             vp.height() // 2)

    def drag(dy=0):  # away from earlier outlines (a drag on one moves it)
        p, q = a + QPoint(0, dy), b + QPoint(0, dy)
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
        for i in range(1, 5):
            QTest.mouseMove(vp, p + (q - p) * i / 4)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, q)

    state.set_tool("distance")
    drag()  # on the acquired plane: a measurement, drawn
    assert len(state.measurements) == 1 and view._measure_items
    state.mpr.rotate_in_view("axial", math.radians(30))
    assert view.oblique.active and not view._measure_items  # not drawn on the oblique plane
    drag()
    assert len(state.measurements) == 1
    assert refused and "acquired planes" in refused[-1]
    state.set_tool("brush")
    before = None if state.labels is None else state.labels.array.copy()
    QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    after = None if state.labels is None else state.labels.array
    assert (before is None and after is None) or np.array_equal(before, after)
    assert len(refused) >= 2
    state.mpr.reset()
    state.set_tool("distance")
    drag(60)
    assert len(state.measurements) == 2 and view._measure_items
