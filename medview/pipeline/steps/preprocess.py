"""Preprocess steps: smoothing and denoising."""

from medview.core import smoothing
from medview.pipeline.registry import register

register(smoothing.gaussian, id="smooth.gaussian", title="Gaussian smoothing",
         category="Preprocess")
register(smoothing.smooth_mean, id="smooth.mean", title="Mean / kernel filter",
         category="Preprocess")
register(smoothing.smooth_median, id="smooth.median", title="Median filter",
         category="Preprocess")
register(smoothing.smooth_bilateral, id="smooth.bilateral", title="Bilateral filter",
         category="Preprocess")
register(smoothing.smooth_curvature_diffusion, id="smooth.curvature_diffusion",
         title="Curvature anisotropic diffusion", category="Preprocess")
