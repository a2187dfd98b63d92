"""Contrast enhancement: stretch, histogram equalisation, CLAHE, unsharp masking, gamma.

Why one module: five enhancement functions sharing one slice-threaded pattern (401 lines).

Every function returns a float32 volume on the input's grid, works slice by slice in threads
(NumPy and OpenCV release the GIL) with progress and cancellation, and holds at most the
output and a few slices of temporaries besides the input.

Percentiles and the other histogram helpers live in :mod:`medview.core.exposure.histogram`;
``percentiles`` is re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import (
    as_float32,
    check_finite,
    check_non_negative,
    check_positive,
    check_scalar,
)
from medview.core._shared.parallel import map_slices
from medview.core.exposure.histogram import (
    _equalize_lut,
    _hist_range,
    _histogram,
    _interp_uniform,
    _min_max,
    _rescale_into,
    _value_range,
    percentiles,
)
from medview.core.filters.smoothing import BorderMode, gaussian
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = [
    "adjust_gamma",
    "equalize_adaptive",
    "equalize_histogram",
    "percentiles",
    "sharpen_unsharp",
    "stretch_contrast",
]

_SK_GREY, _SK_BIN = 2**14, 1 + 2**14 // 256  # scikit-image's CLAHE grey levels and bin width


# -- contrast stretch ---------------------------------------------------------------------
def stretch_contrast(
    volume: Volume, *,
    low_percentile: Annotated[float, Range(0.0, 100.0, step=0.5, unit="%")] = 1.0,
    high_percentile: Annotated[float, Range(0.0, 100.0, step=0.5, unit="%")] = 99.0,
    in_low: float | None = None,
    in_high: float | None = None,
    out_low: float = 0.0,
    out_high: float = 1.0,
    mode: Literal["3d", "2d"] = "3d",
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Map an input range linearly onto ``[out_low, out_high]``, clipping values outside it.

    The input range is ``[in_low, in_high]`` where given, else the ``low_percentile`` and
    ``high_percentile`` of the values (NumPy's linear percentiles, exact). Same values as
    ``skimage.exposure.rescale_intensity(image, in_range=(lo, hi), out_range=(out_low,
    out_high))``.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    low_percentile : float
        Percentile mapped to out_low (unless in_low is given).
    high_percentile : float
        Percentile mapped to out_high (unless in_high is given).
    in_low : float, optional
        Explicit input value mapped to out_low (e.g. −160 HU); overrides the percentile.
    in_high : float, optional
        Explicit input value mapped to out_high (e.g. 240 HU); overrides the percentile.
    out_low : float
        Output value of the low end.
    out_high : float
        Output value of the high end; must be greater than out_low.
    mode : {"3d", "2d"}
        "3d": one range for the whole volume; "2d": percentiles of each slice on its own.

    Returns
    -------
    Volume
        float32 in ``[out_low, out_high]``, same grid.

    Raises
    ------
    ValueError
        If the percentiles are outside [0, 100] or not increasing, ``in_high < in_low``,
        ``out_high <= out_low``, or the volume is RGB.
    """
    check_scalar(volume, "Contrast stretch")
    for name, q in (("low_percentile", low_percentile), ("high_percentile", high_percentile)):
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"{name}: must be in [0, 100], got {q}")
    if low_percentile >= high_percentile and (in_low is None or in_high is None):
        raise ValueError(f"high_percentile: must be above low_percentile ({low_percentile}), "
                         f"got {high_percentile}")
    for name, v in (("in_low", in_low), ("in_high", in_high), ("out_low", out_low),
                    ("out_high", out_high)):
        check_finite(name, v)
    if out_high <= out_low:
        raise ValueError(f"out_high: must be > out_low ({out_low}), got {out_high}")
    if mode not in ("3d", "2d"):
        raise ValueError(f"mode: expected '3d' or '2d', got {mode!r}")
    if in_low is not None and in_high is not None and in_high < in_low:
        raise ValueError(f"in_high: must be >= in_low, got in_low={in_low}, in_high={in_high}")
    arr = volume.array
    out = np.empty(volume.shape, np.float32)
    if mode == "2d" and (in_low is None or in_high is None):
        def stretch2d(img: np.ndarray) -> np.ndarray:
            p_lo, p_hi = np.percentile(img, [low_percentile, high_percentile])
            lo = p_lo if in_low is None else in_low
            hi = p_hi if in_high is None else in_high
            return _rescale_into(img, lo, max(lo, hi), out_low, out_high)

        map_slices(stretch2d, arr, out, progress=progress, message="Contrast stretch")
        return volume.with_array(out)
    lo, hi = in_low, in_high
    if lo is None or hi is None:
        p_lo, p_hi = percentiles(arr, [low_percentile, high_percentile],
                                 progress=progress.sub(0.0, 0.6))
        lo = p_lo if lo is None else lo
        hi = p_hi if hi is None else hi
    hi = max(lo, hi)
    map_slices(lambda img: _rescale_into(img, lo, hi, out_low, out_high), arr, out,
               progress=progress.sub(0.6, 1.0), message="Contrast stretch")
    return volume.with_array(out)


def equalize_histogram(
    volume: Volume, *,
    bins: Annotated[int, Range(2, 65536, step=1)] = 256,
    mode: Literal["3d", "2d"] = "3d",
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Histogram equalisation: every value becomes its cumulative frequency, in (0, 1].

    The histogram has ``bins`` equal bins between the smallest and largest value; values are
    mapped through the cumulative histogram, interpolated linearly between bin centres.
    Same values as ``skimage.exposure.equalize_hist(image.astype(float32), nbins=bins)``
    (integer volumes are binned like float ones, not one bin per integer).

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    bins : int
        Number of histogram bins.
    mode : {"3d", "2d"}
        "3d": one histogram for the whole volume; "2d": each slice equalised on its own.

    Returns
    -------
    Volume
        float32 in (0, 1], same grid.

    Raises
    ------
    ValueError
        If ``bins`` < 2 or the volume is RGB.
    """
    check_scalar(volume, "Histogram equalisation")
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins: must be an integer >= 2, got {bins}")
    if mode not in ("3d", "2d"):
        raise ValueError(f"mode: expected '3d' or '2d', got {mode!r}")
    bins = int(bins)
    arr = volume.array
    out = np.empty(volume.shape, np.float32)
    if mode == "2d":
        def equalize2d(img: np.ndarray) -> np.ndarray:
            lo, hi = _hist_range(float(img.min()), float(img.max()))
            cdf, centres = _equalize_lut(_histogram(img, lo, hi, bins), lo, hi)
            return _interp_uniform(img, centres, cdf)

        map_slices(equalize2d, arr, out, progress=progress, message="Equalisation")
        return volume.with_array(out)
    lo, hi = _hist_range(*_min_max(arr, progress.sub(0.0, 0.1)))
    counts = np.empty((arr.shape[0], bins), np.int64)
    map_slices(lambda img: _histogram(img, lo, hi, bins), arr, counts,
               progress=progress.sub(0.1, 0.5), message="Equalisation: histogram")
    cdf, centres = _equalize_lut(counts.sum(axis=0), lo, hi)
    map_slices(lambda img: _interp_uniform(img, centres, cdf), arr, out,
               progress=progress.sub(0.5, 1.0), message="Equalisation: mapping")
    return volume.with_array(out)


# -- CLAHE --------------------------------------------------------------------------------
def equalize_adaptive(
    volume: Volume, *,
    clip_limit: Annotated[float, Range(0.0, 1.0, step=0.005)] = 0.01,
    tiles: Annotated[int, Range(1, 64, step=1)] = 8,
    in_low: float | None = None,
    in_high: float | None = None,
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """CLAHE: contrast-limited adaptive histogram equalisation, slice by slice (OpenCV).

    Each slice is cut into ``tiles`` × ``tiles`` regions; each region's histogram is clipped
    at ``clip_limit`` × its pixel count per bin (the excess spread over all bins) and
    equalised, and every pixel is mapped by bilinear interpolation between the four nearest
    region mappings; finally the result is stretched to [0, 1] over the whole volume. This is
    scikit-image's ``equalize_adapthist(nbins=256, kernel_size=slice size / tiles)`` (same
    ``clip_limit`` meaning; 0 means no limit), run with OpenCV, 10–100× faster.

    Quantisation: OpenCV's CLAHE works on 8-bit images. ``[in_low, in_high]`` (default: the
    volume's min and max, the same for every slice) is cut into scikit-image's bins (2^14
    levels, 65 to a bin: 253 bins) and OpenCV's mappings have 256 output levels, so the
    result differs from scikit-image's by up to ~0.012 without clipping. With clipping,
    OpenCV spreads the clipped excess evenly over all bins where scikit-image first tops bins
    up to the limit; on real CT the mean difference is 0.007–0.023 (99th percentile
    0.02–0.08). Use a window (e.g. −160…240 HU) to spend the bins on the tissue of interest.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    clip_limit : float
        Contrast limit as a fraction of a region's pixels per bin; higher = more contrast.
    tiles : int
        Regions per row and per column of a slice.
    in_low : float, optional
        Lowest value of the window quantised to 256 levels (default: the volume's minimum).
    in_high : float, optional
        Highest value of that window (default: the volume's maximum).

    Returns
    -------
    Volume
        float32 in [0, 1], same grid.

    Raises
    ------
    ValueError
        If ``clip_limit`` is outside [0, 1], ``tiles`` < 1, ``in_high < in_low``, or the
        volume is RGB.
    """
    import cv2

    check_scalar(volume, "CLAHE")
    if not 0.0 <= clip_limit <= 1.0:
        raise ValueError(f"clip_limit: must be in [0, 1], got {clip_limit}")
    if int(tiles) != tiles or tiles < 1:
        raise ValueError(f"tiles: must be an integer >= 1, got {tiles}")
    arr = volume.array
    lo, hi = _value_range(arr, in_low, in_high, progress.sub(0.0, 0.05))
    tiles = int(tiles)
    ny, nx = volume.shape[1:]
    if tiles > min(ny, nx):
        raise ValueError(f"tiles: at most the slice size {min(ny, nx)}, got {tiles}")
    levels = np.empty(volume.shape, np.uint8)

    def clahe2d(img: np.ndarray) -> np.ndarray:
        # scikit-image's bins: 2^14 grey levels grouped 65 to a bin (bins 0…252)
        q = _rescale_into(img, lo, hi, 0.0, _SK_GREY - 1)
        np.rint(q, out=q)
        q /= np.float32(_SK_BIN)  # exact for these integers, unlike a multiplication
        np.floor(q, out=q)
        # OpenCV clips at clipLimit · pixels / 256 counts per bin, scikit-image at
        # clip_limit · pixels: the same with clipLimit = 256 · clip_limit
        clahe = cv2.createCLAHE(clipLimit=256.0 * clip_limit, tileGridSize=(tiles, tiles))
        return clahe.apply(q.astype(np.uint8))

    map_slices(clahe2d, arr, levels, progress=progress.sub(0.05, 0.8), message="CLAHE")
    lo_out, hi_out = _min_max(levels)
    out = np.empty(volume.shape, np.float32)
    map_slices(lambda img: _rescale_into(img, lo_out, hi_out, 0.0, 1.0), levels, out,
               progress=progress.sub(0.8, 1.0), message="CLAHE")
    return volume.with_array(out)


# -- unsharp mask -------------------------------------------------------------------------
def sharpen_unsharp(
    volume: Volume, *,
    sigma_mm: Annotated[float, Range(0.1, 20.0, step=0.1, unit="mm")] = 1.0,
    amount: Annotated[float, Range(0.0, 10.0, step=0.1)] = 1.0,
    in_plane_only: bool = False,
    border: BorderMode = "reflect",
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Unsharp masking: ``image + amount · (image − gaussian(image, sigma_mm))``.

    The Gaussian is :func:`medview.core.filters.smoothing.gaussian` (σ in mm on every axis, the
    volume extended by ``border``). With the default border, same values as
    ``skimage.filters.unsharp_mask(image, radius=σ in voxels, amount=amount,
    preserve_range=True)``; nothing is clipped.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    sigma_mm : float
        Standard deviation of the blur that defines "detail", in millimetres.
    amount : float
        How much of the detail is added back; 0 returns the image unchanged.
    in_plane_only : bool
        Blur each slice on its own (2D), not across slices.
    border : str
        How the blur extends the volume beyond its edges: reflect (default), reflect_101,
        replicate or constant (0); see :mod:`medview.core.filters.smoothing`.

    Returns
    -------
    Volume
        float32, same grid.

    Raises
    ------
    ValueError
        If ``sigma_mm`` <= 0, ``amount`` < 0, ``border`` is unknown, or the volume is RGB.
    """
    check_scalar(volume, "Unsharp masking")
    sigma_mm = check_positive("sigma_mm", sigma_mm)
    amount = check_non_negative("amount", amount)
    blurred = gaussian(volume, sigma_mm=sigma_mm, in_plane_only=in_plane_only, border=border,
                       progress=progress.sub(0.0, 0.8)).array
    arr = volume.array
    k = np.float32(amount)

    def sharpen(i) -> np.ndarray:  # (1 + a)·x − a·blur, in place in the blurred slice
        i = int(i)
        b = blurred[i]
        b *= -k
        x = as_float32(arr[i])
        b += x
        b += k * x
        return b

    map_slices(sharpen, np.arange(volume.shape[0]), blurred, progress=progress.sub(0.8, 1.0),
               message="Unsharp mask")
    return volume.with_array(blurred)


# -- gamma --------------------------------------------------------------------------------
def adjust_gamma(
    volume: Volume, *,
    gamma: Annotated[float, Range(0.01, 10.0, step=0.05)] = 1.0,
    gain: Annotated[float, Range(0.0, 100.0, step=0.1)] = 1.0,
    in_low: float | None = None,
    in_high: float | None = None,
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Gamma correction ``gain · v^gamma`` of the values normalised to [0, 1].

    ``v = (clip(x, in_low, in_high) − in_low) / (in_high − in_low)`` with the range defaulting
    to the volume's min and max; gamma < 1 brightens dark values, > 1 darkens them. Same
    values as ``skimage.exposure.adjust_gamma(v, gamma, gain)`` on that normalised image.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    gamma : float
        Exponent; 1 keeps the normalised values.
    gain : float
        Factor applied after the exponent.
    in_low : float, optional
        Value mapped to 0 (default: the volume's minimum).
    in_high : float, optional
        Value mapped to 1 (default: the volume's maximum).

    Returns
    -------
    Volume
        float32 in [0, gain], same grid.

    Raises
    ------
    ValueError
        If ``gamma`` <= 0, ``gain`` < 0, ``in_high < in_low``, or the volume is RGB.
    """
    import cv2

    check_scalar(volume, "Gamma correction")
    gamma = check_positive("gamma", gamma)
    gain = check_non_negative("gain", gain)
    arr = volume.array
    lo, hi = _value_range(arr, in_low, in_high, progress.sub(0.0, 0.1))
    clip = in_low is not None or in_high is not None  # the min…max range needs no clipping

    def gamma2d(img: np.ndarray) -> np.ndarray:
        v = _rescale_into(img, lo, hi, 0.0, 1.0, clip=clip)
        if gamma != 1.0:
            v = cv2.pow(v, float(gamma))  # = np.power here, faster
        if gain != 1.0:
            v *= np.float32(gain)
        return v

    out = np.empty(volume.shape, np.float32)
    map_slices(gamma2d, arr, out, progress=progress.sub(0.1, 1.0), message="Gamma")
    return volume.with_array(out)
