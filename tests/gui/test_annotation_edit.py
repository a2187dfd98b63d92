"""Editing annotations with the mouse on a real CT: a distance moved by dragging its line and
reshaped by dragging an end, an ellipse by an axis end; the values follow live, the edit is
unsaved work, the moved outline is drawn where it must be (pixels), and the saved report holds
the new points after a restart. A click selects; Delete removes the selected one; deleting all
and saving clears the series."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_annotations_persist import CT_3SLICE, _at, _close, _drag, _open_window, _outline_drawn
from viewer_helpers import grab_rgb

from medview.gui.view_layers import MEASURE_COLOUR


@pytest.fixture
def study(data_dir, tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(data_dir / CT_3SLICE, folder)
    return folder


def _press_move(view, points) -> None:
    """Press at the first point and move through the others (no release yet)."""
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
    for a, b in itertools.pairwise(points):
        for i in range(1, 5):
            QTest.mouseMove(vp, a + (b - a) * i / 4)


def _release(view, point) -> None:
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, point)


def _save(w, qtbot) -> None:
    qtbot.keyClick(w.viewer, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.unsaved.work, timeout=30_000)


def _only(state, kind):
    (ann,) = [a for a in state.annotations() if a.kind == kind]
    return ann


def test_move_and_reshape_with_the_mouse_then_saved_and_reopened(app, qtbot, tmp_path, study):
    catalog = tmp_path / "catalog.sqlite"
    w = _open_window(qtbot, catalog, study)
    state, view = w.state, w.viewer
    vol = state.volume
    z = state.slice_index
    w.tool_actions["distance"].trigger()
    _drag(view, [_at(view, 60, 80), _at(view, 220, 110)])
    w.tool_actions["ellipse"].trigger()
    _drag(view, [_at(view, 200, 250), _at(view, 300, 320)])
    _save(w, qtbot)
    first = _only(state, "distance")
    length0 = first.value("length").value
    ellipse0 = _only(state, "ellipse")

    # the distance's line dragged 60 rows down: moved whole, same length, unsaved work
    w.tool_actions["distance"].trigger()
    _press_move(view, [_at(view, 140, 95), _at(view, 140, 155)])
    row = vol.index_to_lps((0, 60, z)) - vol.index_to_lps((0, 0, z))
    live = _only(state, "distance")  # follows the mouse before the release
    assert live.uid == first.uid
    assert np.allclose(live.points, first.points + row, atol=1.0)
    _release(view, _at(view, 140, 155))
    moved = _only(state, "distance")
    assert "measurements" in w.unsaved.work.kinds
    assert np.allclose(moved.points, first.points + row, atol=1.0)
    assert abs(moved.value("length").value - length0) < 0.5
    assert len(state.annotations()) == 2  # nothing new was drawn

    # its end dragged from (220, 170) to (220, 250): the length follows while dragging
    _press_move(view, [_at(view, 220, 170), _at(view, 220, 250)])
    during = _only(state, "distance")
    assert during.value("length").value > length0 + 20  # longer now
    assert f"{during.value('length').value:.1f} mm" in view.measurement_texts.values()
    assert np.allclose(during.points[0], moved.points[0], atol=1e-3)  # the other end stays
    _release(view, _at(view, 220, 250))
    reshaped = _only(state, "distance")
    assert np.allclose(reshaped.points[1], vol.index_to_lps((220, 250, z)), atol=1.0)

    # the ellipse's right axis end dragged 40 columns right: the left end stays
    w.tool_actions["ellipse"].trigger()
    _drag(view, [_at(view, 300, 285), _at(view, 340, 285)])
    wider = _only(state, "ellipse")
    assert wider.uid == ellipse0.uid
    assert np.allclose(wider.points[0], ellipse0.points[0], atol=1e-3)
    assert np.allclose(wider.points[1], vol.index_to_lps((340, 285, z)), atol=1.0)
    assert wider.value("area").value > ellipse0.value("area").value * 1.2

    # on screen: the outlines where they are now, not where they were
    w.tool_actions["window"].trigger()
    view.annotation_tools.editor.select(None)
    qtbot.wait(50)
    after = grab_rgb(view)
    edited = state.annotations()
    state.set_annotations([])
    before = grab_rgb(view)
    state.set_annotations(edited)
    assert _outline_drawn(view, reshaped, after, before) >= 0.8
    assert _outline_drawn(view, wider, after, before) >= 0.8
    assert _outline_drawn(view, first, after, before) < 0.5
    colour = np.array(MEASURE_COLOUR.getRgb()[:3], float)
    assert (np.abs(after.astype(float) - colour).max(axis=-1) <= 40).sum() > 100

    _save(w, qtbot)
    _close(w)
    w2 = _open_window(qtbot, catalog)  # a new window and catalog session
    saved = {a.uid: a for a in w2.state.annotations()}
    assert set(saved) == {first.uid, ellipse0.uid}
    assert np.allclose(saved[first.uid].points, reshaped.points, atol=1e-3)
    assert np.allclose(saved[ellipse0.uid].points, wider.points, atol=1e-3)
    assert not w2.unsaved.work
    _close(w2)


def test_click_selects_delete_removes_it_and_deleting_all_clears_the_saved(
        app, qtbot, tmp_path, study):
    catalog = tmp_path / "catalog.sqlite"
    w = _open_window(qtbot, catalog, study)
    state, view = w.state, w.viewer
    w.tool_actions["distance"].trigger()
    _drag(view, [_at(view, 60, 80), _at(view, 220, 80)])
    _drag(view, [_at(view, 60, 300), _at(view, 220, 300)])
    _, lower = sorted(state.annotations(), key=lambda a: a.points[0][1])
    _save(w, qtbot)
    w.tool_actions["window"].trigger()
    before = grab_rgb(view)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _at(view, 140, 80))  # on the upper one
    assert view.annotation_tools.editor.selected is not None
    selected = grab_rgb(view)  # its handles are drawn
    colour = np.array(MEASURE_COLOUR.getRgb()[:3], float)
    grew = ((np.abs(selected.astype(float) - colour).max(axis=-1) <= 40).sum()
            - (np.abs(before.astype(float) - colour).max(axis=-1) <= 40).sum())
    assert grew > 20
    qtbot.keyClick(view, Qt.Key.Key_Delete)  # the selected one, not the last drawn
    assert [a.uid for a in state.annotations()] == [lower.uid]
    assert "measurements" in w.unsaved.work.kinds
    qtbot.keyClick(view, Qt.Key.Key_Delete)  # nothing selected: the last on the slice
    assert state.annotations() == []
    assert w.unsaved.work.kinds == ["measurements"]  # deleting the saved ones is work
    assert "removal" in w.unsaved.work.describe()
    _save(w, qtbot)  # saving with none clears what was saved
    _close(w)
    w2 = _open_window(qtbot, catalog)
    assert w2.state.annotations() == []
    w2.tool_actions["distance"].trigger()
    _drag(w2.viewer, [_at(w2.viewer, 100, 200), _at(w2.viewer, 200, 200)])
    (new,) = w2.state.annotations()
    _save(w2, qtbot)
    _close(w2)
    w3 = _open_window(qtbot, catalog)
    assert [a.uid for a in w3.state.annotations()] == [new.uid]
    _close(w3)


def test_a_polygon_vertex_and_an_angle_vertex_dragged(app, qtbot, tmp_path, study):
    w = _open_window(qtbot, tmp_path / "catalog.sqlite", study)
    state, view = w.state, w.viewer
    vol, z = state.volume, state.slice_index
    w.tool_actions["polygon"].trigger()
    _drag(view, [_at(view, 80, 300), _at(view, 160, 300), _at(view, 150, 390),
                 _at(view, 90, 380)])
    w.tool_actions["angle"].trigger()
    _drag(view, [_at(view, 300, 440), _at(view, 380, 470)])  # the first arm, to the vertex
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _at(view, 460, 420))
    polygon0, angle0 = _only(state, "polygon"), _only(state, "angle")
    corner = vol.index_to_lps((160, 300, z))
    i = int(np.argmin(np.linalg.norm(polygon0.points - corner, axis=1)))
    w.tool_actions["polygon"].trigger()
    _drag(view, [_at(view, 160, 300), _at(view, 200, 260)])  # that vertex pulled out
    polygon = _only(state, "polygon")
    assert len(polygon.points) == len(polygon0.points)
    assert np.allclose(polygon.points[i], vol.index_to_lps((200, 260, z)), atol=1.0)
    others = [j for j in range(len(polygon.points)) if j != i]
    assert np.allclose(polygon.points[others], polygon0.points[others], atol=1e-3)
    assert polygon.value("area").value > polygon0.value("area").value
    _drag(view, [_at(view, 380, 470), _at(view, 380, 500)])  # the angle's vertex
    angle = _only(state, "angle")
    assert np.allclose(angle.points[1], vol.index_to_lps((380, 500, z)), atol=1.0)
    assert np.allclose(angle.points[[0, 2]], angle0.points[[0, 2]], atol=1e-3)
    value = angle.value("angle").value
    assert abs(value - angle0.value("angle").value) > 5
    assert f"{value:.1f}°" in view.measurement_texts.values()
    assert "measurements" in w.unsaved.work.kinds
    _close(w)
