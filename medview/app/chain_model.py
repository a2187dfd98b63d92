"""The chain being edited in the chain panel, in plain Python (no Qt).

The model edits a :class:`~medview.pipeline.chain.Chain` and its
:class:`~medview.pipeline.chain.ChainStep` objects directly (``model.chain``; ``model.steps``
is ``model.chain.steps``): there is one record of a chain, the one ``medview run`` reads and
the runner runs. Every edit is validated through the step registry:
:meth:`ChainModel.set_param` checks a value against its
:class:`~medview.pipeline.registry.ParamSpec` (bounds, choices, point counts) and raises
:class:`~medview.pipeline.chain.ChainError` naming the parameter, leaving the model unchanged.
A step keeps its identity across moves (the list widget keys its rows by :meth:`ChainModel.uids`).

Disabled steps are kept in the JSON with ``"enabled": false`` (the chain format allows it:
:mod:`medview.pipeline.chain` skips them and passes their input through), so that
``medview run`` and the panel read the same file and nothing a user switched off is lost.

Events (psygnal signals):

- ``steps_changed()`` — steps were added, removed, moved or a chain was loaded.
- ``step_changed(index)`` — a step's parameters, enabled flag, inputs or output changed.
- ``selection_changed(index)`` — the selected step (``-1``: none).
- ``changed()`` — any of the above that changes the chain (what the live preview follows).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from psygnal import Signal

from medview.pipeline.chain import Chain, ChainError, ChainStep, param_value
from medview.pipeline.registry import get_step

__all__ = ["ChainModel", "result_layer_names"]


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
        #: the chain being edited (not validated as a whole until :meth:`to_chain`)
        self.chain = Chain([], dict(inputs or {"image": "volume"}))
        self._selected = -1

    def __len__(self) -> int:
        return len(self.chain.steps)

    @property
    def steps(self) -> list[ChainStep]:
        """The chain's steps (``chain.steps``); change them through the model's methods."""
        return self.chain.steps

    @property
    def inputs(self) -> dict[str, str]:
        return self.chain.inputs

    @property
    def name(self) -> str:
        return self.chain.name

    @property
    def description(self) -> str:
        return self.chain.description

    def uids(self) -> list[int]:
        """An identifier per step, in order, that follows the step when it moves."""
        return [id(s) for s in self.steps]

    def _emit_structure(self) -> None:
        self.steps_changed.emit()
        self.changed.emit()

    def _emit_step(self, index: int) -> None:
        self.step_changed.emit(index)
        self.changed.emit()

    # -- structure ---------------------------------------------------------------------
    def add_step(self, step_id: str, *, index: int | None = None,
                 params: dict[str, Any] | None = None) -> int:
        """Insert step ``step_id`` (default: at the end) with default parameters, updated by
        ``params`` (validated); select it and return its index.

        Raises
        ------
        KeyError
            For an unknown step id.
        ChainError
            For an invalid parameter, naming the step and the parameter.
        """
        spec = get_step(step_id)
        # a required parameter starts empty: problems() reports it until the user fills it
        values = {p.name: p.placeholder() for p in spec.params}
        index = len(self.steps) if index is None else max(0, min(int(index), len(self.steps)))
        for name, value in (params or {}).items():
            values[name] = param_value(spec, name, value, step_index=index)
        self.steps.insert(index, ChainStep(step_id, values, spec.version))
        self._emit_structure()
        self._selected = -2  # the indices moved: always tell the listeners
        self.select(index)
        return index

    def remove_step(self, index: int) -> ChainStep:
        old = self._selected
        step = self.steps.pop(self._check(index))
        self._emit_structure()
        new = old - 1 if old > index else (min(index, len(self.steps) - 1) if old == index
                                           else old)
        self._selected = -2  # the indices moved: always tell the listeners
        self.select(new)
        return step

    def move_step(self, source: int, dest: int) -> None:
        """Move the step at ``source`` so that it ends up at index ``dest``."""
        self._check(source)
        dest = max(0, min(int(dest), len(self.steps) - 1))
        if source == dest:
            return
        step = self.steps.pop(source)
        self.steps.insert(dest, step)
        self._emit_structure()
        self._selected = -2
        self.select(dest)

    def set_order(self, uids: list[int]) -> None:
        """Reorder the steps to the given :meth:`uids` (a drag in the list widget)."""
        by_uid = dict(zip(self.uids(), self.steps, strict=True))
        if sorted(uids) != sorted(by_uid):
            raise ValueError("uids: expected a permutation of the steps' uids")
        if self.uids() == list(uids):
            return
        selected = self.selected_step
        self.steps[:] = [by_uid[u] for u in uids]
        self._emit_structure()
        self._selected = -2
        self.select(self.uids().index(id(selected)) if selected is not None else -1)

    def clear(self) -> None:
        if not self.steps:
            return
        self.steps.clear()
        self._emit_structure()
        self.select(-1)

    # -- selection ---------------------------------------------------------------------
    @property
    def selected(self) -> int:
        return self._selected

    @property
    def selected_step(self) -> ChainStep | None:
        return self.steps[self._selected] if 0 <= self._selected < len(self.steps) else None

    def select(self, index: int) -> None:
        index = int(index) if 0 <= int(index) < len(self.steps) else -1
        if index != self._selected:
            self._selected = index
            self.selection_changed.emit(index)

    # -- one step ----------------------------------------------------------------------
    def set_enabled(self, index: int, enabled: bool) -> None:
        step = self.steps[self._check(index)]
        if step.enabled != bool(enabled):
            step.enabled = bool(enabled)
            self._emit_step(index)

    def set_param(self, index: int, name: str, value: Any) -> Any:
        """Set parameter ``name`` of step ``index``; returns the validated value.

        Raises
        ------
        ValueError
            Naming the step and parameter when the value is out of range or of the wrong
            kind; the model is unchanged.
        """
        step = self.steps[self._check(index)]
        value = param_value(step.spec, name, value, step_index=index)
        if step.params.get(name) != value:
            step.params[name] = value
            self._emit_step(index)
        return value

    def set_inputs(self, index: int, inputs: dict[str, str]) -> None:
        """Connect step ``index``'s inputs (step input name → source; checked by
        :meth:`problems`)."""
        step = self.steps[self._check(index)]
        if step.inputs != dict(inputs):
            step.inputs = dict(inputs)
            self._emit_step(index)

    def set_output(self, index: int, output: str) -> None:
        """Name step ``index``'s result (empty: ``stepN``)."""
        step = self.steps[self._check(index)]
        if step.output != str(output):
            step.output = str(output)
            self._emit_step(index)

    # -- validation and conversion -----------------------------------------------------
    def to_dict(self) -> dict:
        """The chain as JSON data (a copy: editing the model later does not change it)."""
        return copy.deepcopy(self.chain.to_dict())

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
        return self.chain.to_json() + "\n"

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

        return write_text_atomic(path, self.to_chain().to_json() + "\n")

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
        """Edit a copy of ``chain`` (``chain`` itself is left alone)."""
        self.chain = Chain([s.copy() for s in chain.steps], dict(chain.inputs), chain.name,
                           chain.description)
        self._emit_structure()
        self._selected = -2
        self.select(0 if self.steps else -1)

    def _check(self, index: int) -> int:
        if not 0 <= int(index) < len(self.steps):
            raise IndexError(f"step index {index} is outside 0..{len(self.steps) - 1}")
        return int(index)


def result_layer_names(chain, names) -> dict[str, str]:
    """Layer names for a run's result names: a step's ``output`` name as it is; an unnamed
    step's ``stepN`` (and ``stepN.part``) becomes the step's title (``Threshold``,
    ``Connected components.table``), which a reader recognises in the chain list."""
    titles = {w.name: w.step.spec.title for w in chain.wiring()
              if w.step.enabled and not w.step.output}
    out = {}
    for name in names:
        base, dot, part = name.partition(".")
        out[name] = titles[base] + dot + part if base in titles else name
    return out
