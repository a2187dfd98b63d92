"""Editing a finished annotation without Qt: moved whole, a handle dragged (the opposite
corner / axis end stays), measured again, counted as unsaved work; deleting every saved one
is work too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medview.app.annotation_edit import handles, moved, with_handle
from medview.app.measurements import Measurement
from medview.app.state import ViewerState
from medview.app.unsaved_work import UnsavedWork


def test_a_rectangle_corner_keeps_the_opposite_corner():
    corners = [(10.0, 20.0), (50.0, 20.0), (50.0, 60.0), (10.0, 60.0)]
    assert with_handle("rectangle", corners, 2, (70.0, 80.0)) == (
        (10.0, 20.0), (70.0, 20.0), (70.0, 80.0), (10.0, 80.0))
    # dragged past the opposite corner: still a rectangle, corners in order
    assert with_handle("rectangle", corners, 0, (60.0, 70.0)) == (
        (50.0, 60.0), (60.0, 60.0), (60.0, 70.0), (50.0, 70.0))


def test_an_ellipse_axis_end_keeps_the_other_end_and_the_other_axis_length():
    axes = [(0.0, 50.0), (100.0, 50.0), (50.0, 30.0), (50.0, 70.0)]
    out = with_handle("ellipse", axes, 1, (140.0, 50.0))
    assert out[0] == (0.0, 50.0) and out[1] == (140.0, 50.0)
    centre = (70.0, 50.0)
    assert np.allclose((np.add(out[2], out[3])) / 2, centre)
    assert math.isclose(math.dist(out[2], out[3]), 40.0)
    # a tilted first axis: the second stays at right angles
    out = with_handle("ellipse", axes, 0, (0.0, 0.0))
    a, b = np.subtract(out[1], out[0]), np.subtract(out[3], out[2])
    assert abs(float(a @ b)) < 1e-9 and math.isclose(float(np.hypot(*b)), 40.0)
    with pytest.raises(IndexError, match="not one of the 4 points"):
        with_handle("ellipse", axes, 4, (0.0, 0.0))


def test_a_polygon_vertex_and_a_move():
    pts = [(0.0, 0.0), (10.0, 0.0), (5.0, 8.0)]
    assert with_handle("polygon", pts, 2, (5.0, 20.0)) == ((0.0, 0.0), (10.0, 0.0), (5.0, 20.0))
    assert moved(pts, 3.0, -1.0) == ((3.0, -1.0), (13.0, -1.0), (8.0, 7.0))


def test_an_edit_is_measured_again_and_is_unsaved_work(ct_volume):
    state = ViewerState()
    work = UnsavedWork(state)
    state.set_volume(ct_volume)
    z = state.slice_index
    m = state.add_measurement(Measurement("rectangle", "axial", z, (100, 100), (140, 130)))
    before = state.annotations()[0]
    work.mark_saved("measurements")
    assert not work
    state.edit_measurement(m, with_handle("rectangle", handles(m), 2, (180, 160)))
    assert work.kinds == ["measurements"]
    after = state.annotations()[0]
    assert after.uid == before.uid
    assert math.isclose(after.value("area").value, before.value("area").value * 80 * 60
                        / (40 * 30), rel_tol=1e-6)
    assert (m.p0, m.p1) == ((100.0, 100.0), (180.0, 160.0))
    with pytest.raises(ValueError, match="rectangle has 4 points, got 2"):
        state.edit_measurement(m, [(0, 0), (1, 1)])
    # every saved one deleted: work to save (the save clears the report)
    work.mark_saved("measurements")
    state.remove_measurement(m)
    assert work.kinds == ["measurements"]
    assert work.describe() == "the removal of the saved annotations"
    work.mark_saved("measurements")
    assert not work
