"""One volume across several workers: a step split into slabs along z, each with a halo.

A step declares in the registry whether it is safe to split (:attr:`StepSpec.halo`): an
in-plane step works slice by slice (halo 0), a 3D step with a kernel of known reach needs that
many neighbouring slices on each side of a slab for the slab's own slices to equal the whole
run's. Every other step runs whole. :func:`run_step_split` cuts the input into slabs with
their halos, runs the step on each through ``map_slabs`` (in this process, or on Dask workers:
:mod:`medview.server.worker`), crops the halos and stacks the slabs back together.
No Dask here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from medview.core.labelmap import LabelMap
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import ChainStep

__all__ = ["plan_slabs", "run_slab", "run_step_split", "split_halo"]

#: ``map_slabs(run_slab, [(step_id, params, array, geometry), ...])`` → the slabs' outputs
MapSlabs = Callable[[Callable, Sequence[tuple]], Sequence[tuple]]


def split_halo(cs: ChainStep, inputs: Mapping[str, Any]) -> int | None:
    """The halo (slices) to split ``cs`` on ``inputs`` with, or None when it runs whole: a
    step not declared safe to split, or with more than one given input."""
    given = [v for v in inputs.values() if v is not None]
    if cs.spec.returns not in ("volume", "labelmap") or len(given) != 1 or \
            not isinstance(given[0], Volume):
        return None
    return cs.spec.split_halo(dict(cs.params), given[0].spacing)


def plan_slabs(nz: int, n: int, halo: int) -> list[tuple[int, int, int, int]]:
    """``n`` slabs of ``nz`` slices: ``(lo, hi, keep_lo, keep_hi)`` each, the slices read
    (with the halo, clipped to the volume) and, relative to ``lo``, the slices kept."""
    n = max(1, min(n, nz))
    edges = np.linspace(0, nz, n + 1).round().astype(int)
    out = []
    for a, b in itertools.pairwise(edges):
        lo, hi = max(0, a - halo), min(nz, b + halo)
        out.append((int(lo), int(hi), int(a - lo), int(b - lo)))
    return out


def _geometry(v: Volume, lo: int) -> tuple:
    origin = np.asarray(v.origin) + v.direction @ np.array([0.0, 0.0, lo * v.spacing[2]])
    return (v.spacing, tuple(float(o) for o in origin), np.asarray(v.direction).tolist(),
            dict(v.metadata))


def run_slab(step_id: str, params: dict, array: np.ndarray, geometry: tuple,
             labels: bool = False) -> tuple[np.ndarray, list, dict]:
    """Run step ``step_id`` on one slab; returns its output's array, segments and metadata
    (plain data: what travels between workers)."""
    from medview.pipeline.registry import get_step
    from medview.pipeline.runner import run_step

    spacing, origin, direction, metadata = geometry
    cls = LabelMap if labels else Volume
    vol = cls(array, spacing, origin, np.asarray(direction), metadata)
    cs = ChainStep(step_id, dict(params), get_step(step_id).version)
    out = run_step(cs, {cs.spec.inputs[0].name: vol})
    segments = list(out.segments) if isinstance(out, LabelMap) else None
    return out.array, segments, dict(out.metadata)


def run_step_split(cs: ChainStep, inputs: Mapping[str, Any], *, slabs: int,
                   map_slabs: MapSlabs, progress: Progress = NO_PROGRESS) -> Volume | None:
    """``cs`` on ``inputs`` in ``slabs`` slabs through ``map_slabs``; None when the step
    runs whole (then the caller runs it as usual)."""
    halo = split_halo(cs, inputs)
    if halo is None or slabs < 2:
        return None
    (vol,) = [v for v in inputs.values() if v is not None]
    plan = plan_slabs(vol.shape[0], slabs, halo)
    if len(plan) < 2:
        return None
    progress.update(0.0, f"{cs.spec.title}: {len(plan)} slabs (halo {halo})")
    labels = isinstance(vol, LabelMap)
    work = [(cs.step, dict(cs.params), vol.array[lo:hi], _geometry(vol, lo), labels)
            for lo, hi, _, _ in plan]
    outs = map_slabs(run_slab, work)
    progress.check()
    pieces = [arr[k0:k1] for (arr, _, _), (_, _, k0, k1) in zip(outs, plan, strict=True)]
    array = np.concatenate(pieces, axis=0)
    _, segments, metadata = outs[0]
    if segments is not None:
        merged = {s.number: s for _, segs, _ in outs for s in segs}
        return LabelMap(array, vol.spacing, vol.origin, vol.direction, metadata, (),
                        tuple(merged[k] for k in sorted(merged)))
    return Volume(array, vol.spacing, vol.origin, vol.direction, metadata)


def local_map(func: Callable, work: Sequence[tuple]) -> list:
    """``map_slabs`` in this process, one slab after the other (tests, reference)."""
    return [func(*args) for args in work]
