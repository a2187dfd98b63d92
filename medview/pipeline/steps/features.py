"""Features steps: maps come out as Volumes (or label maps), measures as tables."""

from medview.core import features, texture
from medview.pipeline.margin import EXACT, Margin
from medview.pipeline.registry import register

register(features.gray_statistics, id="features.statistics", title="Gray-level statistics",
         category="Features")
register(features.sobel_magnitude, id="features.sobel", title="Sobel gradient magnitude",
         category="Features", halo=lambda p, spacing: 0 if p["mode"] == "2d" else 1,
         margin=lambda p: EXACT if p.get("mode") == "2d" else Margin(voxels=1))
# slice by slice
register(features.canny_edges, id="features.canny", title="Canny edges", category="Features",
         margin=EXACT)
register(texture.gabor_bank, id="features.gabor", title="Gabor filter bank",
         category="Features", margin=EXACT)
register(texture.local_binary_pattern, id="features.lbp", title="Local binary patterns",
         category="Features", margin=EXACT)
register(texture.glcm_texture, id="features.glcm", title="GLCM texture", category="Features")
