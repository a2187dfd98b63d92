"""Fuse steps: resampling, rigid registration, average/weighted/maximum fusion, colour blend.

Each step's first input ``volume`` is the fixed series; ``moving`` is the other one (connect
it in the chain, e.g. ``"inputs": {"moving": "pet"}``).
"""

from medview.core import fusion, registration
from medview.pipeline.margin import EXACT, WHOLE
from medview.pipeline.registry import register

# voxel by voxel of the fixed grid (the moving volume is passed whole)
register(registration.resample_to_grid, id="fuse.resample", title="Resample onto fixed grid",
         category="Fuse", margin=EXACT)
register(registration.register_rigid, id="fuse.register_rigid",
         title="Rigid registration (mutual information)", category="Fuse")
register(fusion.fuse_average, id="fuse.average", title="Average fusion", category="Fuse",
         margin=EXACT)
register(fusion.fuse_weighted, id="fuse.weighted", title="Weighted fusion", category="Fuse",
         margin=EXACT)
register(fusion.fuse_maximum, id="fuse.maximum", title="Maximum fusion", category="Fuse",
         margin=EXACT)
# the moving colour range defaults to the moving volume's own
register(fusion.blend_colour, id="fuse.blend", title="Colour blend (moving over fixed)",
         category="Fuse", margin=lambda p: EXACT if p.get("moving_min") is not None
         and p.get("moving_max") is not None else WHOLE)
