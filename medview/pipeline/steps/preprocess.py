"""Preprocess steps: smoothing and denoising."""

from medview.core import smoothing
from medview.pipeline.registry import register

register(smoothing.gaussian, id="smooth.gaussian", title="Gaussian smoothing",
         category="Preprocess")
