"""The chain being edited in the chain panel, in plain Python (no Qt).

An ordered list of :class:`StepEntry` (step id, parameters, enabled flag, named inputs and
output), validated through the step registry: :meth:`ChainModel.set_param` checks a value
against its :class:`~medview.pipeline.registry.ParamSpec` (bounds, choices, point counts) and
raises :class:`ValueError` naming the parameter, leaving the model unchanged.

Disabled steps are kept in the JSON with ``"enabled": false`` (the chain format allows it:
:mod:`medview.pipeline.chain` skips them and passes their input through), so that
``medview run`` and the panel read the same file and nothing a user switched off is lost.

Events (psygnal signals):

- ``steps_changed()`` — steps were added, removed, moved or a chain was loaded.
- ``step_changed(index)`` — a step's parameters or enabled flag changed.
- ``selection_changed(index)`` — the selected step (``-1``: none).
- ``changed()`` — any of the above that changes the chain (what the live preview follows).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

from medview.pipeline.chain import FORMAT, FORMAT_VERSION, Chain, ChainError
from medview.pipeline.params import ParamSpec
from medview.pipeline.registry import StepSpec, get_step

__all__ = ["ChainModel", "StepEntry", "placeholder"]

_uids = itertools.count(1)


def placeholder(p: ParamSpec) -> Any:
    """The value a new step starts with: the default, or an empty value for a required one
    (which :meth:`ChainModel.problems` reports until the user fills it)."""
    return p.placeholder()


@dataclass
class StepEntry:
    """One step of the edited chain; ``uid`` identifies it across moves (for list widgets)."""

    step: str
    params: dict[str, Any]
    enabled: bool = True
    inputs: dict[str, str] = field(default_factory=dict)
    output: str = ""
    version: int = 1
    uid: int = field(default_factory=lambda: next(_uids))

    @property
    def spec(self) -> StepSpec:
        return get_step(self.step)

    @property
    def title(self) -> str:
        return self.spec.title

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"step": self.step, "version": self.version,
                             "params": copy.deepcopy(self.params)}
        if self.inputs:
            d["inputs"] = dict(self.inputs)
        if self.output:
            d["output"] = self.output
        if not self.enabled:
            d["enabled"] = False
        return d


class ChainModel:
    """An editable chain: add, remove, move, enable, set parameters, load and save.

    Parameters
    ----------
    inputs : dict, optional
        The chain's named inputs (name → ``"volume"`` or ``"labelmap"``); default one
        volume called ``"image"``.
    """

    steps_changed = Signal()
    step_changed = Signal(int)
    selection_changed = Signal(int)
    changed = Signal()

    def __init__(self, *, inputs: dict[str, str] | None = None):
        self.steps: list[StepEntry] = []
        self.inputs: dict[str, str] = dict(inputs or {"image": "volume"})
        self.name = ""
        self.description = ""
        self._selected = -1

    def __len__(self) -> int:
        return len(self.steps)

    # -- structure ---------------------------------------------------------------------
    def add_step(self, step_id: str, *, index: int | None = None,
                 params: dict[str, Any] | None = None) -> int:
        """Insert step ``step_id`` (default: at the end) with default parameters, updated by
        ``params`` (validated); select it and return its index.

        Raises
        ------
        KeyError
            For an unknown step id.
        ValueError
            For an invalid parameter, naming it.
        """
        spec = get_step(step_id)
        values = {p.name: placeholder(p) for p in spec.params}
        for name, value in (params or {}).items():
            values[name] = _validate(spec, name, value)
        entry = StepEntry(step_id, values, version=spec.version)
        index = len(self.steps) if index is None else max(0, min(int(index), len(self.steps)))
        self.steps.insert(index, entry)
        self.steps_changed.emit()
        self.changed.emit()
        self.select(index)
        return index

    def remove_step(self, index: int) -> StepEntry:
        old = self._selected
        entry = self.steps.pop(self._check(index))
        self.steps_changed.emit()
        self.changed.emit()
        new = old - 1 if old > index else (min(index, len(self.steps) - 1) if old == index
                                           else old)
        self._selected = -2  # the indices moved: always tell the listeners
        self.select(new)
        return entry

    def move_step(self, source: int, dest: int) -> None:
        """Move the step at ``source`` so that it ends up at index ``dest``."""
        self._check(source)
        dest = max(0, min(int(dest), len(self.steps) - 1))
        if source == dest:
            return
        entry = self.steps.pop(source)
        self.steps.insert(dest, entry)
        self.steps_changed.emit()
        self.changed.emit()
        self._selected = -2
        self.select(dest)

    def set_order(self, uids: list[int]) -> None:
        """Reorder the steps to the given uids (a drag in the list widget)."""
        by_uid = {s.uid: s for s in self.steps}
        if sorted(uids) != sorted(by_uid):
            raise ValueError("uids: expected a permutation of the steps' uids")
        if [s.uid for s in self.steps] == list(uids):
            return
        selected = self.selected_entry
        self.steps = [by_uid[u] for u in uids]
        self.steps_changed.emit()
        self.changed.emit()
        self._selected = -2
        self.select(self.steps.index(selected) if selected is not None else -1)

    def clear(self) -> None:
        self.steps = []
        self.steps_changed.emit()
        self.changed.emit()
        self.select(-1)

    # -- selection ---------------------------------------------------------------------
    @property
    def selected(self) -> int:
        return self._selected

    @property
    def selected_entry(self) -> StepEntry | None:
        return self.steps[self._selected] if 0 <= self._selected < len(self.steps) else None

    def select(self, index: int) -> None:
        index = int(index) if 0 <= int(index) < len(self.steps) else -1
        if index != self._selected:
            self._selected = index
            self.selection_changed.emit(index)

    # -- one step ----------------------------------------------------------------------
    def set_enabled(self, index: int, enabled: bool) -> None:
        entry = self.steps[self._check(index)]
        if entry.enabled != bool(enabled):
            entry.enabled = bool(enabled)
            self.step_changed.emit(index)
            self.changed.emit()

    def set_param(self, index: int, name: str, value: Any) -> Any:
        """Set parameter ``name`` of step ``index``; returns the validated value.

        Raises
        ------
        ValueError
            Naming the step and parameter when the value is out of range or of the wrong
            kind; the model is unchanged.
        """
        entry = self.steps[self._check(index)]
        value = _validate(entry.spec, name, value, index=index)
        if entry.params.get(name) != value:
            entry.params[name] = value
            self.step_changed.emit(index)
            self.changed.emit()
        return value

    def set_inputs(self, index: int, inputs: dict[str, str]) -> None:
        entry = self.steps[self._check(index)]
        entry.inputs = dict(inputs)
        self.step_changed.emit(index)
        self.changed.emit()

    def set_output(self, index: int, output: str) -> None:
        entry = self.steps[self._check(index)]
        entry.output = str(output)
        self.step_changed.emit(index)
        self.changed.emit()

    # -- validation and conversion -----------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
                "description": self.description, "inputs": dict(self.inputs),
                "steps": [s.to_dict() for s in self.steps]}

    def to_chain(self) -> Chain:
        """The chain, validated by :meth:`Chain.from_dict`.

        Raises
        ------
        ChainError
            Naming the step, the parameter and the reason (e.g. seeds not picked yet).
        """
        return Chain.from_dict(self.to_dict())

    def problems(self) -> list[str]:
        """What stops the chain from running, as messages (empty: it is valid)."""
        try:
            self.to_chain()
        except ChainError as exc:
            return [str(exc)]
        return []

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the chain as JSON to ``path`` atomically (a temporary file, then rename).

        Raises
        ------
        ChainError
            If the chain is invalid (nothing is written): a saved chain always loads.
        OSError
            If the file cannot be written (nothing half-written is left).
        """
        from medview.atomic import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_chain().to_dict(), indent=2) + "\n")

    def load(self, path: str | os.PathLike) -> None:
        """Replace the chain by the one in ``path`` (validated first: on error, unchanged).

        Raises
        ------
        ChainError
            Naming the file and the problem.
        OSError
            If the file cannot be read.
        """
        try:
            chain = Chain.load(path)
        except ChainError as exc:
            msg = str(exc)
            raise ChainError(msg if str(path) in msg else f"{path}: {msg}") from None
        self.set_chain(chain)

    def set_chain(self, chain: Chain) -> None:
        self.steps = [StepEntry(cs.step, copy.deepcopy(cs.params), cs.enabled,
                                dict(cs.inputs), cs.output, cs.version) for cs in chain.steps]
        self.inputs = dict(chain.inputs)
        self.name = chain.name
        self.description = chain.description
        self.steps_changed.emit()
        self.changed.emit()
        self._selected = -2
        self.select(0 if self.steps else -1)

    def _check(self, index: int) -> int:
        if not 0 <= int(index) < len(self.steps):
            raise IndexError(f"step index {index} is outside 0..{len(self.steps) - 1}")
        return int(index)


def _validate(spec: StepSpec, name: str, value: Any, *, index: int | None = None) -> Any:
    try:
        p = spec.param(name)
    except KeyError:
        raise ChainError(f"unknown parameter; this step takes "
                         f"{', '.join(q.name for q in spec.params)}", step_index=index,
                         step_id=spec.id, param=name) from None
    try:
        return p.validate(value)
    except ValueError as exc:
        raise ChainError(str(exc), step_index=index, step_id=spec.id, param=name) from None


def result_layer_names(chain, names) -> dict[str, str]:
    """Layer names for a run's result names: a step's ``output`` name as it is; an unnamed
    step's ``stepN`` (and ``stepN.part``) becomes the step's title (``Threshold``,
    ``Connected components.table``), which a reader recognises in the chain list."""
    titles = {}
    for i, cs in enumerate(chain.steps):
        if cs.enabled and not cs.output:
            titles[f"step{i + 1}"] = cs.spec.title
    out = {}
    for name in names:
        base, dot, part = name.partition(".")
        out[name] = titles[base] + dot + part if base in titles else name
    return out
