"""Enhance steps: contrast stretch, histogram equalisation, CLAHE, sharpening, gamma."""

from medview.core.exposure import enhance
from medview.pipeline.margin import EXACT, WHOLE, Margin, fixed_range, in_plane
from medview.pipeline.registry import register


def _global_unless_fixed(p: dict) -> Margin:
    # the input range defaults to the volume's own: exact on a slab only when it is given
    return EXACT if fixed_range(p) else WHOLE


# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(enhance.stretch_contrast, id="enhance.stretch", title="Contrast stretch",
         category="Enhance",
         margin=lambda p: EXACT if p.get("mode") == "2d" else _global_unless_fixed(p), memory=1.2)
register(enhance.equalize_histogram, id="enhance.equalize", title="Histogram equalisation",
         category="Enhance", margin=lambda p: EXACT if p.get("mode") == "2d" else WHOLE,
         memory=1.3)
register(enhance.equalize_adaptive, id="enhance.clahe", title="CLAHE", category="Enhance",
         margin=_global_unless_fixed, memory=1.7)
register(enhance.sharpen_unsharp, id="enhance.unsharp", title="Unsharp mask",
         category="Enhance", margin=lambda p: in_plane(p, Margin(4.0 * p["sigma_mm"] + 1e-6)),
         memory=2.4)
register(enhance.adjust_gamma, id="enhance.gamma", title="Gamma", category="Enhance",
         margin=_global_unless_fixed, memory=1.4)
