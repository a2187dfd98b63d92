"""The chain panel's plain-Python parts: the chain model, the preview slab, the layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from realparts import REPO

from medview.app.chain_model import ChainModel
from medview.app.chain_preview import MAX_HALO_SLICES, chain_context, run_preview, slab
from medview.app.models import SlicePreview
from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.pipeline.chain import Chain, ChainError
from medview.pipeline.runner import run_chain

CHAIN_FILES = sorted((REPO / "resources" / "chains").glob("*.json"))


def _small(ct_volume, z0=80, z1=92) -> Volume:
    return slab(ct_volume, z0, z1)


def test_add_move_remove_enable_with_events():
    model = ChainModel()
    seen = []
    model.changed.connect(lambda: seen.append("changed"))
    model.selection_changed.connect(lambda i: seen.append(("selected", i)))
    assert model.add_step("smooth.gaussian") == 0
    model.add_step("segment.threshold", params={"low": -900})
    model.add_step("segment.open")
    assert [s.step for s in model.steps] == ["smooth.gaussian", "segment.threshold",
                                             "segment.open"]
    assert model.steps[1].params["low"] == -900.0
    assert seen.count("changed") == 3 and seen[-1] == ("selected", 2)
    model.move_step(2, 0)
    assert model.steps[0].step == "segment.open" and model.selected == 0
    uids = model.uids()
    model.set_order(uids[::-1])
    assert model.uids() == uids[::-1]
    assert model.selected_step.step == "segment.open"
    with pytest.raises(ValueError, match="permutation"):
        model.set_order(uids[:1])
    model.set_enabled(0, False)
    assert model.to_dict()["steps"][0]["enabled"] is False
    removed = model.remove_step(2)
    assert removed.step == "segment.open" and len(model) == 2
    assert model.selected == 1


def test_set_param_validates_through_the_registry():
    model = ChainModel()
    model.add_step("smooth.gaussian")
    with pytest.raises(ChainError, match=r"sigma_mm.*above the maximum"):
        model.set_param(0, "sigma_mm", 1e6)
    with pytest.raises(ChainError, match="unknown parameter"):
        model.set_param(0, "sigma", 1.0)
    assert model.steps[0].params["sigma_mm"] == 1.0
    assert model.set_param(0, "sigma_mm", 3) == 3.0
    model.add_step("segment.region_grow")
    assert "seeds" in model.problems()[0]
    model.set_param(1, "seeds", [[1, 2, 3]])
    assert model.problems() == []


@pytest.mark.parametrize("path", CHAIN_FILES, ids=lambda p: p.stem)
def test_json_round_trip_equals_the_example(path, tmp_path):
    model = ChainModel()
    model.load(path)
    expected = Chain.load(path).to_dict()
    assert model.to_dict() == expected
    saved = model.save(tmp_path / path.name)
    assert json.loads(saved.read_text()) == expected
    assert Chain.load(saved).to_dict() == expected
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_disabled_steps_stay_in_the_json_and_are_skipped(ct_volume, tmp_path):
    model = ChainModel()
    model.add_step("segment.threshold", params={"low": -950.0, "high": -400.0})
    model.add_step("segment.open", params={"radius_mm": 3.0})
    model.set_enabled(1, False)
    path = model.save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert data["steps"][1]["enabled"] is False
    vol = _small(ct_volume)
    with_disabled = run_chain(Chain.load(path), {"image": vol}).result
    only_first = run_chain(Chain.from_dict({"steps": [data["steps"][0]]}), {"image": vol})
    assert np.array_equal(with_disabled.array, only_first.result.array)


def test_invalid_chain_is_not_saved(tmp_path):
    model = ChainModel()
    model.add_step("segment.region_grow")  # no seeds
    with pytest.raises(ChainError, match="seeds"):
        model.save(tmp_path / "c.json")
    assert list(tmp_path.iterdir()) == []
    model.clear()
    with pytest.raises(ChainError, match="non-empty"):
        model.save(tmp_path / "c.json")


def test_load_error_names_the_file_and_keeps_the_chain(tmp_path):
    model = ChainModel()
    model.add_step("smooth.gaussian")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ChainError, match=r"bad\.json"):
        model.load(bad)
    assert [s.step for s in model.steps] == ["smooth.gaussian"]


def test_slab_keeps_patient_positions(ct_volume):
    part = slab(ct_volume, 40, 43)
    assert part.shape == (3, *ct_volume.shape[1:])
    assert np.allclose(part.index_to_lps((7.0, 9.0, 1.0)), ct_volume.index_to_lps((7.0, 9.0, 41.0)))
    with pytest.raises(ValueError, match="z0, z1"):
        slab(ct_volume, 5, 5)


@pytest.mark.parametrize("steps, halo, exact", [
    ([{"step": "segment.threshold"}], 0, True),
    ([{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0, "in_plane_only": True}}], 0, True),
    ([{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}},
      {"step": "segment.threshold"},
      {"step": "segment.open", "params": {"radius_mm": 2.0}}], 2 + 3, True),
    ([{"step": "segment.otsu"}], 0, False),
    ([{"step": "segment.otsu", "params": {"in_plane_only": True}}], 0, True),
])
def test_preview_context_per_step(steps, halo, exact, ct_volume):
    ctx = chain_context(Chain.from_dict({"steps": steps}))
    assert ctx.slices(ct_volume.spacing[2]) == halo and ctx.exact is exact


def test_preview_matches_the_full_run_on_3d_steps(ct_volume):
    vol = slab(ct_volume, 60, 100)
    chain = Chain.from_dict({"steps": [
        {"step": "smooth.gaussian", "params": {"sigma_mm": 1.5}},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0}},
        {"step": "segment.close", "params": {"radius_mm": 3.0}},
    ]})
    full = run_chain(chain, {"image": vol}).result
    for z in (0, 17, 39):
        p = run_preview(chain, {"image": vol}, z)
        assert p.exact and p.kind == "labels" and p.halo <= MAX_HALO_SLICES
        assert np.array_equal(p.image, full.array[z])


def test_layers_add_show_and_bind(ct_volume):
    vol = _small(ct_volume)
    state = ViewerState()
    layers = state.layers  # the one record of what is shown
    state.set_volume(vol)
    assert [x.kind for x in layers.layers] == ["series"]
    result = run_chain(Chain.from_dict({"steps": [
        {"step": "smooth.gaussian", "output": "smooth"},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0},
         "output": "mask"},
        {"step": "fuse.blend", "inputs": {"volume": "image", "moving": "smooth"},
         "output": "fused"},
    ]}), {"image": vol})
    new = layers.add_results(result.outputs(exclude={"image"}))
    assert [(x.name, x.kind) for x in new] == [("smooth", "volume"), ("mask", "labels"),
                                              ("fused", "rgb")]
    again = layers.add_results({"mask": result.values["mask"]})
    assert again[0].name == "mask (2)"
    state.set_cursor(30, 40, 5)
    state.set_zoom(2.0)
    layers.show(layers.by_name("smooth"))
    assert state.volume is result.values["smooth"]
    assert state.cursor == (30, 40, 5) and state.zoom == 2.0
    layers.show(layers.by_name("mask"))
    assert state.labels is result.values["mask"]
    layers.show(layers.by_name("fused"))
    assert state.overlay is result.values["fused"]
    assert np.array_equal(state.overlay_image("axial"), result.values["fused"].array[5])
    layers.remove(layers.by_name("smooth"))
    assert state.volume is vol  # back to the series
    layers.hide(layers.by_name("mask"))
    assert state.labels is None and state.overlay is result.values["fused"]
    with pytest.raises(ValueError, match="only derived"):
        layers.remove(layers.series)
    # a new series: every derived layer goes
    state.set_volume(_small(ct_volume, 0, 5))
    assert [x.kind for x in layers.layers] == ["series"] and state.overlay is None


def test_preview_shows_on_its_slice_only(ct_volume):
    vol = _small(ct_volume)
    state = ViewerState()
    state.set_volume(vol)
    image = np.zeros(vol.shape[1:], dtype=np.uint8)
    image[10:20, 10:20] = 1
    state.set_slice(3)
    state.set_preview(SlicePreview(3, "labels", image))
    assert np.array_equal(state.preview_image("axial"), image)
    assert state.preview_image("coronal") is None
    state.set_slice(4)
    assert state.preview_image("axial") is None
    with pytest.raises(ValueError, match="slice"):
        state.set_preview(SlicePreview(3, "labels", image[:5]))
