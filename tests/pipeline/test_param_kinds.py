"""Parameter kinds: one test per kind (validation naming parameter and value, schema, CLI
text); file parameters found by kind, not by name; chain files load unchanged; preview
margins declared in register(); a broken plugin recorded while the others load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated, Literal

import numpy as np
import pytest
from plugin_dist import BROKEN_ERROR, GOOD_STEP, make_plugins
from realparts import REPO

from medview.core.params import File, Help, Points, Range
from medview.core.volume import Volume
from medview.pipeline import kinds, registry
from medview.pipeline.chain import Chain, ChainError
from medview.pipeline.margin import EXACT, WHOLE, Margin
from medview.pipeline.params import ParamError
from medview.pipeline.registry import get_step, register, step
from medview.server.worker import unsent_file_params


def _every_kind(volume: Volume, *,
                ratio: Annotated[float, Range(0.0, 10.0, step=0.5, unit="mm")] = 1.0,
                count: Annotated[int, Range(1, 5)] = 2,
                flag: bool = False,
                mode: Literal["add", "mul"] = "add",
                label: str = "x",
                seeds: Annotated[list, Points(max_count=2), Help("seed points")] = (),
                levels: Annotated[list[float], Range(0.0, 100.0)] = (1.0, 50.0),
                kernel: list[list[float]] | None = None,
                weights: Annotated[str, File((".model",))] = "",
                note_path: str = "") -> Volume:
    """Every kind of parameter.

    Parameters
    ----------
    ratio : float
        A length.
    """
    return volume


@pytest.fixture(scope="module")
def spec():
    s = register(_every_kind, id="test.every_kind", title="Every kind", category="Enhance",
                 replace=True, margin=lambda p: Margin(p["ratio"], p["count"]))
    yield s
    registry._REGISTRY.pop("test.every_kind", None)


#: name → (kind class, a good JSON value and its clean value, a bad value and the reason,
#: the schema's type, CLI text and the value it parses to)
KINDS = {
    "ratio": (kinds.Float, 2, 2.0, 11, "above the maximum 10mm", "number", "2.5", 2.5),
    "count": (kinds.Int, 3.0, 3, 2.5, "expected an integer", "integer", "4", 4),
    "flag": (kinds.Bool, True, True, 1, "expected true or false", "boolean", "yes", True),
    "mode": (kinds.Choice, "mul", "mul", "div", "is not one of add, mul", "string", "mul",
             "mul"),
    "label": (kinds.Text, "y", "y", 5, "expected a string", "string", "a b", "a b"),
    "seeds": (kinds.Points, [[1, 2, 3]], [[1.0, 2.0, 3.0]], [[1, 2]], "3 coordinates",
              "array", "1, 2, 3; 4 5 6", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    "levels": (kinds.Numbers, [5, 95], [5.0, 95.0], [5, "x"], "expected numbers", "array",
               "1, 5 25", [1.0, 5.0, 25.0]),
    "kernel": (kinds.Kernel, [[1, 2], [3, 4]], [[1.0, 2.0], [3.0, 4.0]], [[1, 2], [3]],
               "rectangular matrix", "array", "1 2 1; 2 4 2", [[1.0, 2.0, 1.0],
                                                               [2.0, 4.0, 2.0]]),
    "weights": (kinds.File, "/tmp/a.model", "/tmp/a.model", ["/tmp"], "expected a string",
                "string", " /data/my.model ", "/data/my.model"),
}


@pytest.mark.parametrize("name", KINDS)
def test_each_kind_validates_and_names_parameter_and_value(spec, name):
    cls, good, clean, bad, reason, *_ = KINDS[name]
    p = spec.param(name)
    assert type(p.type) is cls and p.kind == cls.name
    assert p.validate(good) == clean
    with pytest.raises(ParamError) as err:
        p.validate(bad)
    assert err.value.param == name and err.value.value == bad
    assert reason in str(err.value) and repr(bad) in str(err.value)
    with pytest.raises(ChainError) as err:  # a chain file says the same with the step
        Chain.from_dict({"steps": [{"step": "test.every_kind", "params": {name: bad}}]})
    assert f"step 1 (test.every_kind), parameter {name!r}" in str(err.value)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("name", KINDS)
def test_each_kind_has_its_json_schema(spec, name):
    cls, *_, schema_type, _, _ = KINDS[name]
    s = spec.param(name).json_schema()
    if name == "kernel":  # optional: a kernel or null
        s = s["anyOf"][0]
    assert s["type"] == schema_type
    assert "default" in spec.param(name).json_schema()
    if cls is kinds.Float:
        assert (s["minimum"], s["maximum"]) == (0.0, 10.0)
        assert spec.param(name).json_schema()["description"].endswith("[mm]")
    if cls is kinds.Choice:
        assert s["enum"] == ["add", "mul"]
    if cls is kinds.Points:
        assert s["maxItems"] == 2 and s["items"]["minItems"] == 3
    if cls is kinds.Numbers:
        assert s["items"]["maximum"] == 100.0
    if cls is kinds.File:
        assert s["format"] == "path"


@pytest.mark.parametrize("name", KINDS)
def test_each_kind_parses_command_line_text(spec, name):
    *_, text, parsed = KINDS[name]
    p = spec.param(name)
    assert p.parse(text) == parsed
    # what format writes, parse reads back
    assert p.parse(p.type.format(parsed)) == parsed
    chain = Chain.from_dict({"steps": [{"step": "test.every_kind"}]})
    assert chain.with_params([f"1.{name}={text}"]).steps[0].params[name] == parsed
    assert chain.steps[0].params[name] != parsed  # a copy: the loaded chain is kept


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("ratio", "two", "expected a number"), ("count", "1.5", "expected an integer"),
    ("flag", "maybe", "expected true or false"), ("mode", "div", "not one of"),
    ("seeds", "1, 2", "3 coordinates"), ("levels", "1, x", "separated by commas"),
    ("kernel", "1 2; a", "rows of numbers")])
def test_bad_command_line_text_names_parameter_and_text(spec, name, text, reason):
    with pytest.raises(ParamError) as err:
        spec.param(name).parse(text)
    assert err.value.param == name and reason in str(err.value) and text in str(err.value)
    with pytest.raises(ChainError, match=rf"step 1 \(test.every_kind\), parameter '{name}'"):
        Chain.from_dict({"steps": [{"step": "test.every_kind"}]}).with_params(
            [f"test.every_kind.{name}={text}"])


def test_optional_parameters_parse_none_and_wrong_targets_are_named(spec):
    chain = Chain.from_dict({"steps": [{"step": "test.every_kind", "output": "toy",
                                        "params": {"kernel": [[1]]}}]})
    assert chain.with_params(["toy.kernel=none"]).steps[0].params["kernel"] is None
    for bad, reason in [("ratio=2", "expected STEP.PARAM=VALUE"), ("9.ratio=2", "no step '9'"),
                        ("toy.bogus=1", "unknown parameter")]:
        with pytest.raises(ChainError, match=reason):
            chain.with_params([bad])


def test_file_parameters_are_a_kind_not_a_name_suffix(spec):
    assert isinstance(get_step("segment.classifier_apply").param("model_path").type,
                      kinds.File)
    chain = {"steps": [{"step": "test.every_kind",
                        "params": {"weights": "/srv/secret.model", "note_path": "/etc/x"}}]}
    # the server refuses the File parameter it was not sent; a *_path text is just text
    assert unsent_file_params(chain, []) == ["step 1 (test.every_kind), parameter 'weights'"]
    assert unsent_file_params(chain, [{"step": 0, "param": "weights", "file": "file0"}]) == []


def test_the_offload_client_sends_file_parameters(spec, tmp_path):
    from medview.remote.run import _file_params

    model = tmp_path / "w.model"
    model.write_bytes(b"weights")
    chain = Chain.from_dict({"steps": [{"step": "test.every_kind", "params": {
        "weights": str(model), "note_path": str(tmp_path / "not-sent.txt")}}]})
    files, rewrites = _file_params(chain)
    assert rewrites == [{"step": 0, "param": "weights", "file": "file0"}]
    assert files["file0"] == ("file", "w.model", b"weights")


def test_the_example_chains_load_with_their_values_unchanged():
    for path in sorted((REPO / "resources" / "chains").glob("*.json")):
        raw = json.loads(path.read_text())
        chain = Chain.load(path)
        for given, loaded in zip(raw["steps"], chain.steps, strict=True):
            for name, value in (given.get("params") or {}).items():
                assert loaded.params[name] == value, (path.name, given["step"], name)
            spec = loaded.spec
            assert set(loaded.params) == {p.name for p in spec.params}


# -- margins ----------------------------------------------------------------------------
def test_margins_are_declared_where_steps_are_registered(spec):
    # the toy's own rule, with the defaults filled in
    assert spec.preview_margin({}) == Margin(1.0, 2)
    assert spec.preview_margin({"ratio": 3.0}) == Margin(3.0, 2)
    gauss = get_step("smooth.gaussian")
    assert gauss.preview_margin({"sigma_mm": 2.0}).mm == pytest.approx(8.0)
    assert gauss.preview_margin({"sigma_mm": 2.0, "in_plane_only": True}) == EXACT
    assert get_step("features.canny").preview_margin({}) == EXACT
    assert get_step("segment.kmeans").preview_margin({}) == WHOLE  # declared none: global
    assert get_step("enhance.gamma").preview_margin({}) == WHOLE
    assert get_step("enhance.gamma").preview_margin({"in_low": 0.0, "in_high": 1.0}) == EXACT


def test_the_step_decorator_takes_a_margin():
    @step("test.decorated", title="Decorated", category="Enhance", margin=Margin(voxels=3))
    def decorated(volume: Volume) -> Volume:
        """Nothing."""
        return volume

    try:
        assert get_step("test.decorated").preview_margin({}).slices(1.0) == 3
    finally:
        registry._REGISTRY.pop("test.decorated", None)


# -- plugins ----------------------------------------------------------------------------
def _medview(args, plugins):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugins), str(REPO)]))
    return subprocess.run([sys.executable, "-m", "medview.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_broken_plugin_is_listed_as_unavailable_and_the_others_load(tmp_path):
    plugins = make_plugins(tmp_path)
    proc = _medview(["steps"], plugins)
    assert proc.returncode == 0, proc.stderr
    assert "smooth.gaussian (v1)" in proc.stdout  # the built-in steps
    assert f"{GOOD_STEP} (v1): Double" in proc.stdout  # the plugin that works
    assert ("unavailable: plugin medview_broken_plugin (medview_broken_plugin) failed to "
            f"load: RuntimeError: {BROKEN_ERROR}") in proc.stdout
    listed = json.loads(_medview(["steps", "--json"], plugins).stdout)
    assert {"id": "plugin:medview_broken_plugin", "plugin": "medview_broken_plugin",
            "entry_point": "medview_broken_plugin", "available": False,
            "error": f"RuntimeError: {BROKEN_ERROR}"} in listed
    assert all("id" in s and "available" in s for s in listed)
    by_id = {s["id"]: s for s in listed}
    assert by_id[GOOD_STEP]["available"] is True
    assert by_id["smooth.gaussian"]["available"] is True


def test_a_chain_needing_a_broken_plugin_says_so(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(make_plugins(tmp_path)))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_BROKEN", [])
    try:
        broken = registry.broken_plugins()
        assert [(b.name, b.error) for b in broken] == [
            ("medview_broken_plugin", f"RuntimeError: {BROKEN_ERROR}")]
        vol = Volume(np.ones((1, 2, 2), np.int16))
        from medview.pipeline.runner import run_chain

        out = run_chain(Chain.from_dict({"steps": [{"step": GOOD_STEP}]}), {"image": vol})
        assert out.result.array.tolist() == [[[2, 2], [2, 2]]]
        with pytest.raises(ChainError, match="plugins that failed to load: "
                                             "medview_broken_plugin"):
            Chain.from_dict({"steps": [{"step": "broken.step"}]})
    finally:
        registry._REGISTRY.pop(GOOD_STEP, None)
