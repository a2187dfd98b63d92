"""Smoothing and denoising: Gaussian, mean (box) and user kernels, median, and two
edge-preserving smoothers (bilateral, curvature anisotropic diffusion).

Sizes are in millimetres and honour the voxel spacing on each axis; every function keeps the
input's grid, reports progress and checks cancellation per slice (or chunk of slices).

Median and curvature anisotropic diffusion live in :mod:`medview.core.filters.denoise` and are
re-exported here.

The Gaussian, mean/kernel and bilateral filters take a ``border`` mode: how the image is
extended beyond its edges, named as OpenCV names it (each is one of SciPy's ``ndimage`` modes,
:data:`SCIPY_MODES`):

- ``reflect`` (the default): ``d c b a | a b c d``; OpenCV ``BORDER_REFLECT``, SciPy
  ``"reflect"``;
- ``reflect_101``: ``d c b | a b c d``; OpenCV ``BORDER_REFLECT_101`` (OpenCV's default, e.g.
  of ``cv2.filter2D``), SciPy ``"mirror"``;
- ``replicate``: ``a a a | a b c d``; OpenCV ``BORDER_REPLICATE``, SciPy ``"nearest"``;
- ``constant``: ``0 0 0 | a b c d``; OpenCV ``BORDER_CONSTANT``, SciPy ``"constant"``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, get_args

import numpy as np

from medview.core._shared.checks import as_float32, check_non_negative, check_positive, check_scalar
from medview.core._shared.parallel import map_slices
from medview.core.filters.denoise import (
    odd_voxels,
    smooth_curvature_diffusion,
    smooth_median,
)
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = [
    "BORDER_MODES",
    "SCIPY_MODES",
    "BorderMode",
    "gaussian",
    "gaussian_kernel_1d",
    "odd_voxels",
    "smooth_bilateral",
    "smooth_curvature_diffusion",
    "smooth_mean",
    "smooth_median",
]


#: How a filter extends the image beyond its edges (see the module docstring).
BorderMode = Literal["reflect", "reflect_101", "replicate", "constant"]
BORDER_MODES: tuple[str, ...] = get_args(BorderMode)
#: the SciPy ``ndimage`` mode of each border mode
SCIPY_MODES = {"reflect": "reflect", "reflect_101": "mirror", "replicate": "nearest",
               "constant": "constant"}


def _cv_border(border: str) -> int:
    import cv2

    flags = {"reflect": cv2.BORDER_REFLECT, "reflect_101": cv2.BORDER_REFLECT_101,
             "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
    if border not in flags:
        raise ValueError(f"border: {border!r} is not one of {', '.join(BORDER_MODES)}")
    return flags[border]


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's Gaussian kernel: radius ``int(truncate * sigma + 0.5)``, normalised to 1."""
    if sigma <= 0:
        return np.ones(1, np.float32)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian(volume: Volume, *,
             sigma_mm: Annotated[float, Range(0.0, 50.0, step=0.1, unit="mm")] = 1.0,
             in_plane_only: bool = False,
             border: BorderMode = "reflect",
             progress: Progress = NO_PROGRESS) -> Volume:
    """Smooth with an isotropic Gaussian of ``sigma_mm`` millimetres.

    The kernel in voxels follows the spacing on each axis (SciPy's kernel, truncated at 4σ).
    Same values as ``scipy.ndimage.gaussian_filter`` with ``sigma = sigma_mm / spacing``
    (z, y, x) and ``mode=SCIPY_MODES[border]``, computed per slice with OpenCV and a separate
    z pass, in threads.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    sigma_mm : float
        Standard deviation of the Gaussian in millimetres; 0 returns a float32 copy.
    in_plane_only : bool
        Smooth each slice on its own (2D), not across slices.
    border : str
        How the volume is extended beyond its edges (on every axis): reflect (default),
        reflect_101, replicate or constant (0).

    Returns
    -------
    Volume
        float32, same grid.
    """
    import cv2

    cv_border = _cv_border(border)
    check_scalar(volume, "Gaussian smoothing")
    sigma_mm = check_non_negative("sigma_mm", sigma_mm)
    src = volume.array.astype(np.float32, copy=True)
    sx, sy, sz = (sigma_mm / s for s in volume.spacing)
    out = np.empty_like(src)
    kx, ky = gaussian_kernel_1d(sx), gaussian_kernel_1d(sy)

    def blur2d(img: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, cv2.CV_32F, kx, ky, borderType=cv_border)

    smooth_z = not in_plane_only and sz > 0 and volume.shape[0] > 1
    map_slices(blur2d, src, out, progress=progress.sub(0.0, 0.7 if smooth_z else 1.0),
               message="Gaussian: in-plane")
    if smooth_z:
        kz = gaussian_kernel_1d(sz)
        one = np.ones(1, np.float32)

        def blur_z(plane: np.ndarray) -> np.ndarray:  # plane: (z, x) at one y
            return cv2.sepFilter2D(plane, cv2.CV_32F, one, kz, borderType=cv_border)

        map_slices(blur_z, out, src, axis=1, progress=progress.sub(0.7, 1.0),
                   message="Gaussian: across slices")
        out = src
    return volume.with_array(out)


# -- mean (box) and user kernels ------------------------------------------------------------
def _check_kernel(kernel, normalize: bool) -> np.ndarray:
    try:
        k = np.array(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("kernel: expected a rectangular list of rows of numbers, e.g. "
                         "[[1, 2, 1], [2, 4, 2], [1, 2, 1]]") from None
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"kernel: expected a non-empty 2D list of rows, got shape {k.shape}")
    if max(k.shape) > _MAX_KERNEL:
        raise ValueError(f"kernel: at most {_MAX_KERNEL}×{_MAX_KERNEL} values, got "
                         f"{k.shape[0]}×{k.shape[1]}")
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel: contains NaN or infinite values")
    if normalize:
        total = float(k.sum())
        if abs(total) < 1e-12 * max(1.0, float(np.abs(k).sum())):
            raise ValueError("kernel: its weights sum to 0 (an edge or Laplacian kernel?), "
                             "so it cannot be normalised; set normalize to false")
        k = k / total
    return k.astype(np.float32)


_MAX_KERNEL = 63


def smooth_mean(volume: Volume, *,
                size_mm: Annotated[float, Range(0.0, 100.0, step=0.5, unit="mm")] = 3.0,
                in_plane_only: bool = False,
                kernel: list[list[float]] | None = None,
                normalize: bool = True,
                border: BorderMode = "reflect",
                progress: Progress = NO_PROGRESS) -> Volume:
    """Mean (box) filter of ``size_mm``, or a weighted sum with a user ``kernel`` per slice.

    The box has ``n = odd_voxels(size_mm, spacing)`` voxels on each axis (the odd count
    nearest to ``size_mm`` / spacing, so it honours anisotropic voxels and stays centred) and
    every output voxel is the mean of the box around it; ``border`` says how the volume is
    extended beyond its edges. Same values as ``scipy.ndimage.uniform_filter(size=(nz, ny,
    nx), mode=SCIPY_MODES[border])``, computed per slice with OpenCV (double accumulators) and
    a separate z pass, in threads.

    With ``kernel`` (rows along y, columns along x) each slice becomes the weighted sum
    ``G[y, x] = Σ_i Σ_j f[y + i − ci, x + j − cj] · w[i, j]`` with the centre ``(ci, cj) =
    (rows // 2, columns // 2)`` (a correlation, not flipped; as ``scipy.ndimage.correlate``,
    and as ``cv2.filter2D``: with ``border="reflect_101"`` and a 5 × 5 kernel of ones it gives
    exactly ``cv2.filter2D(slice, -1, np.ones((5, 5), np.float32) / 25)`` on a float32
    slice); ``size_mm`` and ``in_plane_only`` are then ignored.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    size_mm : float
        Edge length of the box in millimetres (rounded per axis to an odd number of voxels).
    in_plane_only : bool
        Average within each slice only (2D box), not across slices.
    kernel : list of list of float, optional
        Weights of a 2D kernel applied to every slice (at most 63 × 63); replaces the box.
    normalize : bool
        Divide the kernel by the sum of its weights, so that it preserves the mean.
    border : str
        How each slice (and the stack) is extended beyond its edges: reflect (default),
        reflect_101 (OpenCV's default), replicate or constant (0).

    Returns
    -------
    Volume
        float32, same grid.

    Raises
    ------
    ValueError
        If ``size_mm`` is negative, or ``kernel`` is not a finite rectangular matrix, or it
        sums to 0 while ``normalize`` is set.
    """
    import cv2

    check_scalar(volume, "Mean filtering")
    size_mm = check_non_negative("size_mm", size_mm)
    cv_border = _cv_border(border)
    if kernel is not None:
        k = _check_kernel(kernel, normalize)
        out = np.empty(volume.shape, np.float32)
        map_slices(lambda img: cv2.filter2D(img, cv2.CV_32F, k, borderType=cv_border),
                   as_float32(volume.array), out, progress=progress, message="Kernel filter")
        return volume.with_array(out)
    nx, ny, nz = (odd_voxels(size_mm, s) for s in volume.spacing)
    if in_plane_only or volume.shape[0] == 1:
        nz = 1
    out = np.empty(volume.shape, np.float32)
    map_slices(lambda img: cv2.blur(img, (nx, ny), borderType=cv_border),
               as_float32(volume.array), out, progress=progress.sub(0.0, 0.6 if nz > 1 else 1.0),
               message="Mean: in-plane")
    if nz > 1:
        # each (z, x) plane is read and replaced by its own thread: in place is safe
        map_slices(lambda plane: cv2.blur(plane, (1, nz), borderType=cv_border),
                   out, out, axis=1, progress=progress.sub(0.6, 1.0),
                   message="Mean: across slices")
    return volume.with_array(out)


# -- bilateral ------------------------------------------------------------------------------
def smooth_bilateral(volume: Volume, *,
                     sigma_spatial_mm: Annotated[float, Range(0.1, 20.0, step=0.1,
                                                              unit="mm")] = 1.0,
                     sigma_intensity: Annotated[float, Range(0.01, 100000.0, step=1.0)] = 40.0,
                     border: BorderMode = "reflect",
                     progress: Progress = NO_PROGRESS) -> Volume:
    """Edge-preserving bilateral filter, slice by slice (OpenCV, in threads).

    Every output pixel is the average of its neighbours within a disc of radius ``⌈2σ⌉``
    pixels, weighted by ``exp(−d² / 2σ_s²) · exp(−Δ² / 2σ_i²)`` where ``d`` is the distance
    and ``Δ`` the difference of values, so that pixels across an edge barely count. The
    distance is in pixels of the mean in-plane spacing; ``border`` extends the slice. Each slice is
    filtered on its own (a 3D bilateral filter is much slower and rarely better on CT/MR
    stacks whose slices are thicker than their pixels).

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    sigma_spatial_mm : float
        Standard deviation of the spatial weight in millimetres.
    sigma_intensity : float
        Standard deviation of the value weight, in the volume's units (HU for CT).
    border : str
        How each slice is extended beyond its edges: reflect (default), reflect_101,
        replicate or constant (0).

    Returns
    -------
    Volume
        float32, same grid.

    Raises
    ------
    ValueError
        If a sigma is not positive or the volume is RGB.
    """
    import cv2

    check_scalar(volume, "Bilateral filtering")
    cv_border = _cv_border(border)
    sigma_spatial_mm = check_positive("sigma_spatial_mm", sigma_spatial_mm)
    sigma_intensity = check_positive("sigma_intensity", sigma_intensity)
    sigma_px = sigma_spatial_mm / (0.5 * (volume.spacing[0] + volume.spacing[1]))
    diameter = 2 * math.ceil(2.0 * sigma_px) + 1
    out = np.empty(volume.shape, np.float32)

    def bilateral2d(img: np.ndarray) -> np.ndarray:
        return cv2.bilateralFilter(img, diameter, float(sigma_intensity), sigma_px,
                                   borderType=cv_border)

    map_slices(bilateral2d, as_float32(volume.array), out, progress=progress, message="Bilateral")
    return volume.with_array(out)

