"""Preprocess steps: smoothing and denoising."""

from medview.core import smoothing
from medview.pipeline.registry import register

# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit


def _gaussian_halo(p: dict, spacing: tuple) -> int:
    # the z pass reaches SciPy's kernel radius, int(4 sigma + 0.5), in slices
    if p["in_plane_only"] or p["sigma_mm"] <= 0:
        return 0
    return int(4.0 * p["sigma_mm"] / spacing[2] + 0.5) + 1  # one more: rounding-proof


def _in_plane_halo(p: dict, spacing: tuple) -> int | None:
    return 0 if p["in_plane_only"] else None


register(smoothing.gaussian, id="smooth.gaussian", title="Gaussian smoothing",
         category="Preprocess", halo=_gaussian_halo, memory=2.4)
register(smoothing.smooth_mean, id="smooth.mean", title="Mean / kernel filter",
         category="Preprocess", memory=1.3)
register(smoothing.smooth_median, id="smooth.median", title="Median filter",
         category="Preprocess", memory=1.3)
register(smoothing.smooth_bilateral, id="smooth.bilateral", title="Bilateral filter",
         category="Preprocess", memory=1.4)
register(smoothing.smooth_curvature_diffusion, id="smooth.curvature_diffusion",
         title="Curvature anisotropic diffusion", category="Preprocess", halo=_in_plane_halo,
         memory=2.9)
