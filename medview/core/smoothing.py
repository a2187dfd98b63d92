"""Smoothing: Gaussian (more steps are added beside it: mean, median, edge-preserving)."""

from __future__ import annotations

from typing import Annotated

import numpy as np

from medview.core.parallel import map_slices
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = ["gaussian", "gaussian_kernel_1d"]


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
             progress: Progress = NO_PROGRESS) -> Volume:
    """Smooth with an isotropic Gaussian of ``sigma_mm`` millimetres.

    The kernel in voxels follows the spacing on each axis (SciPy's kernel, truncated at 4σ,
    borders reflected). Same values as ``scipy.ndimage.gaussian_filter`` with
    ``sigma = sigma_mm / spacing`` (z, y, x), computed per slice with OpenCV and a separate z
    pass, in threads.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    sigma_mm : float
        Standard deviation of the Gaussian in millimetres; 0 returns a float32 copy.
    in_plane_only : bool
        Smooth each slice on its own (2D), not across slices.

    Returns
    -------
    Volume
        float32, same grid.
    """
    import cv2

    if volume.is_rgb:
        raise ValueError("volume: Gaussian smoothing needs a scalar volume, got RGB")
    if sigma_mm < 0:
        raise ValueError(f"sigma_mm: must be >= 0, got {sigma_mm}")
    src = volume.array.astype(np.float32, copy=True)
    sx, sy, sz = (sigma_mm / s for s in volume.spacing)
    out = np.empty_like(src)
    kx, ky = gaussian_kernel_1d(sx), gaussian_kernel_1d(sy)

    def blur2d(img: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REFLECT)

    smooth_z = not in_plane_only and sz > 0 and volume.shape[0] > 1
    map_slices(blur2d, src, out, progress=progress.sub(0.0, 0.7 if smooth_z else 1.0),
               message="Gaussian: in-plane")
    if smooth_z:
        kz = gaussian_kernel_1d(sz)
        one = np.ones(1, np.float32)

        def blur_z(plane: np.ndarray) -> np.ndarray:  # plane: (z, x) at one y
            return cv2.sepFilter2D(plane, cv2.CV_32F, one, kz, borderType=cv2.BORDER_REFLECT)

        map_slices(blur_z, out, src, axis=1, progress=progress.sub(0.7, 1.0),
                   message="Gaussian: across slices")
        out = src
    return volume.with_array(out)
