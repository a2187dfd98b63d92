"""Chains: an ordered list of steps with named inputs, as JSON.

.. code-block:: json

    {
      "format": "medview-chain", "version": 1, "name": "CT denoise + lung threshold",
      "inputs": {"image": "volume"},
      "steps": [
        {"step": "smooth.gaussian", "version": 1, "params": {"sigma_mm": 1.0}},
        {"step": "segment.threshold", "version": 1, "params": {"low": -1000, "high": -400},
         "inputs": {"volume": "$prev"}, "output": "lungs"}
      ]
    }

Each step reads its data inputs from named values: chain inputs (``"image"``), earlier
steps' outputs (``"output"`` names; by default ``"step1"``, ``"step2"`` …) or ``"$prev"`` (the
previous step's result; the default for a step's first input, which for the first step is the
first chain input). A step may be disabled (``"enabled": false``): it is skipped and passes its
input through. Every volume, label map and table a step makes is a result of the chain; the
last step's result is its main result.

Those naming rules live in one place, :meth:`Chain.wiring`: validation, the runner and the
GUI (layer names, windows) all read a step's sources and result name from it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.pipeline.registry import StepSpec, all_steps, get_step

__all__ = ["FORMAT", "FORMAT_VERSION", "PREV", "Chain", "ChainError", "ChainStep", "Wire",
           "chain_schema", "param_value", "wiring"]

FORMAT = "medview-chain"
FORMAT_VERSION = 1
INPUT_KINDS = ("volume", "labelmap")
#: the source name meaning "the previous enabled step's result" (or the first chain input)
PREV = "$prev"


class ChainError(ValueError):
    """An invalid chain: says which step, which parameter and why."""

    def __init__(self, message: str, *, step_index: int | None = None,
                 step_id: str | None = None, param: str | None = None):
        where = ""
        if step_index is not None:
            where = f"step {step_index + 1}" + (f" ({step_id})" if step_id else "")
            if param:
                where += f", parameter {param!r}"
            where += ": "
        super().__init__(where + message)
        self.step_index = step_index
        self.step_id = step_id
        self.param = param


@dataclass
class ChainStep:
    """One step of a chain with its validated parameters."""

    step: str
    params: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    inputs: dict[str, str] = field(default_factory=dict)
    output: str = ""
    enabled: bool = True

    @property
    def spec(self) -> StepSpec:
        return get_step(self.step)

    def copy(self) -> ChainStep:
        """An independent copy (parameters deep-copied)."""
        return ChainStep(self.step, copy.deepcopy(self.params), self.version, dict(self.inputs),
                         self.output, self.enabled)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"step": self.step, "version": self.version, "params": self.params}
        if self.inputs:
            d["inputs"] = self.inputs
        if self.output:
            d["output"] = self.output
        if not self.enabled:
            d["enabled"] = False
        return d


@dataclass(frozen=True)
class Wire:
    """Where one step of a chain reads its inputs and the name its result gets."""

    #: the step's position in the chain (0 = first)
    index: int
    step: ChainStep
    #: step input name → the value it reads: a chain input, an earlier result's name, or a
    #: part of a multi-output result (``"name.part"``); ``$prev`` is resolved
    reads: dict[str, str]
    #: the name of the step's result: its ``output``, else ``"stepN"`` (N = index + 1)
    name: str


def wiring(steps: list[ChainStep], inputs: Mapping[str, str]) -> Iterator[Wire]:
    """Each step's :class:`Wire`, in order: the one place where ``$prev``, the default first
    input and the ``stepN`` result names are resolved.

    A step's first input reads ``$prev`` unless it names a source; ``$prev`` is the last
    enabled step's result before it, or the first chain input. A disabled step is wired too
    (validation checks it) but does not become anyone's ``$prev``. Unconnected optional
    inputs are left out of ``reads``.
    """
    prev = next(iter(inputs))
    for i, cs in enumerate(steps):
        reads = {}
        for k, inp in enumerate(cs.spec.inputs):
            source = cs.inputs.get(inp.name, PREV if k == 0 else None)
            if source is not None:
                reads[inp.name] = prev if source == PREV else source
        name = cs.output or f"step{i + 1}"
        yield Wire(i, cs, reads, name)
        if cs.enabled:
            prev = name


def param_value(spec: StepSpec, name: str, value: Any, *, step_index: int | None = None,
                parse: bool = False) -> Any:
    """``value`` of parameter ``name`` of step ``spec``, validated by its kind (or, with
    ``parse``, read from command-line text).

    Raises
    ------
    ChainError
        Naming the step, the parameter and what is wrong (also for an unknown parameter).
    """
    try:
        p = spec.param(name)
    except KeyError:
        raise ChainError(f"unknown parameter; this step takes "
                         f"{', '.join(q.name for q in spec.params)}", step_index=step_index,
                         step_id=spec.id, param=name) from None
    try:
        return p.parse(value) if parse else p.validate(value)
    except ValueError as exc:
        raise ChainError(str(exc), step_index=step_index, step_id=spec.id,
                         param=name) from None


@dataclass
class Chain:
    """A validated chain."""

    steps: list[ChainStep]
    inputs: dict[str, str] = field(default_factory=lambda: {"image": "volume"})
    name: str = ""
    description: str = ""

    def with_params(self, assignments: list[str]) -> Chain:
        """A copy with parameters set from command-line text, ``STEP.PARAM=VALUE`` each.

        ``STEP`` is the step's number (1 = first), its output name or its step id (when one
        step has it); ``VALUE`` is read by the parameter's kind (``2.5``, ``true``,
        ``1, 5, 25``, ``1 2 1; 2 4 2; 1 2 1``, ``x, y, z; x, y, z``, a path …).

        Raises
        ------
        ChainError
            Naming the step, the parameter and what is wrong with the value.
        """
        steps = [s.copy() for s in self.steps]
        for text in assignments:
            target, sep, value = text.partition("=")
            where, dot, name = target.rpartition(".")
            if not sep or not dot or not where or not name:
                raise ChainError(f"{text!r}: expected STEP.PARAM=VALUE, e.g. 1.sigma_mm=2")
            i = self._find_step(where)
            steps[i].params[name] = param_value(steps[i].spec, name, value, step_index=i,
                                                parse=True)
        return Chain(steps, dict(self.inputs), self.name, self.description)

    def wiring(self) -> list[Wire]:
        """Each step's sources and result name (see :func:`wiring`)."""
        return list(wiring(self.steps, self.inputs))

    def _find_step(self, where: str) -> int:
        if where.isdigit() and 1 <= int(where) <= len(self.steps):
            return int(where) - 1
        for key in ("output", "step"):
            found = [i for i, s in enumerate(self.steps) if getattr(s, key) == where]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ChainError(f"{where!r} names {len(found)} steps; use the step's number")
        raise ChainError(f"no step {where!r}: give its number (1–{len(self.steps)}), output "
                         f"name or step id")

    # -- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
                "description": self.description, "inputs": dict(self.inputs),
                "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Chain:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ChainError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Chain:
        """Validate a chain read from JSON against the registry.

        Raises
        ------
        ChainError
            Naming the step, the parameter and the reason, before any work is done.
        """
        if not isinstance(data, dict):
            raise ChainError("a chain is a JSON object")
        if data.get("format", FORMAT) != FORMAT:
            raise ChainError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        version = data.get("version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ChainError(f"chain format version {version!r} is newer than this medview "
                             f"understands ({FORMAT_VERSION}); update medview")
        inputs = data.get("inputs", {"image": "volume"})
        if not isinstance(inputs, dict) or not inputs:
            raise ChainError("'inputs' must name at least one input, e.g. {\"image\": \"volume\"}")
        for name, kind in inputs.items():
            if kind not in INPUT_KINDS:
                raise ChainError(f"input {name!r}: kind {kind!r} is not one of {INPUT_KINDS}")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ChainError("'steps' must be a non-empty list")
        steps = [_validate_step(i, raw) for i, raw in enumerate(raw_steps)]
        known = dict(inputs)  # name -> kind of value available so far
        for wire in wiring(steps, inputs):
            _check_reads(wire, known)
            if wire.step.enabled:
                known[wire.name] = wire.step.spec.returns
        return cls(steps, dict(inputs), str(data.get("name", "")),
                   str(data.get("description", "")))


def _validate_step(i: int, raw: Any) -> ChainStep:
    """One step read from JSON: its id, version, keys, parameters, input names, flags."""
    if not isinstance(raw, dict) or "step" not in raw:
        raise ChainError("each step is an object with a 'step' id", step_index=i)
    sid = raw["step"]
    try:
        spec = get_step(sid)
    except KeyError as exc:
        raise ChainError(str(exc.args[0]), step_index=i, step_id=str(sid)) from None
    version = raw.get("version", spec.version)
    if version != spec.version:
        raise ChainError(f"version {version} requested, this medview has version "
                         f"{spec.version}", step_index=i, step_id=sid)
    unknown_keys = set(raw) - {"step", "version", "params", "inputs", "output", "enabled"}
    if unknown_keys:
        raise ChainError(f"unknown keys {sorted(unknown_keys)}", step_index=i, step_id=sid)
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict):
        raise ChainError("'params' must be an object", step_index=i, step_id=sid)
    names = {p.name for p in spec.params}
    for name in params:
        if name not in names:
            raise ChainError(f"unknown parameter; this step takes {', '.join(sorted(names))}",
                             step_index=i, step_id=sid, param=name)
    clean: dict[str, Any] = {}
    for p in spec.params:
        if p.name in params:
            try:
                clean[p.name] = p.validate(params[p.name])
            except ValueError as exc:
                raise ChainError(str(exc), step_index=i, step_id=sid, param=p.name) from None
        elif p.required:
            raise ChainError("required", step_index=i, step_id=sid, param=p.name)
        else:
            clean[p.name] = p.default
    inputs = dict(raw.get("inputs", {}) or {})
    input_names = {inp.name for inp in spec.inputs}
    for name in inputs:
        if name not in input_names:
            raise ChainError(f"unknown input {name!r}; this step takes "
                             f"{', '.join(sorted(input_names))}", step_index=i, step_id=sid)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ChainError("'enabled' must be true or false", step_index=i, step_id=sid)
    output = raw.get("output", "")
    if output and (not isinstance(output, str) or output.startswith("$")):
        raise ChainError(f"output name {output!r} is not a plain name", step_index=i,
                         step_id=sid)
    return ChainStep(sid, clean, version, inputs, output, enabled)


def _check_reads(wire: Wire, known: dict[str, str]) -> None:
    """Every input of ``wire``'s step is connected to a value of the right kind made before
    it (``known``: name → kind)."""
    i, sid, spec = wire.index, wire.step.step, wire.step.spec
    for inp in spec.inputs:
        resolved = wire.reads.get(inp.name)
        if resolved is None:
            if not inp.optional:
                raise ChainError(f"input {inp.name!r} ({inp.kind}) is not connected; set "
                                 f"\"inputs\": {{\"{inp.name}\": NAME}}", step_index=i,
                                 step_id=sid)
            continue
        base = resolved.split(".", 1)[0]
        if resolved not in known and known.get(base) == "outputs":
            continue  # a named part of a multi-output step: checked when the chain runs
        if resolved not in known:
            raise ChainError(f"input {inp.name!r} reads {resolved!r}, which is neither a "
                             f"chain input nor an earlier step's output ({', '.join(known)})",
                             step_index=i, step_id=sid)
        have = known[resolved]
        if have == "outputs":
            continue
        if inp.kind == "labelmap" and have != "labelmap":
            raise ChainError(f"input {inp.name!r} needs a label map, {resolved!r} is a {have}",
                             step_index=i, step_id=sid)
        if inp.kind == "volume" and have not in ("volume", "labelmap"):
            raise ChainError(f"input {inp.name!r} needs a volume, {resolved!r} is a {have}",
                             step_index=i, step_id=sid)


def chain_schema() -> dict:
    """JSON schema of a chain, generated from the registry (one branch per step)."""
    step_schemas = []
    for spec in all_steps():
        step_schemas.append({
            "type": "object",
            "title": spec.title,
            "properties": {
                "step": {"const": spec.id},
                "version": {"const": spec.version},
                "params": spec.params_schema(),
                "inputs": {"type": "object",
                           "properties": {i.name: {"type": "string"} for i in spec.inputs},
                           "additionalProperties": False},
                "output": {"type": "string"},
                "enabled": {"type": "boolean"},
            },
            "required": ["step"],
            "additionalProperties": False,
        })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "medview processing chain",
        "type": "object",
        "properties": {
            "format": {"const": FORMAT},
            "version": {"type": "integer", "maximum": FORMAT_VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "inputs": {"type": "object",
                       "additionalProperties": {"enum": list(INPUT_KINDS)}},
            "steps": {"type": "array", "minItems": 1, "items": {"oneOf": step_schemas}},
        },
        "required": ["steps"],
    }
