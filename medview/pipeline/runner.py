"""Run a chain locally: step by step, with progress per step and cancellation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medview.core.labelmap import LabelMap
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import Chain, ChainError, ChainStep
from medview.pipeline.memory import check_memory

__all__ = ["ChainResult", "run_chain", "run_step"]


@dataclass
class ChainResult:
    """Every named value a chain produced; ``main`` names the last step's result."""

    values: dict[str, Any]
    main: str
    seconds: dict[str, float] = field(default_factory=dict)
    #: a multi-output step's name → its first part (``"seg"`` → ``"seg.labels"``)
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> Any:
        return self.values[self.main]

    def outputs(self, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """Every value the chain made, once each (no aliases), without ``exclude``."""
        skip = set(exclude) | set(self.aliases)
        return {k: v for k, v in self.values.items() if k not in skip}

    @property
    def main_output(self) -> str:
        """The name under which :meth:`outputs` holds the main result."""
        return self.aliases.get(self.main, self.main)


def run_step(cs: ChainStep, inputs: Mapping[str, Any], progress: Progress = NO_PROGRESS) -> Any:
    """Call one step's function with its inputs and validated parameters."""
    spec = cs.spec
    args = [inputs.get(i.name) for i in spec.inputs]
    kwargs = dict(cs.params)
    if spec.takes_progress:
        kwargs["progress"] = progress
    return spec.func(*args, **kwargs)


def _check_input(cs: ChainStep, name: str, kind: str, value: Any, index: int) -> None:
    ok = isinstance(value, LabelMap) if kind == "labelmap" else isinstance(value, Volume)
    if not ok:
        raise ChainError(f"input {name!r} needs a {kind}, got {type(value).__name__}",
                         step_index=index, step_id=cs.step)


def run_chain(chain: Chain, inputs: Mapping[str, Any], *,
              progress: Progress = NO_PROGRESS, step_runner=None,
              on_output: Callable[[str, Any], None] | None = None) -> ChainResult:
    """Run ``chain`` on ``inputs`` (chain input name → Volume/LabelMap).

    ``step_runner(cs, inputs, progress)`` runs each step instead of :func:`run_step` (a Dask
    worker splits the steps that allow it over the cluster: :mod:`medview.pipeline.split`).
    ``on_output(name, value)`` is told each output as soon as its step has made it, under the
    name :meth:`ChainResult.outputs` gives it (a server writes it into the result while the
    later steps run).

    Raises
    ------
    ChainError
        If an input is missing or of the wrong kind.
    medview.pipeline.memory.NotEnoughMemory
        Before a step that would need more memory than is available (local runs).
    medview.core.progress.Cancelled
        When ``progress`` is cancelled (checked between steps and inside them).
    """
    values: dict[str, Any] = {}
    for name, kind in chain.inputs.items():
        if name not in inputs:
            raise ChainError(f"chain input {name!r} ({kind}) was not given; inputs: "
                             f"{', '.join(inputs) or 'none'}")
        value = inputs[name]
        if (kind == "labelmap" and not isinstance(value, LabelMap)) or not isinstance(
            value, Volume
        ):
            raise ChainError(f"chain input {name!r} must be a {kind}, got {type(value).__name__}")
        values[name] = value
    prev = next(iter(chain.inputs))
    active = [w for w in chain.wiring() if w.step.enabled]
    seconds: dict[str, float] = {}
    aliases: dict[str, str] = {}
    for n, wire in enumerate(active):
        i, cs, name = wire.index, wire.step, wire.name
        progress.check()
        sub = progress.sub(n / len(active), (n + 1) / len(active))
        sub.update(0.0, f"{cs.spec.title} ({n + 1}/{len(active)})")
        step_inputs = {}
        for inp in cs.spec.inputs:
            key = wire.reads.get(inp.name)
            if key is None:
                continue
            if key not in values:
                raise ChainError(f"input {inp.name!r} reads {key!r}, which was not produced",
                                 step_index=i, step_id=cs.step)
            _check_input(cs, inp.name, inp.kind, values[key], i)
            step_inputs[inp.name] = values[key]
        if step_runner is None:
            # a local run that cannot fit is refused before it starts (a cluster's runner
            # splits the work over its own workers' memory)
            check_memory(cs.spec, step_inputs, step_index=i)
        t0 = time.perf_counter()
        out = (step_runner or run_step)(cs, step_inputs, sub)
        seconds[name] = time.perf_counter() - t0
        if isinstance(out, Mapping):
            if not out:
                raise ChainError("the step returned no result", step_index=i, step_id=cs.step)
            for key, value in out.items():
                values[f"{name}.{key}"] = value
            first = next(iter(out))
            values[name] = out[first]
            aliases[name] = f"{name}.{first}"
            made = [f"{name}.{key}" for key in out]
        else:
            values[name] = out
            made = [name]
        if on_output is not None:
            for key in made:
                on_output(key, values[key])
        prev = name
        sub.update(1.0, f"{cs.spec.title} done")
    progress.update(1.0, "chain done")
    return ChainResult(values, prev, seconds, aliases)
