"""Features: gray-level statistics (tables), Sobel gradient magnitude and Canny edges (maps).

Gray-level statistics live in :mod:`medview.core.features.statistics` and are re-exported here.
Texture features (Gabor bank, LBP, GLCM) live in :mod:`medview.core.features.texture`.
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import check_scalar, each_slice
from medview.core.features.statistics import gray_statistics, parse_percentiles
from medview.core.filters.smoothing import gaussian_kernel_1d
from medview.core.labelmap import LabelMap, Segment
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = ["canny_edges", "gray_statistics", "parse_percentiles", "sobel_magnitude"]


# -- gradients and edges -----------------------------------------------------------------
_CV_DEPTHS = (np.uint8, np.uint16, np.int16, np.float32)


def _as_cv(img: np.ndarray) -> np.ndarray:
    """The slice itself if OpenCV filters it as is, else a float32 copy."""
    return img if img.dtype in _CV_DEPTHS else img.astype(np.float32)


def _aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An array whose data starts on a 64-byte boundary.

    Some OpenCV kernels (``cv2.magnitude``) round differently depending on where the
    destination starts, so results are only bit-identical from run to run when every float
    destination has the same alignment (as OpenCV's own allocations have).
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + size].view(dtype).reshape(shape)


class _Scratch(threading.local):
    """Per-thread work buffers reused from slice to slice (64-byte aligned): fresh 1 MB
    temporaries per slice cost more in page faults than the filters themselves."""

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        buf = self.__dict__.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self.__dict__[name] = _aligned_empty(shape, dtype)
        return buf


def _derived(volume: Volume, array: np.ndarray, units: str) -> Volume:
    # the source's display window means nothing for a derived map
    return volume.with_array(array, Units=units, WindowCenter=None, WindowWidth=None)


def sobel_magnitude(volume: Volume, *,
                    mode: Literal["3d", "2d"] = "3d",
                    progress: Progress = NO_PROGRESS) -> Volume:
    """Sobel gradient magnitude in value units per millimetre (e.g. HU/mm).

    Each derivative is the Sobel operator along one axis (central difference, smoothed with
    [1, 2, 1] along the other axes, borders reflected) divided by its gain (8 in 2D, 32 in 3D)
    and by the voxel spacing of that axis, so a linear ramp of g units/mm gives g whatever the
    spacing. The result equals ``sqrt(sum_a (scipy.ndimage.sobel(v, a) / (gain * spacing_a))**2)``
    over the axes used. Computed per slice with OpenCV in threads; in 3D the z derivative and
    the z smoothing combine the 2D filtered neighbour slices, so no extra volume is stored.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    mode : {"3d", "2d"}
        "3d": gradient along x, y and z; "2d": in-plane gradient of each slice on its own.

    Returns
    -------
    Volume
        float32, same grid; ``Units`` metadata becomes "<units>/mm".
    """
    import cv2

    check_scalar(volume, "the Sobel gradient")
    if mode not in ("3d", "2d"):
        raise ValueError(f"mode: expected '3d' or '2d', got {mode!r}")
    arr = volume.array
    sx, sy, sz = volume.spacing
    nz = arr.shape[0]
    out = _aligned_empty(arr.shape, np.float32)
    border = cv2.BORDER_REFLECT
    units = f"{volume.metadata.get('Units') or 'value'}/mm"
    scratch = _Scratch()
    plane = arr.shape[1:]
    direct = out[0].nbytes % 64 == 0  # every out[k] starts on a 64-byte boundary

    def put(k: int, gx: np.ndarray, gz: np.ndarray) -> None:
        if direct:
            cv2.magnitude(gx, gz, magnitude=out[k])
        else:
            out[k] = cv2.magnitude(gx, gz, magnitude=scratch.get("mag", plane, np.float32))

    if mode == "2d":
        def grad2d(k: int) -> None:
            img = _as_cv(arr[k])
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, dst=scratch.get("gx", plane, np.float32),
                           ksize=3, scale=1 / (8 * sx), borderType=border)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, dst=scratch.get("gy", plane, np.float32),
                           ksize=3, scale=1 / (8 * sy), borderType=border)
            put(k, gx, gy)

        each_slice(grad2d, nz, progress, "Sobel (2D)")
        return _derived(volume, out, units)

    smooth = np.array([1.0, 2.0, 1.0], np.float32)

    def filtered(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x and y Sobel and [1,2,1]² smoothing of slice k, cached per thread."""
        k = min(max(k, 0), nz - 1)  # 'reflect' at the ends repeats the edge slice
        cache = scratch.__dict__.setdefault("cache", {})
        if k not in cache:
            spare = scratch.__dict__.setdefault("spare", [])
            bx, by, bs = spare.pop() if spare else (_aligned_empty(plane, np.float32)
                                                    for _ in "xys")
            img = _as_cv(arr[k])
            cache[k] = (
                cv2.Sobel(img, cv2.CV_32F, 1, 0, dst=bx, ksize=3, scale=1 / (32 * sx),
                          borderType=border),
                cv2.Sobel(img, cv2.CV_32F, 0, 1, dst=by, ksize=3, scale=1 / (32 * sy),
                          borderType=border),
                cv2.sepFilter2D(img, cv2.CV_32F, smooth, smooth / (32 * sz), dst=bs,
                                borderType=border),
            )
        return cache[k]

    def grad3d(k: int) -> None:
        cache = scratch.__dict__.setdefault("cache", {})
        spare = scratch.__dict__.setdefault("spare", [])
        for old in [j for j in cache if not k - 1 <= j <= k + 1]:
            spare.append(cache.pop(old))
        (xm, ym, sm), (x0, y0, _), (xp, yp, sp) = filtered(k - 1), filtered(k), filtered(k + 1)
        gx = cv2.add(xm, xp, dst=scratch.get("gx", plane, np.float32))
        cv2.scaleAdd(x0, 2.0, gx, dst=gx)
        gy = cv2.add(ym, yp, dst=scratch.get("gy", plane, np.float32))
        cv2.scaleAdd(y0, 2.0, gy, dst=gy)
        cv2.magnitude(gx, gy, magnitude=gx)
        put(k, gx, cv2.subtract(sp, sm, dst=gy))

    each_slice(grad3d, nz, progress, "Sobel (3D)")
    return _derived(volume, out, units)


# levels of the int16 copy of a smoothed slice: |Sobel| <= 4 * 5792 keeps the L2 magnitude
# (up to sqrt(2) * 4 * 5792 = 32763) below the 32767 at which OpenCV clamps its thresholds
_CANNY_LEVELS = 5792.0


def canny_edges(
    volume: Volume,
    *,
    sigma_mm: Annotated[float, Range(0.0, 20.0, step=0.1, unit="mm")] = 1.0,
    low_threshold: Annotated[float, Range(0.0, 1e6, step=1.0, unit="value/mm")] = 20.0,
    high_threshold: Annotated[float, Range(0.0, 1e6, step=1.0, unit="value/mm")] = 50.0,
    use_quantiles: bool = False,
    gradient_norm: Literal["L2", "L1"] = "L2",
    progress: Progress = NO_PROGRESS,
) -> LabelMap:
    """Canny edges of each slice (2D), with thresholds on the gradient in units per mm.

    Per slice: Gaussian smoothing with ``sigma_mm`` (SciPy's kernel, truncated at 4σ, borders
    reflected), Sobel derivatives, then OpenCV's non-maximum suppression and hysteresis (L2
    magnitude). ``cv2.Canny`` detects on 8-bit images only, which would cost CT its precision
    (16 HU per level over a −1024…3071 range); instead each slice is scaled to 5792 int16
    levels over its own min…max (about 1 HU per level for CT, 0.02 % of the range in
    general), smoothed and differentiated in int16, the derivatives go to ``cv2.Canny(dx, dy,
    ...)``, and the thresholds in units/mm are converted with the same scale (``threshold * 8
    * spacing * levels / range``). The gradient magnitude is ``sqrt(dx² + dy²)`` (L2) or
    ``|dx| + |dy|`` (L1, what ``cv2.Canny`` uses by default). With ``sigma_mm=0``, 1 mm pixels,
    ``gradient_norm="L1"`` and thresholds ``low / 8``, ``high / 8`` this reproduces
    ``cv2.Canny(image_8bit, low, high)``: with L1 an integer slice is scaled by a whole number
    of levels, so its derivatives are exact multiples of OpenCV's. Equivalent
    to ``skimage.feature.canny(slice, sigma=sigma_mm / spacing, low_threshold=low * 8 *
    spacing, high_threshold=high * 8 * spacing)`` for square pixels, up to OpenCV's
    non-maximum suppression (no interpolation between neighbours) and border handling.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    sigma_mm : float
        Standard deviation of the in-plane Gaussian in mm; 0 skips smoothing.
    low_threshold : float
        Low hysteresis threshold on the gradient magnitude, units/mm (HU/mm for CT).
        Edges continue along pixels above it. With ``use_quantiles``: a quantile in [0, 1] of
        each slice's gradient magnitude.
    high_threshold : float
        High hysteresis threshold, units/mm (or a quantile); edges start above it.
    use_quantiles : bool
        Read both thresholds as quantiles of each slice's gradient magnitude (MR, PET).
    gradient_norm : str
        L2 (Euclidean, the default) or L1 (``|dx| + |dy|``, OpenCV's default) gradient
        magnitude.

    Returns
    -------
    LabelMap
        uint8, 1 on edge pixels, same grid; one segment "Edges".

    Raises
    ------
    ValueError
        On an RGB volume, negative sizes or thresholds, or ``low_threshold > high_threshold``.
    """
    import cv2

    check_scalar(volume, "Canny edge detection")
    if sigma_mm < 0:
        raise ValueError(f"sigma_mm: must be >= 0, got {sigma_mm}")
    if low_threshold < 0 or high_threshold < 0:
        raise ValueError(f"low_threshold, high_threshold: must be >= 0, got {low_threshold}, "
                         f"{high_threshold}")
    if low_threshold > high_threshold:
        raise ValueError(f"low_threshold: {low_threshold} is above high_threshold "
                         f"{high_threshold}")
    if gradient_norm not in ("L1", "L2"):
        raise ValueError(f"gradient_norm: {gradient_norm!r} is not one of L1, L2")
    l2 = gradient_norm == "L2"
    exact_levels = not l2 and volume.array.dtype.kind in "iub"
    if use_quantiles and high_threshold > 1:
        raise ValueError(f"high_threshold: with use_quantiles it is a quantile in [0, 1], "
                         f"got {high_threshold}")
    sx, sy, _ = volume.spacing
    kx = gaussian_kernel_1d(sigma_mm / sx)
    ky = gaussian_kernel_1d(sigma_mm / sy)
    smooth = sigma_mm > 0
    border = cv2.BORDER_REFLECT

    arr = volume.array
    out = np.empty(volume.shape, np.uint8)
    plane = volume.shape[1:]
    scratch = _Scratch()

    def edges(k: int) -> None:
        img = _as_cv(arr[k])
        lo, hi = cv2.minMaxLoc(img)[:2]
        if not hi > lo:  # flat slice (or NaN): no edges
            out[k] = 0
            return
        # dy gains sx/sy so that both derivatives count units per x-millimetre
        top = _CANNY_LEVELS / max(1.0, sx / sy)
        c = top / (hi - lo)
        if exact_levels and c >= 1:
            # a whole-number scale keeps integer derivatives exact multiples of the image's
            # own: the edges are then exactly OpenCV's on the image (L2 keeps the scale that
            # saved chains were made with)
            c = float(math.floor(c))
        level = cv2.addWeighted(img, c, img, 0.0, -lo * c, dtype=cv2.CV_16S,
                                dst=scratch.get("level", plane, np.int16))
        if smooth:
            level = cv2.sepFilter2D(level, cv2.CV_16S, kx, ky,
                                    dst=scratch.get("smooth", plane, np.int16),
                                    borderType=border)
        dx = cv2.Sobel(level, cv2.CV_16S, 1, 0, dst=scratch.get("dx", plane, np.int16),
                       ksize=3, borderType=border)
        dy = cv2.Sobel(level, cv2.CV_16S, 0, 1, dst=scratch.get("dy", plane, np.int16),
                       ksize=3, scale=sx / sy, borderType=border)
        if use_quantiles:
            mag = cv2.magnitude(dx.astype(np.float32), dy.astype(np.float32)) if l2 else \
                np.abs(dx, dtype=np.float32) + np.abs(dy, dtype=np.float32)
            t_lo, t_hi = np.quantile(mag, [low_threshold, high_threshold])
        else:
            per_mm = 8.0 * sx * c  # one unit/mm of gradient in the int16 derivatives
            t_lo, t_hi = low_threshold * per_mm, high_threshold * per_mm
        cv2.Canny(dx, dy, float(t_lo), float(t_hi), edges=out[k], L2gradient=l2)
        np.minimum(out[k], 1, out=out[k])  # OpenCV marks edges with 255

    each_slice(edges, volume.shape[0], progress, "Canny edges")
    return LabelMap.like(volume, out, segments=(Segment(1, "Edges", (255, 225, 25)),))
