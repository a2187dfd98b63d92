"""Steps declared safe to split give the whole run's voxels slab by slab; others run whole."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.registry import get_step
from medview.pipeline.runner import run_chain, run_step
from medview.pipeline.split import local_map, plan_slabs, run_step_split, split_halo


def test_plan_slabs_covers_every_slice_once_with_clipped_halos():
    plan = plan_slabs(10, 3, 2)
    kept = [lo + k for lo, _, k0, k1 in plan for k in range(k0, k1)]
    assert kept == list(range(10))
    assert plan[0][0] == 0 and plan[-1][1] == 10  # halos clipped at the ends
    assert all(hi - lo <= (k1 - k0) + 4 for lo, hi, k0, k1 in plan)


@pytest.mark.parametrize("steps", [
    [{"step": "smooth.gaussian", "params": {"sigma_mm": 2.5}}],
    [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0, "in_plane_only": True}}],
    [{"step": "features.sobel"}, {"step": "features.sobel", "params": {"mode": "2d"}}],
    [{"step": "smooth.curvature_diffusion", "params": {"iterations": 4,
                                                       "in_plane_only": True}}],
    [{"step": "segment.threshold", "params": {"low": 0.0, "high": 80.0}}],
])
def test_split_steps_give_the_voxels_of_the_whole_run(steps):
    vol = Volume(np.random.default_rng(3).normal(0, 100, (23, 40, 40)).astype(np.float32),
                 (0.7, 0.7, 1.1), (3.0, 4.0, 5.0))
    chain = Chain.from_dict({"steps": steps})
    used = []

    def runner(cs, inputs, progress):
        out = run_step_split(cs, inputs, slabs=4, map_slabs=local_map, progress=progress)
        used.append(out is not None)
        return out if out is not None else run_step(cs, inputs, progress)

    split = run_chain(chain, {"image": vol}, step_runner=runner)
    whole = run_chain(chain, {"image": vol})
    assert all(used)
    for name, value in whole.values.items():
        if name != "image":
            assert np.array_equal(split.values[name].array, value.array), name
            assert split.values[name].same_grid(value)


def test_other_steps_say_they_run_whole():
    vol = Volume(np.zeros((4, 8, 8), np.float32))
    median = Chain.from_dict({"steps": [{"step": "smooth.median"}]}).steps[0]
    diffusion = Chain.from_dict({"steps": [{"step": "smooth.curvature_diffusion"}]}).steps[0]
    assert split_halo(median, {"volume": vol}) is None
    assert split_halo(diffusion, {"volume": vol}) is None  # 3D diffusion: no known reach
    assert get_step("smooth.median").describe()["split"] == "whole"
    assert get_step("smooth.gaussian").describe()["split"] == "slabs"
    assert run_step_split(median, {"volume": vol}, slabs=2, map_slabs=local_map) is None
