"""Live preview of a chain on one slice of the acquired plane, in plain Python (no Qt).

The chain runs on a thin slab of the series around the current slice (voxel z): one slice
when every enabled step works slice by slice, or ``±halo`` slices when a step needs 3D
context, so that the middle slice of the slab's result equals that slice of a full run.
Each step declares what it needs where it is registered (``register(..., margin=...)``, see
:mod:`medview.pipeline.margin`): slice by slice, a 3D reach in mm or voxels, or the whole
volume. Steps that need the whole volume (multi-Otsu, k-means, components, region growing,
the classifier, statistics, registration, third-party steps that declare nothing) see only
the slab, so their preview is an approximation; the panel says so. Halos add up along the
chain and are capped at :data:`MAX_HALO_SLICES` (beyond it the preview is marked
approximate). Inputs on the series' grid (e.g. scribbles) are cut to the same slab; others (a
moving series) are passed whole.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.labelmap import LabelMap, Segment
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import Chain, ChainStep
from medview.pipeline.margin import EXACT, Margin
from medview.pipeline.runner import ChainResult, run_chain

__all__ = ["MAX_HALO_SLICES", "PreviewResult", "chain_context", "displayable",
           "run_preview", "slab", "step_context"]

#: The most slices taken on each side of the previewed one.
MAX_HALO_SLICES = 16


def step_context(cs: ChainStep) -> Margin:
    """The margin one step needs, as it declared it where it is registered (see
    :mod:`medview.pipeline.margin`); a step that declared none needs the whole volume."""
    return cs.spec.preview_margin(cs.params)


def chain_context(chain: Chain) -> Margin:
    """The margin of every enabled step, added up."""
    ctx = EXACT
    for cs in chain.steps:
        if cs.enabled:
            ctx = ctx + step_context(cs)
    return ctx


def slab(volume: Volume, z0: int, z1: int) -> Volume:
    """Slices ``z0 <= z < z1`` of ``volume`` as a Volume (LabelMap) at their own position."""
    nz = volume.shape[0]
    if not 0 <= z0 < z1 <= nz:
        raise ValueError(f"z0, z1: expected 0 <= z0 < z1 <= {nz}, got {z0}, {z1}")
    origin = tuple(float(c) for c in volume.index_to_lps((0.0, 0.0, float(z0))))
    array = np.ascontiguousarray(volume.array[z0:z1])
    if isinstance(volume, LabelMap):
        return LabelMap(array, volume.spacing, origin, volume.direction, volume.metadata,
                        (), volume.segments)
    return Volume(array, volume.spacing, origin, volume.direction, volume.metadata)


@dataclass(frozen=True)
class PreviewResult:
    """One previewed slice.

    ``kind`` is ``"labels"`` (``image`` holds label numbers, ``segments`` their names and
    colours), ``"image"`` (a derived grey slice), ``"rgb"`` (``[y, x, 3]`` uint8) or
    ``"none"`` (the chain made only tables).
    """

    z: int
    kind: str
    image: np.ndarray | None
    segments: tuple[Segment, ...]
    name: str
    seconds: float
    halo: int
    exact: bool


def displayable(result: ChainResult, exclude: set[str]) -> tuple[str, Any] | None:
    """The value to show of a chain's result: its main result if it is a Volume or
    LabelMap, else the last one made; None when it made only tables."""
    main = result.values.get(result.main)
    if isinstance(main, Volume):
        return result.main, main
    for name, value in reversed(list(result.outputs(exclude=exclude).items())):
        if isinstance(value, Volume):
            return name, value
    return None


def run_preview(chain: Chain, inputs: Mapping[str, Any], z: int, *,
                progress: Progress = NO_PROGRESS) -> PreviewResult:
    """Run ``chain`` on the slab of slice ``z`` of the first input (locally).

    ``inputs`` are whole volumes, as for :func:`run_chain`; those on the first input's
    grid are cut to the slab. Raises what the chain raises.
    """
    t0 = time.perf_counter()
    first = next(iter(chain.inputs))
    base: Volume = inputs[first]
    ctx = chain_context(chain)
    halo = ctx.slices(float(base.spacing[2]))
    exact = ctx.exact and halo <= MAX_HALO_SLICES
    halo = min(halo, MAX_HALO_SLICES)
    nz = base.shape[0]
    z = int(min(max(int(z), 0), nz - 1))
    z0, z1 = max(0, z - halo), min(nz, z + halo + 1)
    cut = {name: slab(v, z0, z1) if isinstance(v, Volume) and v.same_grid(base) else v
           for name, v in inputs.items()}
    result = run_chain(chain, cut, progress=progress)
    shown = displayable(result, set(chain.inputs))
    seconds = time.perf_counter() - t0
    if shown is None:
        return PreviewResult(z, "none", None, (), "", seconds, halo, exact)
    name, value = shown
    image = value.array[z - z0]
    if isinstance(value, LabelMap):
        return PreviewResult(z, "labels", image, value.segments, name, seconds, halo, exact)
    kind = "rgb" if value.is_rgb else "image"
    return PreviewResult(z, kind, image, (), name, seconds, halo, exact)
