"""Segment steps: thresholds, region growing, k-means, morphological clean-up, components.

(The scribble classifier's steps are in :mod:`medview.pipeline.steps.classify`.)
"""

from medview.core import morphology, segmentation
from medview.pipeline.registry import register

_SEGMENT = "Segment"

register(segmentation.threshold_manual, id="segment.threshold", title="Threshold",
         category=_SEGMENT, halo=lambda p, spacing: 0)  # voxel by voxel
register(segmentation.threshold_otsu, id="segment.otsu", title="Otsu threshold",
         category=_SEGMENT)
register(segmentation.threshold_multiotsu, id="segment.multi_otsu",
         title="Multi-Otsu classes", category=_SEGMENT)
register(segmentation.threshold_li, id="segment.li", title="Li threshold", category=_SEGMENT)
register(segmentation.threshold_triangle, id="segment.triangle", title="Triangle threshold",
         category=_SEGMENT)
register(segmentation.grow_region, id="segment.region_grow", title="Region growing",
         category=_SEGMENT)
register(segmentation.cluster_kmeans, id="segment.kmeans", title="k-means clusters",
         category=_SEGMENT)
register(morphology.open_labels, id="segment.open", title="Opening", category=_SEGMENT)
register(morphology.close_labels, id="segment.close", title="Closing", category=_SEGMENT)
register(morphology.fill_holes, id="segment.fill_holes", title="Fill holes",
         category=_SEGMENT)
register(morphology.keep_largest_component, id="segment.keep_largest",
         title="Keep largest component", category=_SEGMENT)
register(morphology.label_components, id="segment.components",
         title="Connected components", category=_SEGMENT)
