"""Segment steps: the scribble classifier (train on scribbles and label, apply a saved model)."""

from medview.core.segmentation import classifier
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(classifier.classify_pixels, id="segment.classifier_train_predict",
         title="Scribble classifier", category="Segment", memory=2.5)
register(classifier.apply_classifier, id="segment.classifier_apply",
         title="Apply saved classifier", category="Segment", memory=1.7)
