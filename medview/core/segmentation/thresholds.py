# Over 400 lines on purpose: the histogram and five thresholds share per-slice helpers.
"""Histogram and thresholds: manual, Otsu, multi-Otsu, Li, triangle (plus shared helpers).

Why one module: the thresholds share its threaded histogram and comparison helpers.

Split out of :mod:`medview.core.segmentation.intensity`, which re-exports every public name here.

The automatic thresholds are scikit-image's (``threshold_otsu``, ``threshold_multiotsu``,
``threshold_li``, ``threshold_triangle``) computed from a histogram that equals
``skimage.exposure.histogram(volume, nbins, source_range="image")`` bin for bin but is built
in threads without copying the volume, so Otsu's threshold is exactly scikit-image's.
Foreground is ``value > threshold`` like scikit-image's examples; multi-Otsu classes are
``np.digitize(value, thresholds)``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import numpy as np

from medview.core._shared.checks import check_scalar
from medview.core._shared.parallel import map_slices, worker_count
from medview.core.labelmap import LabelMap, Segment, default_segments
from medview.core.params import Help, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = [
    "intensity_histogram",
    "threshold_li",
    "threshold_manual",
    "threshold_multiotsu",
    "threshold_otsu",
    "threshold_triangle",
]

# integer volumes get one histogram bin per level (as in scikit-image) up to this many levels
_MAX_INTEGER_LEVELS = 1 << 20


# -- helpers ---------------------------------------------------------------------------
def _scalar_array(volume: Volume, name: str = "volume") -> np.ndarray:
    check_scalar(volume, "segmentation", name=name)
    arr = volume.array
    if arr.dtype.kind == "b":
        return arr.view(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected integer or float voxels, got {arr.dtype}")
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr


def _label_map(volume: Volume, labels: np.ndarray, segments, **metadata) -> LabelMap:
    # segments are always given: LabelMap would otherwise run np.unique over the volume
    return LabelMap.like(volume, labels, segments=tuple(segments), **metadata)


def _segments(numbers, names) -> tuple[Segment, ...]:
    colors = {s.number: s.color for s in default_segments(numbers)}
    return tuple(Segment(int(n), name, colors[int(n)]) for n, name in zip(numbers, names,
                                                                          strict=True))


def _reduce_slices(func, arr: np.ndarray, progress: Progress, message: str):
    """``sum(func(arr[z]) for z)`` in threads, cancellation checked before every chunk."""
    nz = arr.shape[0]
    threads = worker_count()
    chunk = max(1, nz // (threads * 8))
    starts = list(range(0, nz, chunk))

    def work(start: int):
        progress.check()
        acc = None
        for z in range(start, min(nz, start + chunk)):
            r = func(arr[z])
            acc = r if acc is None else acc + r
        return acc, min(nz, start + chunk) - start

    total, done = None, 0
    if threads == 1 or nz < 4:
        results = map(work, starts)
        pool = None
    else:
        pool = ThreadPoolExecutor(threads)
        results = pool.map(work, starts)
    try:
        for acc, count in results:
            total = acc if total is None else total + acc
            done += count
            progress.update(done / nz, message)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return total


def _min_max(arr: np.ndarray, progress: Progress):
    def mm(s: np.ndarray) -> np.ndarray:
        return np.array([s.min(), s.max()], dtype=arr.dtype)

    both = np.empty((arr.shape[0], 2), arr.dtype)
    map_slices(mm, arr, both, progress=progress, message="range")
    lo, hi = both[:, 0].min(), both[:, 1].max()
    if arr.dtype.kind == "f" and not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"volume: values must be finite, found range [{lo}, {hi}] "
                         "(NaN or infinity); replace them first")
    return lo, hi


def intensity_histogram(volume: Volume, *, nbins: int = 256, integer_bins: bool = True,
                        progress: Progress = NO_PROGRESS) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin centres over the volume's value range.

    Equal, bin for bin, to ``skimage.exposure.histogram(volume.array.ravel(), nbins,
    source_range="image")``: float volumes get ``nbins`` equal bins from min to max with
    ``numpy.histogram``'s edge rules; integer volumes get one bin per integer level
    (``integer_bins=True``, scikit-image's choice; ``nbins`` is ignored) or ``nbins`` equal
    bins (``integer_bins=False``, what ``numpy.histogram`` gives). Computed per slice in
    threads without a copy of the volume.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    nbins : int
        Number of bins for float volumes (and integer ones with ``integer_bins=False``).
    integer_bins : bool
        One bin per level for integer volumes.

    Returns
    -------
    counts : ndarray of int64, shape (n,)
    centers : ndarray, shape (n,)
        Bin centres: the volume's float dtype for float volumes, int64 levels for integer
        bins, float64 for binned integer volumes.

    Raises
    ------
    ValueError
        If ``nbins`` < 1, the volume is RGB or has NaN/infinite values, or an integer volume
        spans more than 2**20 levels with ``integer_bins=True``.
    """
    arr = _scalar_array(volume)
    nbins = int(nbins)
    if nbins < 1:
        raise ValueError(f"nbins: must be >= 1, got {nbins}")
    lo, hi = _min_max(arr, progress.sub(0.0, 0.1))
    sub = progress.sub(0.1, 1.0)
    if arr.dtype.kind in "iu":
        vmin, vmax = int(lo), int(hi)
        levels = vmax - vmin + 1
        if integer_bins or levels <= 1:
            if levels > _MAX_INTEGER_LEVELS:
                raise ValueError(f"volume: integer values span {levels} levels "
                                 f"({vmin}..{vmax}); too many for one bin per level")
            counts = _reduce_slices(
                lambda s: np.bincount(np.subtract(s, vmin, dtype=np.intp).ravel(),
                                      minlength=levels),
                arr, sub, "histogram")
            return counts.astype(np.int64), np.arange(vmin, vmax + 1)
        # numpy.histogram on integers: float64 edges; bin each level once, then weight
        level_counts = _reduce_slices(
            lambda s: np.bincount(np.subtract(s, vmin, dtype=np.intp).ravel(),
                                  minlength=levels),
            arr, sub, "histogram")
        counts, edges = np.histogram(np.arange(vmin, vmax + 1), bins=nbins,
                                     range=(lo, hi), weights=level_counts)
        return counts.astype(np.int64), (edges[:-1] + edges[1:]) / 2.0
    first, last = lo, hi
    if first == last:
        first, last = first - 0.5, last + 0.5
    edges = np.linspace(first, last, nbins + 1, endpoint=True,
                        dtype=np.result_type(first, last, arr))
    centers = (edges[:-1] + edges[1:]) / 2.0
    if nbins > 256:
        counts = _reduce_slices(lambda s: np.histogram(s, bins=nbins, range=(first, last))[0],
                                arr, sub, "histogram")
        return counts.astype(np.int64), centers
    return _float_histogram_u8(arr, first, last, edges, nbins, sub), centers


def _float_histogram_u8(arr, first, last, edges, nbins, progress) -> np.ndarray:
    """numpy.histogram's uniform bins for nbins <= 256: a uint8 guess, then numpy's checks.

    The bin of a value is fixed by comparisons with the bin edges alone (the last bin
    includes its right edge); numpy computes a guess and corrects it by one against the
    edges, and so does this, with the guess from one OpenCV pass (off by at most one, as
    numpy's own can be) and the edge look-ups as OpenCV LUTs: 3× faster, in threads.
    """
    import cv2

    alpha = float(nbins) / float(last - first)
    gamma = -float(first) * alpha - 0.5  # rounding x*alpha+gamma ~ floor((x-first)*alpha)
    lower = np.zeros(256, edges.dtype)
    lower[:nbins] = edges[:nbins]
    upper = np.full(256, np.inf, edges.dtype)
    upper[: nbins - 1] = edges[1:nbins]  # the last bin includes its right edge

    def hist(s: np.ndarray) -> np.ndarray:
        idx = cv2.addWeighted(s, alpha, s, 0.0, gamma, dtype=cv2.CV_8U)
        if nbins < 256:
            cv2.min(idx, nbins - 1, dst=idx)
        cv2.subtract(idx, 1, dst=idx, mask=cv2.compare(s, cv2.LUT(idx, lower), cv2.CMP_LT))
        cv2.add(idx, 1, dst=idx, mask=cv2.compare(s, cv2.LUT(idx, upper), cv2.CMP_GE))
        h = cv2.calcHist([idx], [0], None, [256], [0, 256])
        return h.reshape(-1)[:nbins].astype(np.int64)

    return _reduce_slices(hist, arr, progress, "histogram")


def _compare(arr: np.ndarray, progress: Progress, func) -> np.ndarray:
    out = np.empty(arr.shape, np.uint8)
    map_slices(lambda s: func(s).view(np.uint8), arr, out, progress=progress,
               message="labelling")
    return out


def _above(arr: np.ndarray, t, progress: Progress) -> np.ndarray:
    return _compare(arr, progress, lambda s: np.greater(s, t))


def _in_range_bounds(arr: np.ndarray, low: float, high: float):
    """Bounds in the array's own type (integers: ceil/floor), or None if nothing can match."""
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        lo = max(math.ceil(low), int(info.min))
        hi = min(math.floor(high), int(info.max))
        if lo > hi:
            return None
        return arr.dtype.type(lo), arr.dtype.type(hi)
    return low, high


def _in_range(arr: np.ndarray, low: float, high: float, progress: Progress) -> np.ndarray:
    bounds = _in_range_bounds(arr, low, high)
    if bounds is None:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = bounds

    def inside(s: np.ndarray) -> np.ndarray:
        m = np.greater_equal(s, lo)
        m &= np.less_equal(s, hi)
        return m

    return _compare(arr, progress, inside)


def _per_slice_threshold(arr, method, progress) -> tuple[np.ndarray, list[float]]:
    """Threshold every slice on its own (2D); constant slices are all background."""
    out = np.empty(arr.shape, np.uint8)
    thresholds: list[float] = [math.nan] * arr.shape[0]

    def one(z: np.ndarray) -> np.ndarray:
        k = int(z)
        s = arr[k]
        if s.min() == s.max():
            return np.zeros(s.shape, np.uint8)
        t = method(s)
        thresholds[k] = float(t)
        return np.greater(s, t).view(np.uint8)

    map_slices(one, np.arange(arr.shape[0]), out, progress=progress, message="per slice")
    return out, thresholds


def _auto_threshold(volume, arr, name, threshold_fn, slice_fn, in_plane_only, progress):
    if in_plane_only:
        out, ts = _per_slice_threshold(arr, slice_fn, progress)
        segs = _segments([1], [f"Above {name} (per slice)"])
        return _label_map(volume, out, segs, Threshold=ts, ThresholdMethod=name)
    t = threshold_fn(progress.sub(0.0, 0.8))
    out = _above(arr, t, progress.sub(0.8, 1.0))
    segs = _segments([1], [f"Above {name} {float(t):.6g}"])
    return _label_map(volume, out, segs, Threshold=float(t), ThresholdMethod=name)


# -- thresholds ------------------------------------------------------------------------
def threshold_manual(volume: Volume, *,
                     low: Annotated[float, Range(step=1.0),
                                    Help("Lowest value inside (HU for CT)")] = -1000.0,
                     high: Annotated[float, Range(step=1.0),
                                     Help("Highest value inside (HU for CT)")] = -400.0,
                     progress: Progress = NO_PROGRESS) -> LabelMap:
    """Label 1 where ``low <= value <= high`` (physical units: HU for CT).

    The defaults pick air-filled lung on CT. Bounds are compared at the volume's precision:
    for integer volumes ``low`` is rounded up and ``high`` down.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    low : float
        Lowest value inside, in the volume's units (HU for CT).
    high : float
        Highest value inside; must be >= ``low``.

    Returns
    -------
    LabelMap
        uint8, 1 inside the range, 0 elsewhere; same grid.

    Raises
    ------
    ValueError
        If ``low`` > ``high``, either is NaN, or the volume is RGB.
    """
    arr = _scalar_array(volume)
    low, high = float(low), float(high)
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"low/high: must be numbers, got low={low}, high={high}")
    if low > high:
        raise ValueError(f"low: {low:g} is above high {high:g}; swap them")
    out = _in_range(arr, low, high, progress)
    return _label_map(volume, out, _segments([1], [f"{low:g} to {high:g}"]),
                      ThresholdLow=low, ThresholdHigh=high)


def threshold_otsu(volume: Volume, *,
                   nbins: Annotated[int, Range(2, 65536)] = 256,
                   in_plane_only: bool = False,
                   progress: Progress = NO_PROGRESS) -> LabelMap:
    """Label 1 above Otsu's threshold: exactly ``skimage.filters.threshold_otsu``.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    nbins : int
        Histogram bins for float volumes (integer volumes: one bin per level).
        This is scikit-image's rule.
    in_plane_only : bool
        One threshold per slice (2D) instead of one for the volume.

    Returns
    -------
    LabelMap
        uint8, 1 where ``value > threshold``; the threshold is in ``metadata["Threshold"]``
        (a list per slice with ``in_plane_only``).
    """
    from skimage.filters import threshold_otsu as sk_otsu

    arr = _scalar_array(volume)

    def whole(p: Progress):
        counts, centers = intensity_histogram(volume, nbins=nbins, progress=p)
        if np.count_nonzero(counts) == 1:  # constant: scikit-image returns that value
            return arr.reshape(-1)[0]
        return sk_otsu(hist=(counts, centers))

    return _auto_threshold(volume, arr, "Otsu", whole, lambda s: sk_otsu(s, nbins),
                           in_plane_only, progress)


def threshold_multiotsu(volume: Volume, *,
                        classes: Annotated[int, Range(2, 5)] = 3,
                        nbins: Annotated[int, Range(8, 1024)] = 256,
                        progress: Progress = NO_PROGRESS) -> LabelMap:
    """Classes 0 … ``classes``-1 by multi-level Otsu (``skimage.filters.threshold_multiotsu``).

    The darkest class is label 0 (background), the brightest ``classes - 1``; a voxel's label
    is the number of thresholds it is >= (``np.digitize``). Integer volumes are binned into
    ``nbins`` bins like float ones (scikit-image would give every level its own bin, which
    makes three or more thresholds on CT's thousands of levels take minutes).

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    classes : int
        Number of classes (labels 0 … classes-1).
    nbins : int
        Histogram bins.

    Returns
    -------
    LabelMap
        uint8 labels 0 … classes-1; thresholds in ``metadata["Thresholds"]``.

    Raises
    ------
    ValueError
        If the histogram has fewer occupied bins than ``classes``.
    """
    from skimage.filters import threshold_multiotsu as sk_multi

    arr = _scalar_array(volume)
    classes = int(classes)
    if classes < 2:
        raise ValueError(f"classes: needs at least 2, got {classes}")
    counts, centers = intensity_histogram(volume, nbins=nbins, integer_bins=False,
                                          progress=progress.sub(0.0, 0.6))
    occupied = int(np.count_nonzero(counts))
    if occupied < classes:
        raise ValueError(f"classes: the volume has only {occupied} occupied histogram bin(s), "
                         f"cannot split it into {classes} classes")
    ts = sk_multi(classes=classes, hist=(counts / np.sum(counts), centers))
    if arr.dtype.kind in "iu":
        ts = np.asarray(ts, dtype=np.float64)

    def digitize(s: np.ndarray) -> np.ndarray:
        lab = np.greater_equal(s, ts[0]).view(np.uint8)
        for t in ts[1:]:
            lab += np.greater_equal(s, t).view(np.uint8)
        return lab

    out = np.empty(arr.shape, np.uint8)
    map_slices(digitize, arr, out, progress=progress.sub(0.6, 1.0), message="labelling")
    names = [f"Class {i + 1} (>= {float(t):.6g})" for i, t in enumerate(ts)]
    return _label_map(volume, out, _segments(range(1, classes), names),
                      Thresholds=[float(t) for t in ts], ThresholdMethod="multi-Otsu")


def threshold_li(volume: Volume, *,
                 in_plane_only: bool = False,
                 progress: Progress = NO_PROGRESS) -> LabelMap:
    """Label 1 above Li's minimum cross-entropy threshold (``skimage.filters.threshold_li``).

    Integer volumes: scikit-image's own iteration on the one-bin-per-level histogram, so the
    threshold is scikit-image's. Float volumes: the same iteration with exact class means
    from threaded passes over the voxels, run until the split no longer changes (scikit-image
    stops within half the smallest gap between values, after sorting the whole volume for it);
    the thresholds agree to that tolerance.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    in_plane_only : bool
        One threshold per slice (2D) instead of one for the volume.

    Returns
    -------
    LabelMap
        uint8, 1 where ``value > threshold``; the threshold in ``metadata["Threshold"]``.
    """
    from skimage.filters import threshold_li as sk_li

    arr = _scalar_array(volume)

    def whole(p: Progress):
        if arr.dtype.kind in "iu":
            return _li_integer(volume, p)
        return _li_float(arr, p)

    return _auto_threshold(volume, arr, "Li", whole, sk_li, in_plane_only, progress)


def _li_integer(volume: Volume, progress: Progress):
    counts, centers = intensity_histogram(volume, progress=progress)
    if counts.size == 1:
        return centers[0]
    # scikit-image's integer branch, on the histogram of ``image - image.min()``
    image_min = centers[0]
    bin_centers = centers - image_min
    hist = counts.astype("float32", copy=False)
    tolerance = 0.5
    t_next = float(np.dot(counts, bin_centers.astype(np.float64)) / counts.sum())
    t_curr = -2 * tolerance
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        foreground = bin_centers > t_curr
        background = ~foreground
        mean_fore = np.average(bin_centers[foreground], weights=hist[foreground])
        mean_back = np.average(bin_centers[background], weights=hist[background])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next + image_min


def _li_float(arr: np.ndarray, progress: Progress) -> float:
    import cv2

    lo, hi = _min_max(arr, progress.sub(0.0, 0.05))
    if lo == hi:
        return lo
    lo = float(lo)
    n = float(arr.size)

    def sums(t: float, p: Progress) -> tuple[float, float, float]:
        def one(s: np.ndarray) -> np.ndarray:
            m = cv2.compare(s, t, cv2.CMP_GT)
            c = cv2.countNonZero(m)
            fg = cv2.mean(s, mask=m)[0] * c if c else 0.0
            return np.array([c, fg, float(np.sum(s, dtype=np.float64))])

        return tuple(_reduce_slices(one, arr, p, "Li"))  # type: ignore[return-value]

    # scikit-image works on image - min so that log(mean) exists; so do we
    count, fg_sum, total = sums(math.inf, progress.sub(0.05, 0.15))
    t_next = total / n - lo
    t_curr = -1.0
    previous = -1.0
    for it in range(200):
        t_curr = t_next
        count, fg_sum, total = sums(t_curr + lo, progress.sub(0.15 + 0.05 * min(it, 16),
                                                              0.2 + 0.05 * min(it, 16)))
        if count in (0.0, n):
            break
        mean_fore = fg_sum / count - lo
        mean_back = (total - fg_sum) / (n - count) - lo
        if mean_back == 0.0:
            break
        t_next = (mean_back - mean_fore) / (math.log(mean_back) - math.log(mean_fore))
        if count == previous:  # same split as last time: the iteration has converged
            break
        previous = count
    progress.update(1.0, "Li")
    return np.float64(t_next + lo)


def threshold_triangle(volume: Volume, *,
                       nbins: Annotated[int, Range(2, 65536)] = 256,
                       in_plane_only: bool = False,
                       progress: Progress = NO_PROGRESS) -> LabelMap:
    """Label 1 above the triangle threshold (``skimage.filters.threshold_triangle``).

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    nbins : int
        Histogram bins for float volumes (integer volumes: one bin per level).
    in_plane_only : bool
        One threshold per slice (2D) instead of one for the volume.

    Returns
    -------
    LabelMap
        uint8, 1 where ``value > threshold``; the threshold in ``metadata["Threshold"]``.
    """
    from skimage.filters import threshold_triangle as sk_triangle

    arr = _scalar_array(volume)

    def whole(p: Progress):
        counts, centers = intensity_histogram(volume, nbins=nbins, progress=p)
        if np.count_nonzero(counts) == 1:  # constant: scikit-image returns that value
            return arr.reshape(-1)[0]
        return _triangle(counts, centers)

    return _auto_threshold(volume, arr, "triangle", whole,
                           lambda s: sk_triangle(s, nbins), in_plane_only, progress)


def _triangle(hist: np.ndarray, bin_centers: np.ndarray):
    """scikit-image's threshold_triangle, from a histogram."""
    nbins = len(hist)
    arg_peak_height = int(np.argmax(hist))
    peak_height = hist[arg_peak_height]
    arg_low_level, arg_high_level = np.flatnonzero(hist)[[0, -1]]
    if arg_low_level == arg_high_level:
        return bin_centers[arg_low_level]
    flip = arg_peak_height - arg_low_level < arg_high_level - arg_peak_height
    if flip:
        hist = hist[::-1]
        arg_low_level = nbins - arg_high_level - 1
        arg_peak_height = nbins - arg_peak_height - 1
    width = arg_peak_height - arg_low_level
    x1 = np.arange(width)
    y1 = hist[x1 + arg_low_level]
    norm = np.sqrt(peak_height**2 + width**2)
    peak_height = peak_height / norm
    width = width / norm
    length = peak_height * x1 - width * y1
    arg_level = int(np.argmax(length)) + arg_low_level
    if flip:
        arg_level = nbins - arg_level - 1
    return bin_centers[arg_level]
