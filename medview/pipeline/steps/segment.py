"""Segment steps: thresholds, region growing, k-means, morphological clean-up, components.

(The scribble classifier's steps are in :mod:`medview.pipeline.steps.classify`.)
"""

from medview.core import morphology, segmentation
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

_SEGMENT = "Segment"

register(segmentation.threshold_manual, id="segment.threshold", title="Threshold",
         category=_SEGMENT, halo=lambda p, spacing: 0, memory=0.4)  # voxel by voxel
register(segmentation.threshold_otsu, id="segment.otsu", title="Otsu threshold",
         category=_SEGMENT, memory=0.6)
register(segmentation.threshold_multiotsu, id="segment.multi_otsu",
         title="Multi-Otsu classes", category=_SEGMENT, memory=0.5)
register(segmentation.threshold_li, id="segment.li", title="Li threshold", category=_SEGMENT,
         memory=0.5)
register(segmentation.threshold_triangle, id="segment.triangle", title="Triangle threshold",
         category=_SEGMENT, memory=0.6)
register(segmentation.grow_region, id="segment.region_grow", title="Region growing",
         category=_SEGMENT, memory=2.8)
register(segmentation.cluster_kmeans, id="segment.kmeans", title="k-means clusters",
         category=_SEGMENT, memory=1.4)
register(morphology.open_labels, id="segment.open", title="Opening", category=_SEGMENT, memory=1.1)
register(morphology.close_labels, id="segment.close", title="Closing", category=_SEGMENT,
         memory=1.1)
register(morphology.fill_holes, id="segment.fill_holes", title="Fill holes",
         category=_SEGMENT, memory=2.3)
register(morphology.keep_largest_component, id="segment.keep_largest",
         title="Keep largest component", category=_SEGMENT, memory=2.1)
register(morphology.label_components, id="segment.components",
         title="Connected components", category=_SEGMENT, memory=2.1)
