"""Enhance steps: contrast stretch, histogram equalisation, CLAHE, sharpening, gamma."""

from medview.core import enhance
from medview.pipeline.registry import register

register(enhance.stretch_contrast, id="enhance.stretch", title="Contrast stretch",
         category="Enhance")
register(enhance.equalize_histogram, id="enhance.equalize", title="Histogram equalisation",
         category="Enhance")
register(enhance.equalize_adaptive, id="enhance.clahe", title="CLAHE", category="Enhance")
register(enhance.sharpen_unsharp, id="enhance.unsharp", title="Unsharp mask",
         category="Enhance")
register(enhance.adjust_gamma, id="enhance.gamma", title="Gamma", category="Enhance")
