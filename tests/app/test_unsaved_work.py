"""What the reader made and has not saved yet, followed on the viewer state (no Qt)."""

from __future__ import annotations

from medview.app.measurements import Measurement
from medview.app.state import ViewerState
from medview.app.unsaved_work import UnsavedWork


def _paint(state, label=1, where=(0.5, 0.5)):
    state.set_tool("brush")
    state.set_paint_label(label)
    g = state.geometry("axial")
    state.begin_edit("brush")
    n = state.paint("axial", (g.width * where[0], g.height * where[1]))
    state.end_edit()
    assert n > 0
    return n


def test_what_is_unsaved_follows_the_readers_work(ct_volume):
    state = ViewerState()
    work = UnsavedWork(state)
    state.set_volume(ct_volume)
    assert not work and work.kinds == []
    _paint(state)
    assert work.kinds == ["labels"]
    generation = work.generation("labels")
    state.set_label_opacity(0.2)  # display only: not work
    assert work.generation("labels") == generation
    work.mark_saved("labels")
    assert not work
    assert state.undo() and work.kinds == ["labels"]  # an undo is a change too
    g = state.geometry("axial")
    m = state.add_measurement(Measurement("distance", "axial", state.slice_index, (1, 1),
                                          (g.width / 2, g.height / 2)))
    assert work.kinds == ["labels", "measurements"]
    assert work.describe() == "the label map and 1 annotation"
    state.remove_measurement(m)
    assert work.kinds == ["labels"]  # nothing left to save
    state.set_edit_target("scribbles")
    _paint(state)
    assert work.kinds == ["labels", "scribbles"]
    state.set_fusion(ct_volume)
    assert work.kinds == ["labels", "scribbles", "fusion"]
    state.set_volume(ct_volume)  # a series (re)opened: its work starts from nothing
    assert not work


def test_a_save_of_an_older_state_leaves_later_edits_unsaved(ct_volume):
    state = ViewerState()
    work = UnsavedWork(state)
    state.set_volume(ct_volume)
    _paint(state)
    at_export = work.generation("labels")
    _paint(state, label=2)  # painted while the export ran
    work.mark_saved("labels", at_export)
    assert work.kinds == ["labels"]
