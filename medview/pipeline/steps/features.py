"""Features steps: maps come out as Volumes (or label maps), measures as tables."""

from medview.core.features import edges as features
from medview.core.features import texture
from medview.pipeline.margin import EXACT, Margin
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(features.gray_statistics, id="features.statistics", title="Gray-level statistics",
         category="Features", memory=0.3)
register(features.sobel_magnitude, id="features.sobel", title="Sobel gradient magnitude",
         category="Features", halo=lambda p, spacing: 0 if p["mode"] == "2d" else 1,
         margin=lambda p: EXACT if p.get("mode") == "2d" else Margin(voxels=1), memory=1.6)
# slice by slice
register(features.canny_edges, id="features.canny", title="Canny edges", category="Features",
         margin=EXACT, memory=0.6)
register(texture.gabor_bank, id="features.gabor", title="Gabor filter bank",
         category="Features", margin=EXACT, memory=2.1)
register(texture.local_binary_pattern, id="features.lbp", title="Local binary patterns",
         category="Features", margin=EXACT, memory=0.7)
register(texture.glcm_texture, id="features.glcm", title="GLCM texture", category="Features",
         memory=0.5)
