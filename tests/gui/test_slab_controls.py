"""The window's slab, reference-line and oblique controls follow the models, and the models
follow them (issue 17); their keys clash with no other shortcut."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from medview.gui.shortcuts import VIEWER_KEYS, find_conflicts


def test_controls_and_model_follow_each_other(window, ct_volume):
    slab = window.state.slab
    window.state.set_volume(ct_volume)
    combo, spin = window.slab_mode_box, window.slab_thickness_box
    assert combo.currentData() == "off" and not spin.isEnabled()
    window.slab_actions["minip"].trigger()
    assert slab.mode == "minip" and combo.currentData() == "minip" and spin.isEnabled()
    combo.setCurrentIndex(combo.findData("average"))
    assert slab.mode == "average" and window.slab_actions["average"].isChecked()
    spin.setValue(22.5)
    assert slab.thickness_mm == 22.5
    slab.set_thickness(5.0)
    assert spin.value() == 5.0
    window.slab_thicker_action.trigger()
    assert slab.thickness_mm == 10.0 and spin.value() == 10.0
    window.slab_cycle_action.trigger()  # average → off
    assert slab.mode == "off" and combo.currentData() == "off"
    view = window.viewer
    assert "Avg" not in view.overlays["bottom_left"].text()
    window.slab_cycle_action.trigger()
    assert "MIP 10 mm" in view.overlays["bottom_left"].text().split("\n")


def test_keys_reach_the_models(window, qtbot, ct_volume):
    window.state.set_volume(ct_volume)
    window.view_grid.set_layout("2x2")
    view = window.views["axial"]
    view.setFocus()
    qtbot.waitUntil(view.hasFocus)
    QTest.keyClick(view, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert window.state.slab.mode == "mip"
    QTest.keyClick(view, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
    assert window.state.slab.thickness_mm == 15.0
    QTest.keyClick(view, Qt.Key.Key_L, Qt.KeyboardModifier.ShiftModifier)
    assert window.state.mpr.model.reference_lines
    window.state.mpr.rotate_in_view("axial", math.radians(20))
    window.state.set_window(123.0, 456.0)
    QTest.keyClick(view, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert not window.state.mpr.rotated
    assert window.state.window == (123.0, 456.0)  # not R's reset of the window


def test_the_new_shortcuts_are_configurable_and_clash_with_nothing(window):
    actions = window.configurable_actions()
    chosen = {i: a.shortcut().toString() for i, a in actions.items()}
    ours = {window.slab_cycle_action, window.slab_thicker_action, window.slab_thinner_action,
            window.reference_lines_action, window.reset_oblique_action}
    assert ours <= set(actions.values())
    assert find_conflicts(chosen) == {}
    for action in ours:
        assert action.shortcut().toString() not in VIEWER_KEYS
