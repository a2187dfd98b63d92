"""Preprocess steps: smoothing and denoising."""

from medview.core.filters import smoothing
from medview.pipeline.margin import EXACT, Margin, in_plane
from medview.pipeline.registry import register


def _gaussian_halo(p: dict, spacing: tuple) -> int:
    # the z pass reaches SciPy's kernel radius, int(4 sigma + 0.5), in slices
    if p["in_plane_only"] or p["sigma_mm"] <= 0:
        return 0
    return int(4.0 * p["sigma_mm"] / spacing[2] + 0.5) + 1  # one more: rounding-proof


def _in_plane_halo(p: dict, spacing: tuple) -> int | None:
    return 0 if p["in_plane_only"] else None


def _box_margin(p: dict) -> Margin:
    # a box of size_mm reaches size/2 plus the voxel that rounding to odd counts may add
    return in_plane(p, Margin(p["size_mm"] / 2.0, 1))


# memory=: peak memory beyond the inputs in float32 copies of the first input, measured
# with benchmarks/steps.py --memory-only (100×512², plus 10 %); the runner refuses what won't fit

register(smoothing.gaussian, id="smooth.gaussian", title="Gaussian smoothing",
         category="Preprocess", halo=_gaussian_halo,
         margin=lambda p: in_plane(p, Margin(4.0 * p["sigma_mm"] + 1e-6)),
         memory=2.4)  # SciPy's 4σ
register(smoothing.smooth_mean, id="smooth.mean", title="Mean / kernel filter",
         category="Preprocess", margin=lambda p: EXACT if p.get("kernel") else _box_margin(p),
         memory=1.3)
register(smoothing.smooth_median, id="smooth.median", title="Median filter",
         category="Preprocess", margin=_box_margin, memory=1.3)
register(smoothing.smooth_bilateral, id="smooth.bilateral", title="Bilateral filter",
         category="Preprocess", margin=EXACT, memory=1.4)  # slice by slice
# one voxel per iteration, but the conductance is scaled by the whole volume's gradient
register(smoothing.smooth_curvature_diffusion, id="smooth.curvature_diffusion",
         title="Curvature anisotropic diffusion", category="Preprocess", halo=_in_plane_halo,
         margin=lambda p: in_plane(p, Margin(voxels=int(p["iterations"]), exact=False)),
         memory=2.9)
