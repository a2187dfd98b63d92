"""Fuse steps: resampling, rigid registration, average/weighted/maximum fusion, colour blend.

Each step's first input ``volume`` is the fixed series; ``moving`` is the other one (connect
it in the chain, e.g. ``"inputs": {"moving": "pet"}``).
"""

from medview.core.fusion import blend as fusion
from medview.core.registration import rigid as registration
from medview.pipeline.margin import EXACT, WHOLE
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

# voxel by voxel of the fixed grid (the moving volume is passed whole)
register(registration.resample_to_grid, id="fuse.resample", title="Resample onto fixed grid",
         category="Fuse", margin=EXACT, memory=2.7)
register(registration.register_rigid, id="fuse.register_rigid",
         title="Rigid registration (mutual information)", category="Fuse", memory=3.7)
register(fusion.fuse_average, id="fuse.average", title="Average fusion", category="Fuse",
         margin=EXACT, memory=1.3)
register(fusion.fuse_weighted, id="fuse.weighted", title="Weighted fusion", category="Fuse",
         margin=EXACT, memory=1.3)
register(fusion.fuse_maximum, id="fuse.maximum", title="Maximum fusion", category="Fuse",
         margin=EXACT, memory=1.3)
# the moving colour range defaults to the moving volume's own
register(fusion.blend_colour, id="fuse.blend", title="Colour blend (moving over fixed)",
         category="Fuse", margin=lambda p: EXACT if p.get("moving_min") is not None
         and p.get("moving_max") is not None else WHOLE, memory=3.3)
