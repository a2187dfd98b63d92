"""Every ChainModel event, one by one: which edit emits what (and nothing when nothing
changed); the model edits ``pipeline.chain`` objects, the one record of a chain."""

from __future__ import annotations

import pytest
from realparts import REPO

from medview.app.chain_model import ChainModel, result_layer_names
from medview.pipeline.chain import Chain, ChainError, ChainStep


class Recorder:
    """Every event of one model, in the order emitted."""

    def __init__(self, model: ChainModel):
        self.seen: list[tuple] = []
        model.steps_changed.connect(lambda: self.seen.append(("steps",)))
        model.step_changed.connect(lambda i: self.seen.append(("step", i)))
        model.selection_changed.connect(lambda i: self.seen.append(("selected", i)))
        model.changed.connect(lambda: self.seen.append(("changed",)))

    def take(self) -> list[tuple]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def model() -> ChainModel:
    m = ChainModel()
    m.add_step("smooth.gaussian")
    m.add_step("segment.threshold", params={"low": -900})
    m.add_step("segment.open")
    return m


def test_the_model_edits_the_pipeline_chain_itself(model):
    assert model.steps is model.chain.steps
    assert all(type(s) is ChainStep for s in model.steps)
    model.set_param(0, "sigma_mm", 2.0)
    assert model.chain.steps[0].params["sigma_mm"] == 2.0
    # what runs is a validated copy: editing the model afterwards leaves it alone
    chain = model.to_chain()
    model.set_param(0, "sigma_mm", 3.0)
    assert chain.steps[0].params["sigma_mm"] == 2.0
    loaded = Chain.load(REPO / "resources" / "chains" / "ct_denoise_lung_threshold.json")
    model.set_chain(loaded)
    model.set_param(0, "sigma_mm", 0.5)
    assert loaded.steps[0].params["sigma_mm"] != 0.5  # set_chain edits a copy


def test_add_step_emits_steps_changed_then_selection(model):
    rec = Recorder(model)
    assert model.add_step("segment.close", index=1) == 1
    assert rec.take() == [("steps",), ("changed",), ("selected", 1)]
    assert [s.step for s in model.steps][:2] == ["smooth.gaussian", "segment.close"]
    with pytest.raises(ChainError, match=r"sigma_mm.*above the maximum"):
        model.add_step("smooth.gaussian", params={"sigma_mm": 1e6})
    with pytest.raises(KeyError):
        model.add_step("no.such_step")
    assert rec.take() == [] and len(model) == 4  # a refused step changes nothing


def test_remove_step_emits_and_moves_the_selection(model):
    model.select(2)
    rec = Recorder(model)
    removed = model.remove_step(0)
    assert removed.step == "smooth.gaussian"
    assert rec.take() == [("steps",), ("changed",), ("selected", 1)]  # same step, new index
    model.remove_step(1)  # the selected one: the selection goes to the step now there
    assert rec.take() == [("steps",), ("changed",), ("selected", 0)]
    with pytest.raises(IndexError, match="outside"):
        model.remove_step(5)
    assert rec.take() == []


def test_move_step_emits_once_and_not_for_a_no_move(model):
    rec = Recorder(model)
    model.move_step(2, 0)
    assert rec.take() == [("steps",), ("changed",), ("selected", 0)]
    assert model.steps[0].step == "segment.open"
    model.move_step(1, 1)
    assert rec.take() == []


def test_set_order_follows_the_steps_not_the_indices(model):
    model.select(0)
    rec = Recorder(model)
    uids = model.uids()
    model.set_order(uids)
    assert rec.take() == []  # the same order: nothing
    model.set_order([uids[2], uids[0], uids[1]])
    assert rec.take() == [("steps",), ("changed",), ("selected", 1)]
    assert model.selected_step.step == "smooth.gaussian"
    with pytest.raises(ValueError, match="permutation"):
        model.set_order(uids[:2])


def test_set_order_tells_equal_steps_apart():
    model = ChainModel()
    model.add_step("segment.open")
    model.add_step("segment.open")  # equal as dataclasses, two steps all the same
    model.select(0)
    first = model.steps[0]
    uids = model.uids()
    model.set_order(uids[::-1])
    assert model.steps[1] is first and model.selected == 1


def test_clear_emits_and_an_empty_clear_does_not(model):
    rec = Recorder(model)
    model.clear()
    assert rec.take() == [("steps",), ("changed",), ("selected", -1)]
    model.clear()
    assert rec.take() == []


def test_select_emits_on_change_only(model):
    rec = Recorder(model)
    model.select(0)
    model.select(0)
    model.select(99)  # outside: nothing selected
    assert rec.take() == [("selected", 0), ("selected", -1)]
    assert model.selected_step is None


def test_set_enabled_emits_step_changed(model):
    rec = Recorder(model)
    model.set_enabled(1, False)
    model.set_enabled(1, False)
    assert rec.take() == [("step", 1), ("changed",)]
    assert model.to_dict()["steps"][1]["enabled"] is False


def test_set_param_emits_on_a_new_value_only(model):
    rec = Recorder(model)
    assert model.set_param(0, "sigma_mm", 2) == 2.0
    model.set_param(0, "sigma_mm", 2.0)
    assert rec.take() == [("step", 0), ("changed",)]
    with pytest.raises(ChainError, match="unknown parameter"):
        model.set_param(0, "sigma", 1.0)
    assert rec.take() == []


def test_set_inputs_and_output_emit_and_are_checked_by_the_chain(model):
    rec = Recorder(model)
    model.set_output(0, "smooth")
    model.set_output(0, "smooth")
    model.set_inputs(2, {"labels": "step2"})
    model.set_inputs(2, {"labels": "step2"})
    assert rec.take() == [("step", 0), ("changed",), ("step", 2), ("changed",)]
    assert model.problems() == []
    model.set_inputs(1, {"volume": "nowhere"})
    assert "'nowhere'" in model.problems()[0]


def test_set_chain_and_load_emit_structure_and_select_the_first(model, tmp_path):
    rec = Recorder(model)
    path = REPO / "resources" / "chains" / "ct_denoise_lung_threshold.json"
    model.load(path)
    assert rec.take() == [("steps",), ("changed",), ("selected", 0)]
    assert model.to_dict() == Chain.load(path).to_dict()
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": []}')
    with pytest.raises(ChainError, match=r"bad\.json"):
        model.load(bad)
    assert rec.take() == []


def test_prev_is_resolved_in_one_place_for_validation_runner_and_names():
    chain = Chain.from_dict({"steps": [
        {"step": "smooth.gaussian"},
        {"step": "segment.threshold", "enabled": False},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0},
         "output": "mask"},
        {"step": "segment.open", "inputs": {"labels": "$prev"}},
    ]})
    wires = chain.wiring()
    assert [w.name for w in wires] == ["step1", "step2", "mask", "step4"]
    # a disabled step reads $prev like the others but is nobody's $prev
    assert [w.reads for w in wires] == [{"volume": "image"}, {"volume": "step1"},
                                        {"volume": "step1"}, {"labels": "mask"}]
    names = result_layer_names(chain, ["step1", "mask", "step4"])
    assert names == {"step1": "Gaussian smoothing", "mask": "mask",
                     "step4": chain.steps[3].spec.title}
