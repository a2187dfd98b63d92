"""The registry reads a step's signature once; chains validate against it."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pytest

from medview.core.labelmap import LabelMap
from medview.core.params import Help, Points, Range
from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.core.volume import Volume
from medview.pipeline import registry
from medview.pipeline.chain import Chain, ChainError, chain_schema
from medview.pipeline.registry import all_steps, get_step, register
from medview.pipeline.runner import run_chain


def _toy(volume: Volume, mask: LabelMap | None = None, *,
         gain: Annotated[float, Range(0.0, 10.0, step=0.5, unit="x")] = 2.0,
         mode: Literal["add", "mul"] = "mul",
         clip: bool = False,
         seeds: Annotated[list, Points(min_count=0, max_count=4), Help("seed points")] = (),
         iterations: Annotated[int, Range(1, 5)] = 1,
         progress: Progress = NO_PROGRESS) -> Volume:
    """A toy step.

    Parameters
    ----------
    gain : float
        How much to multiply.
    """
    progress.check()
    arr = volume.array.astype(np.float32)
    for _ in range(iterations):
        arr = arr * gain if mode == "mul" else arr + gain
    if mask is not None:
        arr = np.where(mask.array > 0, arr, 0)
    return volume.with_array(arr)


@pytest.fixture(scope="module")
def toy():
    spec = register(_toy, id="test.toy", title="Toy", category="Enhance", replace=True)
    yield spec
    registry._REGISTRY.pop("test.toy", None)


def vol(n=3):
    return Volume(np.arange(n * 4 * 5, dtype=np.int16).reshape(n, 4, 5), (0.5, 0.5, 2.0),
                  (1.0, 2.0, 3.0))


def test_spec_is_read_from_the_signature(toy):
    assert [i.name for i in toy.inputs] == ["volume", "mask"]
    assert toy.inputs[1].optional and toy.inputs[1].kind == "labelmap"
    gain = toy.param("gain")
    assert (gain.kind, gain.min, gain.max, gain.unit, gain.default) == ("float", 0, 10, "x", 2.0)
    assert gain.help == "How much to multiply."
    assert toy.param("mode").choices == ("add", "mul")
    assert toy.param("clip").kind == "bool"
    assert toy.param("seeds").kind == "points" and toy.param("seeds").help == "seed points"
    assert toy.param("iterations").kind == "int"
    assert toy.takes_progress and toy.returns == "volume"
    schema = toy.params_schema()
    assert schema["properties"]["gain"]["maximum"] == 10
    assert schema["properties"]["mode"]["enum"] == ["add", "mul"]


@pytest.mark.parametrize(
    ("params", "param", "reason"),
    [({"gain": 11}, "gain", "above the maximum"), ({"gain": "x"}, "gain", "expected a number"),
     ({"mode": "div"}, "mode", "not one of"), ({"clip": 1}, "clip", "true or false"),
     ({"iterations": 1.5}, "iterations", "integer"),
     ({"seeds": [[1, 2]]}, "seeds", "3 coordinates"),
     ({"seeds": [[0, 0, 0]] * 5}, "seeds", "at most 4"),
     ({"bogus": 1}, "bogus", "unknown parameter")],
)
def test_invalid_params_name_step_param_and_reason(toy, params, param, reason):
    with pytest.raises(ChainError) as err:
        Chain.from_dict({"steps": [{"step": "test.toy", "params": params}]})
    assert err.value.step_index == 0 and err.value.param == param
    assert reason in str(err.value) and "step 1 (test.toy)" in str(err.value)


def test_chain_wiring_errors(toy):
    with pytest.raises(ChainError, match="did you mean"):
        Chain.from_dict({"steps": [{"step": "test.toyy"}]})
    with pytest.raises(ChainError, match="neither a chain input"):
        Chain.from_dict({"steps": [{"step": "test.toy", "inputs": {"mask": "nothing"}}]})
    with pytest.raises(ChainError, match="needs a label map"):
        Chain.from_dict({"inputs": {"image": "volume", "other": "volume"},
                         "steps": [{"step": "test.toy", "inputs": {"mask": "other"}}]})
    with pytest.raises(ChainError, match="newer"):
        Chain.from_dict({"version": 99, "steps": [{"step": "test.toy"}]})
    with pytest.raises(ChainError, match="version 7 requested"):
        Chain.from_dict({"steps": [{"step": "test.toy", "version": 7}]})


def test_chain_runs_in_order_with_named_outputs_and_disabled_steps(toy):
    chain = Chain.from_dict({
        "inputs": {"image": "volume"},
        "steps": [
            {"step": "test.toy", "params": {"gain": 2}, "output": "doubled"},
            {"step": "test.toy", "params": {"gain": 9}, "enabled": False},
            {"step": "test.toy", "params": {"gain": 1, "mode": "add"}},
            {"step": "test.toy", "params": {"gain": 3}, "inputs": {"volume": "doubled"},
             "output": "tripled"},
        ],
    })
    v = vol()
    result = run_chain(chain, {"image": v})
    np.testing.assert_array_equal(result.values["doubled"].array, v.array * 2)
    np.testing.assert_array_equal(result.values["step3"].array, v.array * 2 + 1)
    np.testing.assert_array_equal(result.result.array, v.array * 6)
    assert result.main == "tripled" and result.result.same_grid(v)
    again = run_chain(Chain.from_dict(chain.to_dict()), {"image": v})
    np.testing.assert_array_equal(again.result.array, result.result.array)


def test_runner_reports_progress_and_cancels(toy):
    chain = Chain.from_dict({"steps": [{"step": "test.toy"}, {"step": "test.toy"}]})
    seen = []
    run_chain(chain, {"image": vol()}, progress=Progress(lambda f, m: seen.append(f)))
    assert seen[-1] == 1.0 and min(seen) >= 0 and 0.4 < sorted(seen)[len(seen) // 2] < 1.0
    p = Progress()
    p.cancel()
    with pytest.raises(Cancelled):
        run_chain(chain, {"image": vol()}, progress=p)


def test_missing_or_wrong_inputs_are_errors(toy):
    chain = Chain.from_dict({"steps": [{"step": "test.toy"}]})
    with pytest.raises(ChainError, match="was not given"):
        run_chain(chain, {})
    with pytest.raises(ChainError, match="must be a volume"):
        run_chain(chain, {"image": np.zeros((2, 2, 2))})


def test_every_builtin_step_has_a_complete_spec():
    steps = [s for s in all_steps() if not s.id.startswith("test.")]
    assert get_step("smooth.gaussian") in steps
    for s in steps:
        assert s.title and s.doc, s.id
        assert s.category in registry.CATEGORIES
        for p in s.params:
            assert p.help, f"{s.id}.{p.name} has no help text"
            if not p.required:
                assert p.validate(p.default) == p.default or p.default is None, (s.id, p.name)
    schema = chain_schema()
    branches = schema["properties"]["steps"]["items"]["oneOf"]
    ids = [b["properties"]["step"]["const"] for b in branches]
    assert [i for i in ids if not i.startswith("test.")] == [s.id for s in steps]


def _numbers_step(volume: Volume, *,
                  levels: Annotated[list[float], Range(0.0, 100.0), Help("levels")] = (1.0, 50.0),
                  ) -> Volume:
    """Numbers."""
    return volume


def test_list_of_numbers_parameter():
    spec = register(_numbers_step, id="test.numbers", title="Numbers", category="Features",
                    replace=True)
    try:
        p = spec.param("levels")
        assert p.kind == "numbers" and p.default == [1.0, 50.0]
        schema = p.json_schema()
        assert schema["type"] == "array" and schema["items"]["maximum"] == 100.0
        assert p.validate([5, 95]) == [5.0, 95.0]
        for bad, reason in [("5, 95", "list of numbers"), ([], "list of numbers"),
                            ([5, "x"], "expected numbers"), ([101], "above the maximum")]:
            with pytest.raises(ChainError, match=reason):
                Chain.from_dict({"steps": [{"step": "test.numbers",
                                            "params": {"levels": bad}}]})
    finally:
        registry._REGISTRY.pop("test.numbers", None)
