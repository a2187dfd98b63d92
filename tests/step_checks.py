"""Helpers shared by the tests of medview.core: crops of real volumes, a tiny synthetic CT and
the contract every registered step keeps (spec → schema → defaults → a chain run twice)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume


def crop(vol: Volume, z: slice = slice(None), y: slice = slice(None),
         x: slice = slice(None)) -> Volume:
    """A sub-volume with the origin moved to its first voxel (same spacing and direction), so
    that its voxels keep their patient positions; the made-up slice marks follow their
    planes (re-indexed, those outside dropped)."""
    from medview.core.made_up import made_up_slices

    origin = vol.index_to_lps([x.start or 0, y.start or 0, z.start or 0])
    meta = dict(vol.metadata)
    if "made_up_slices" in meta:
        kept = range(vol.shape[0])[z]
        meta["made_up_slices"] = tuple((kept.index(k), why)
                                       for k, why in made_up_slices(vol.metadata) if k in kept)
    return Volume(np.ascontiguousarray(vol.array[z, y, x]), vol.spacing, tuple(origin),
                  vol.direction, meta)


def tiny_volume(slices: int = 5, slice_mm: float = 1.0) -> Volume:
    """A small int16 CT-like volume: a bright disc growing brighter with z, noise, and an
    oblique direction; ``slices`` × 28 × 32 voxels of 0.7 × 0.8 × ``slice_mm`` mm."""
    rng = np.random.default_rng(7)
    z, y, x = np.mgrid[0:slices, 0:28, 0:32]
    blob = 300.0 * ((y - 14) ** 2 + (x - 16) ** 2 < 64) + 50.0 * z
    arr = (blob + rng.normal(0, 20, blob.shape)).astype(np.int16)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return Volume(arr, (0.7, 0.8, slice_mm), (10.0, -20.0, 30.0), direction,
                  {"Modality": "CT", "Units": "HU"})


def check_step_contract(
    step_id: str,
    inputs: Mapping[str, Volume],
    *,
    category: str,
    dtype=None,
    single_volume_input: bool = False,
    input_names: list[str] | None = None,
    step_inputs: dict[str, str] | None = None,
    json_round_trip: bool = False,
    table: bool = False,
    kind: type = Volume,
    not_kind: type | None = None,
    rgb: bool | None = None,
    modality: str | None = None,
    changes_input: bool = False,
    also: Mapping[str, type] | None = None,
    also_grid: bool = False,
    also_to_json: bool = False,
):
    """The contract of a registered step with one output: its spec, parameter schema and
    defaults, then a chain of it alone run (twice: deterministic) with its defaults on
    ``inputs`` (chain input name → value; the first one is the image whose grid a volume
    output keeps).

    single_volume_input: the step takes progress and one input, a volume.
    input_names: the names of the step's inputs, in order.
    step_inputs: the step's ``inputs`` in the chain (step input → chain input).
    json_round_trip: the chain is built from its definition sent through JSON.
    table: the result is a non-empty Table; else a ``kind`` (not a ``not_kind``) of ``dtype``
        on the grid of the first input.
    rgb: the result's ``is_rgb``; modality: its metadata's Modality.
    changes_input: the defaults change the voxels.
    also: further outputs of the step and their types; also_grid: a volume among them keeps
    the grid of the first input; also_to_json: each of them converts to JSON.

    Returns the chain's first run.
    """
    from medview.pipeline.chain import Chain, chain_schema
    from medview.pipeline.registry import get_step
    from medview.pipeline.runner import run_chain

    spec = get_step(step_id)
    assert spec.category == category and spec.title and spec.version == 1
    if single_volume_input:
        assert spec.takes_progress and [i.kind for i in spec.inputs] == ["volume"]
    if input_names is not None:
        assert [i.name for i in spec.inputs] == input_names
    schema = spec.params_schema()
    assert set(schema["properties"]) == {p.name for p in spec.params}
    assert all(p.help for p in spec.params), "every parameter has help text"
    defaults = spec.defaults()
    for name, value in defaults.items():
        assert schema["properties"][name]["default"] == value
        assert spec.param(name).validate(value) == value
    json.dumps(chain_schema())
    step = {"step": step_id, "params": defaults}
    if step_inputs is not None:
        step["inputs"] = step_inputs
    definition = {"inputs": {name: "labelmap" if isinstance(value, LabelMap) else "volume"
                             for name, value in inputs.items()},
                  "steps": [step]}
    if json_round_trip:
        definition = json.loads(json.dumps(definition))
    chain = Chain.from_dict(definition)
    image = next(iter(inputs.values()))
    result = run_chain(chain, dict(inputs))
    out = result.result
    if table:
        assert isinstance(out, Table) and len(out) >= 1
        json.loads(out.to_json())
    else:
        assert isinstance(out, kind)
        if not_kind is not None:
            assert not isinstance(out, not_kind)
        assert out.array.dtype == dtype
        assert out.shape == image.shape and out.same_grid(image)
        if rgb is not None:
            assert out.is_rgb == rgb
        np.testing.assert_array_equal(out.direction, image.direction)
        if modality is not None:
            assert out.metadata["Modality"] == modality
        if changes_input:
            assert not np.array_equal(out.array, image.array)  # the default does something
    for key, part_kind in (also or {}).items():
        part = result.values[f"step1.{key}"]
        assert isinstance(part, part_kind)
        if also_grid and isinstance(part, Volume):
            assert part.same_grid(image)
        if also_to_json:
            json.loads(part.to_json())
    again = run_chain(chain, dict(inputs)).result
    if isinstance(out, Table):
        assert again.rows == out.rows
    else:
        np.testing.assert_array_equal(again.array, out.array)  # deterministic
    return result
