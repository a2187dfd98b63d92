"""Enhance steps: contrast stretch, histogram equalisation, CLAHE, sharpening, gamma."""

from medview.core import enhance
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(enhance.stretch_contrast, id="enhance.stretch", title="Contrast stretch",
         category="Enhance", memory=1.2)
register(enhance.equalize_histogram, id="enhance.equalize", title="Histogram equalisation",
         category="Enhance", memory=1.3)
register(enhance.equalize_adaptive, id="enhance.clahe", title="CLAHE", category="Enhance",
         memory=1.7)
register(enhance.sharpen_unsharp, id="enhance.unsharp", title="Unsharp mask",
         category="Enhance", memory=2.4)
register(enhance.adjust_gamma, id="enhance.gamma", title="Gamma", category="Enhance", memory=1.4)
