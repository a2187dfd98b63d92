"""One editor per parameter kind: widget → model and model → widget for each, refusals shown
on the field, the editor found by the kind's class; a broken plugin in the step palette."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pytest
from plugin_dist import BROKEN_ERROR, GOOD_STEP, make_plugins
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from medview.app.chain_model import ChainModel
from medview.core.params import File, Points, Range
from medview.core.volume import Volume
from medview.gui.param_editors import (
    EDITORS,
    FileEditor,
    FloatEditor,
    KernelEditor,
    TextEditor,
    editor_for,
)
from medview.gui.param_form import ParamForm
from medview.pipeline import kinds, registry
from medview.pipeline.registry import register


def _every_kind(volume: Volume, *,
                ratio: Annotated[float, Range(0.0, 10.0, step=0.5, unit="mm")] = 1.0,
                count: Annotated[int, Range(1, 5)] = 2,
                flag: bool = False,
                mode: Literal["add", "mul"] = "add",
                label: str = "x",
                low: float | None = None,
                seeds: Annotated[list, Points(max_count=2)] = (),
                levels: Annotated[list[float], Range(0.0, 100.0)] = (1.0, 50.0),
                kernel: list[list[float]] | None = None,
                weights: Annotated[str, File((".model",))] = "") -> Volume:
    """Every kind of parameter."""
    return volume


@pytest.fixture
def form(app, qtbot):
    register(_every_kind, id="test.gui_every_kind", title="Every kind", category="Enhance",
             replace=True)
    model = ChainModel()
    w = ParamForm(model)
    qtbot.addWidget(w)
    w.resize(420, 600)
    w.show()
    model.add_step("test.gui_every_kind")
    yield w
    registry._REGISTRY.pop("test.gui_every_kind", None)


def _params(form: ParamForm) -> dict:
    return form.model.steps[0].params


def _type(form: ParamForm, name: str, text: str) -> None:
    field = form.fields[name]
    field.setText(text)
    field.editingFinished.emit()


def test_each_kind_gets_its_editor_widget(form):
    expected = {"ratio": QDoubleSpinBox, "count": QSpinBox, "flag": QCheckBox,
                "mode": QComboBox, "label": QLineEdit, "low": QDoubleSpinBox,
                "seeds": QLineEdit, "levels": QLineEdit, "kernel": QLineEdit,
                "weights": QLineEdit}
    assert {n: type(w) for n, w in form.fields.items()} == expected
    assert form.fields["ratio"].suffix() == " mm" and form.fields["ratio"].maximum() == 10.0
    assert [form.fields["mode"].itemText(i) for i in range(2)] == ["add", "mul"]
    assert form.fields["seeds"].isReadOnly() and "seeds" in form.pick_buttons
    assert set(form.optional_checks) == {"low"}  # kernel: empty text means none
    assert form.findChild(QPushButton, "browse_weights") is not None


def test_widget_to_model_for_each_kind(form, tmp_path):
    form.fields["ratio"].setValue(2.5)
    form.fields["count"].setValue(4)
    form.fields["flag"].setChecked(True)
    form.fields["mode"].setCurrentText("mul")
    _type(form, "label", "left lung")
    form.optional_checks["low"].setChecked(True)
    form.fields["low"].setValue(-3.0)
    _type(form, "levels", "1, 5 25")
    _type(form, "kernel", "1 2 1; 2 4 2")
    model_file = tmp_path / "a.model"
    form.editors["weights"].choose = lambda parent, title, start, filters: (
        str(model_file) if filters.startswith("weights (*.model)") else "")
    form.findChild(QPushButton, "browse_weights").click()
    p = _params(form)
    assert (p["ratio"], p["count"], p["flag"], p["mode"], p["label"], p["low"]) == (
        2.5, 4, True, "mul", "left lung", -3.0)
    assert p["levels"] == [1.0, 5.0, 25.0]
    assert p["kernel"] == [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0]]
    assert p["weights"] == str(model_file) == form.fields["weights"].text()
    # picking points: the model gets each click, the field shows them, Clear empties them
    form.pick_buttons["seeds"].click()
    assert form.picking() == "seeds"
    assert form.add_point((1.0, -2.0, 3.0)) and form.add_point((4.0, 5.0, 6.0))
    assert p["seeds"] == [[1.0, -2.0, 3.0], [4.0, 5.0, 6.0]]
    assert form.fields["seeds"].text() == "(1.0, -2.0, 3.0); (4.0, 5.0, 6.0)"
    # switching an optional value off gives None; an empty kernel is no kernel
    form.optional_checks["low"].setChecked(False)
    _type(form, "kernel", "")
    assert p["low"] is None and p["kernel"] is None


def test_model_to_widget_for_each_kind(form):
    model = form.model
    for name, value in [("ratio", 7.5), ("count", 5), ("flag", True), ("mode", "mul"),
                        ("label", "liver"), ("low", 2.0), ("seeds", [[1, 2, 3]]),
                        ("levels", [10, 90]), ("kernel", [[0, 1], [1, 0]]),
                        ("weights", "/x/y.model")]:
        model.set_param(0, name, value)
    f = form.fields
    assert (f["ratio"].value(), f["count"].value(), f["flag"].isChecked()) == (7.5, 5, True)
    assert f["mode"].currentText() == "mul" and f["label"].text() == "liver"
    assert form.optional_checks["low"].isChecked() and f["low"].value() == 2.0
    assert f["seeds"].text() == "(1.0, 2.0, 3.0)" and f["levels"].text() == "10, 90"
    assert f["kernel"].text() == "0 1; 1 0" and f["weights"].text() == "/x/y.model"


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("levels", "5, 200", "200.0 is above the maximum 100"),
    ("levels", "5, x", "expected numbers separated by commas, got '5, x'"),
    ("kernel", "1 2; 3", "expected a non-empty rectangular matrix"),
])
def test_a_refused_value_is_named_shown_red_and_the_model_keeps_its_own(form, qtbot, name,
                                                                       text, reason):
    before = _params(form)[name]
    _type(form, name, text)
    message = form.error_label.text()
    assert name in message and reason in message
    assert _params(form)[name] == before
    # the user sees it: the field is painted dark red
    image = form.fields[name].grab().toImage()
    colour = image.pixelColor(image.width() // 2, image.height() // 2)
    assert (colour.red(), colour.green(), colour.blue()) == (0x5A, 0x1E, 0x1E)
    _type(form, name, "1" if name == "levels" else "1 2; 3 4")
    assert form.error_label.text() == "" and _params(form)[name] != before


def test_the_editor_is_found_by_the_kind_class():
    assert editor_for(kinds.Float()) is FloatEditor
    assert editor_for(kinds.File()) is FileEditor  # the nearest class wins over Text's
    assert editor_for(kinds.Kernel()) is KernelEditor

    class Path(kinds.Text):  # a plugin's kind without an editor of its own: Text's
        name = "path"

    assert editor_for(Path()) is TextEditor

    class Colour(kinds.Kind):
        name = "colour"

    with pytest.raises(TypeError, match="no editor for parameter kind Colour"):
        editor_for(Colour())
    assert all(issubclass(k, kinds.Kind) for k in EDITORS)


def test_a_broken_plugin_shows_as_unavailable_in_the_step_palette(app, qtbot, tmp_path,
                                                                  monkeypatch):
    from viewer_helpers import dock_session

    from medview.app.layers import LayerList
    from medview.app.state import ViewerState
    from medview.gui.chain_panel import ChainPanel
    from medview.gui.tasks import TaskRunner

    monkeypatch.syspath_prepend(str(make_plugins(tmp_path)))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_BROKEN", [])
    tasks = TaskRunner()
    session = dock_session(tasks)
    try:
        panel = ChainPanel(ViewerState(), LayerList(), session)
        qtbot.addWidget(panel)
        tree = panel.palette
        groups = {tree.topLevelItem(i).text(0): tree.topLevelItem(i)
                  for i in range(tree.topLevelItemCount())}
        broken = groups["Unavailable"].child(0)
        assert broken.text(0) == "medview_broken_plugin (plugin failed to load)"
        assert broken.isDisabled() and BROKEN_ERROR in broken.toolTip(0)
        enhance = groups["Enhance"]
        ids = [enhance.child(j).data(0, Qt.ItemDataRole.UserRole)
               for j in range(enhance.childCount())]
        assert GOOD_STEP in ids and "enhance.gamma" in ids  # the others still load
        panel.add_step(GOOD_STEP)
        assert panel.model.steps[0].step == GOOD_STEP
        assert np.array_equal(panel.model.to_chain().steps[0].spec.func(
            Volume(np.ones((1, 1, 1)))).array, [[[2.0]]])
    finally:
        registry._REGISTRY.pop(GOOD_STEP, None)
        assert session.close(timeout=30)
