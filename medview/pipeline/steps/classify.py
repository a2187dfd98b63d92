"""Segment steps: the scribble classifier (train on scribbles and label, apply a saved model)."""

from medview.core import classifier
from medview.pipeline.registry import register

register(classifier.classify_pixels, id="segment.classifier_train_predict",
         title="Scribble classifier", category="Segment")
register(classifier.apply_classifier, id="segment.classifier_apply",
         title="Apply saved classifier", category="Segment")
