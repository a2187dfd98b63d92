"""Live preview of a chain on one slice of the acquired plane, in plain Python (no Qt).

The chain runs on a thin slab of the series around the current slice (voxel z): one slice
when every enabled step works slice by slice, or ``±halo`` slices when a step needs 3D
context, so that the middle slice of the slab's result equals that slice of a full run.
The halo of each step is decided from its kind and parameters (:func:`step_context`):

============================  ======================================  ==========
step                          halo (each side)                        exact?
============================  ======================================  ==========
smooth.gaussian, unsharp      0 in-plane, else 4·sigma_mm (the kernel)  yes
smooth.mean, smooth.median    0 in-plane or with a kernel, else size/2  yes
smooth.bilateral, canny,      0 (slice by slice)                      yes
gabor, lbp, threshold
sobel                         0 in 2D mode, else 1 voxel              yes
segment.open / close          0 in-plane, else 2·radius_mm            yes
otsu, li, triangle,           0                                       in-plane
fill_holes                                                            only
stretch, equalize             0                                       2D mode or
                                                                      fixed range
gamma, CLAHE                  0                                       fixed range
curvature diffusion           0 in-plane, else one voxel per          no (global
                              iteration                               conductance)
fuse.* (not registration)     0 (per voxel of the fixed grid)         yes
everything global             0                                       no
============================  ======================================  ==========

"Global" steps (multi-Otsu, k-means, components, keep largest, region growing, the
classifier, statistics, GLCM, registration, third-party steps) see only the slab, so their
preview is an approximation; the panel says so. Halos add up along the chain and are capped
at :data:`MAX_HALO_SLICES` (beyond it the preview is marked approximate). Inputs on the
series' grid (e.g. scribbles) are cut to the same slab; others (a moving series) are passed
whole.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from medview.core.labelmap import LabelMap, Segment
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.pipeline.chain import Chain, ChainStep
from medview.pipeline.runner import ChainResult, run_chain

__all__ = ["MAX_HALO_SLICES", "Context", "PreviewResult", "chain_context", "displayable",
           "run_preview", "slab", "step_context"]

#: The most slices taken on each side of the previewed one.
MAX_HALO_SLICES = 16


@dataclass(frozen=True)
class Context:
    """How much of the volume a preview needs: ``halo_mm`` plus ``halo_voxels`` slices on
    each side; ``exact`` when the previewed slice then equals a full run's."""

    halo_mm: float = 0.0
    halo_voxels: int = 0
    exact: bool = True

    def slices(self, spacing_z: float) -> int:
        mm = math.ceil(self.halo_mm / spacing_z - 1e-9) if self.halo_mm > 0 else 0
        return int(mm + self.halo_voxels)

    def __add__(self, other: Context) -> Context:
        return Context(self.halo_mm + other.halo_mm, self.halo_voxels + other.halo_voxels,
                       self.exact and other.exact)


_EXACT = Context()
_GLOBAL = Context(exact=False)


def _fixed_range(p: Mapping[str, Any]) -> bool:
    return p.get("in_low") is not None and p.get("in_high") is not None


def _in_plane(p: Mapping[str, Any], ctx: Context) -> Context:
    return _EXACT if p.get("in_plane_only") else ctx


_RULES: dict[str, Callable[[Mapping[str, Any]], Context]] = {
    "smooth.gaussian": lambda p: _in_plane(p, Context(4.0 * p["sigma_mm"] + 1e-6)),
    "enhance.unsharp": lambda p: _in_plane(p, Context(4.0 * p["sigma_mm"] + 1e-6)),
    "smooth.mean": lambda p: _EXACT if p.get("kernel") else _in_plane(
        p, Context(p["size_mm"] / 2.0, 1)),
    "smooth.median": lambda p: _in_plane(p, Context(p["size_mm"] / 2.0, 1)),
    "smooth.bilateral": lambda p: _EXACT,
    "smooth.curvature_diffusion": lambda p: _in_plane(
        p, Context(halo_voxels=int(p["iterations"]), exact=False)),
    "enhance.gamma": lambda p: _EXACT if _fixed_range(p) else _GLOBAL,
    "enhance.clahe": lambda p: _EXACT if _fixed_range(p) else _GLOBAL,
    "enhance.stretch": lambda p: _EXACT if p.get("mode") == "2d" or _fixed_range(p)
    else _GLOBAL,
    "enhance.equalize": lambda p: _EXACT if p.get("mode") == "2d" else _GLOBAL,
    "features.sobel": lambda p: _EXACT if p.get("mode") == "2d" else Context(halo_voxels=1),
    "features.canny": lambda p: _EXACT,
    "features.gabor": lambda p: _EXACT,
    "features.lbp": lambda p: _EXACT,
    "segment.threshold": lambda p: _EXACT,
    "segment.otsu": lambda p: _in_plane(p, _GLOBAL),
    "segment.li": lambda p: _in_plane(p, _GLOBAL),
    "segment.triangle": lambda p: _in_plane(p, _GLOBAL),
    "segment.fill_holes": lambda p: _in_plane(p, _GLOBAL),
    "segment.open": lambda p: _in_plane(p, Context(2.0 * p["radius_mm"], 1)),
    "segment.close": lambda p: _in_plane(p, Context(2.0 * p["radius_mm"], 1)),
    "fuse.resample": lambda p: _EXACT,
    "fuse.average": lambda p: _EXACT,
    "fuse.weighted": lambda p: _EXACT,
    "fuse.maximum": lambda p: _EXACT,
    "fuse.blend": lambda p: _EXACT if p.get("moving_min") is not None
    and p.get("moving_max") is not None else _GLOBAL,
}


def step_context(cs: ChainStep) -> Context:
    """The 3D context one step needs (see the module docstring); unknown steps are global."""
    rule = _RULES.get(cs.step)
    return _GLOBAL if rule is None else rule(cs.params)


def chain_context(chain: Chain) -> Context:
    """The context of every enabled step, added up."""
    ctx = _EXACT
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
