"""Segment steps: thresholds, region growing, k-means, morphological clean-up, components.

(The scribble classifier's steps are in :mod:`medview.pipeline.steps.classify`.)
"""

from medview.core.morphology import cleanup as morphology
from medview.core.segmentation import intensity as segmentation
from medview.pipeline.margin import EXACT, WHOLE, Margin, in_plane
from medview.pipeline.registry import register

_SEGMENT = "Segment"


def _in_plane_or_whole(p: dict) -> Margin:
    # a threshold from the volume's histogram, or 3D hole filling: per slice when in-plane
    return in_plane(p, WHOLE)


def _structuring_margin(p: dict) -> Margin:
    # erosion then dilation: twice the ball's radius
    return in_plane(p, Margin(2.0 * p["radius_mm"], 1))


# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(segmentation.threshold_manual, id="segment.threshold", title="Threshold",
         category=_SEGMENT, halo=lambda p, spacing: 0, margin=EXACT, memory=0.4)  # voxel by voxel
register(segmentation.threshold_otsu, id="segment.otsu", title="Otsu threshold",
         category=_SEGMENT, margin=_in_plane_or_whole, memory=0.6)
register(segmentation.threshold_multiotsu, id="segment.multi_otsu",
         title="Multi-Otsu classes", category=_SEGMENT, memory=0.5)
register(segmentation.threshold_li, id="segment.li", title="Li threshold", category=_SEGMENT,
         margin=_in_plane_or_whole, memory=0.5)
register(segmentation.threshold_triangle, id="segment.triangle", title="Triangle threshold",
         category=_SEGMENT, margin=_in_plane_or_whole, memory=0.6)
register(segmentation.grow_region, id="segment.region_grow", title="Region growing",
         category=_SEGMENT, memory=2.8)
register(segmentation.cluster_kmeans, id="segment.kmeans", title="k-means clusters",
         category=_SEGMENT, memory=1.4)
register(morphology.open_labels, id="segment.open", title="Opening", category=_SEGMENT,
         margin=_structuring_margin, memory=1.1)
register(morphology.close_labels, id="segment.close", title="Closing", category=_SEGMENT,
         margin=_structuring_margin, memory=1.1)
register(morphology.fill_holes, id="segment.fill_holes", title="Fill holes",
         category=_SEGMENT, margin=_in_plane_or_whole, memory=2.3)
register(morphology.keep_largest_component, id="segment.keep_largest",
         title="Keep largest component", category=_SEGMENT, memory=2.1)
register(morphology.label_components, id="segment.components",
         title="Connected components", category=_SEGMENT, memory=2.1)
