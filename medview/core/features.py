"""Features: gray-level statistics (tables), Sobel gradient magnitude and Canny edges (maps).

Texture features (Gabor bank, LBP, GLCM) live in :mod:`medview.core.texture`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np

from medview.core.labelmap import LabelMap, Segment
from medview.core.parallel import map_slices
from medview.core.params import Help, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.smoothing import gaussian_kernel_1d
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["canny_edges", "gray_statistics", "parse_percentiles", "sobel_magnitude"]

_CHUNK = 1 << 20  # values per work item of the statistics passes
_EXACT_RANGE = 1 << 20  # integer images spanning at most this many values are counted exactly
_FINE_BINS = 1 << 16  # bins of the histogram that locates percentiles in float images


# -- helpers ------------------------------------------------------------------------------
def _scalar(volume: Volume, what: str) -> None:
    if not isinstance(volume, Volume):
        raise TypeError(f"volume: expected a Volume, got {type(volume).__name__}")
    if volume.is_rgb:
        raise ValueError(f"volume: {what} needs a scalar volume, got RGB {volume.array.shape}")


def _check_mask(volume: Volume, mask: LabelMap | None) -> None:
    if mask is None:
        return
    if not isinstance(mask, LabelMap):
        raise TypeError(f"mask: expected a LabelMap, got {type(mask).__name__}")
    if not volume.same_grid(mask):
        raise ValueError(f"mask: its grid {mask.shape} {mask.spacing} is not the volume's "
                         f"{volume.shape} {volume.spacing}; resample the mask onto the volume")


def _chunk_bounds(n: int) -> np.ndarray:
    return np.linspace(0, n, max(1, -(-n // _CHUNK)) + 1).astype(np.int64)


def _map_chunks(func: Callable[[np.ndarray], list[float]], flat: np.ndarray, width: int,
                progress: Progress, message: str) -> np.ndarray:
    """``func`` on ~1M-value chunks of ``flat`` in threads; one result row per chunk."""
    bounds = _chunk_bounds(flat.size)
    out = np.empty((len(bounds) - 1, width), np.float64)
    map_slices(lambda i: func(flat[bounds[i]:bounds[i + 1]]), np.arange(len(bounds) - 1),
               out, progress=progress, message=message)
    return out


def _sum_chunks(func: Callable[[np.ndarray], np.ndarray], flat: np.ndarray, width: int,
                progress: Progress, message: str) -> np.ndarray:
    """The sum of ``func`` over ~1M-value chunks of ``flat``, in threads (one accumulator)."""
    bounds = _chunk_bounds(flat.size)
    total = np.zeros(width, np.float64)
    lock = threading.Lock()

    def work(i) -> int:
        part = func(flat[bounds[i]:bounds[i + 1]])
        with lock:
            total[:] += part
        return 0

    map_slices(work, np.arange(len(bounds) - 1), np.empty(len(bounds) - 1, np.int8),
               progress=progress, message=message)
    return total


def parse_percentiles(percentiles) -> list[float]:
    """Percentiles from ``"1, 5, 50"`` or a sequence of numbers, each in [0, 100].

    Raises
    ------
    ValueError
        Naming ``percentiles`` when a value is not a number in [0, 100].
    """
    items = percentiles.replace(";", ",").split(",") if isinstance(percentiles, str) \
        else list(percentiles)
    out = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            q = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"percentiles: {item!r} is not a number; give comma-separated "
                             f"values in [0, 100], e.g. '1, 50, 99'") from None
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentiles: {q:g} is outside [0, 100]")
        out.append(q)
    return out


def _lerp(a: float, b: float, t: float) -> float:
    # numpy's formula for the "linear" method, so results agree to the last bit where possible
    d = b - a
    return b - d * (1.0 - t) if t >= 0.5 else a + d * t


def _positions(n: int, qs: list[float]) -> list[tuple[int, float]]:
    """``(k, t)`` per percentile: the value lies between order statistics k and k+1."""
    out = []
    for q in qs:
        h = (n - 1) * (q / 100.0)
        k = int(np.floor(h))
        out.append((k, h - k))
    return out


def _moments(n: int, s2: float, s3: float, s4: float) -> dict[str, float | None]:
    """Variance, skewness, excess kurtosis from central power sums (scipy's biased estimates)."""
    m2, m3, m4 = s2 / n, s3 / n, s4 / n
    var = max(m2, 0.0)
    if var <= 0.0:
        return {"variance": 0.0, "std": 0.0, "skewness": None, "kurtosis": None}
    return {"variance": var, "std": float(np.sqrt(var)), "skewness": m3 / var ** 1.5,
            "kurtosis": m4 / var ** 2 - 3.0}


def _stats_exact(flat: np.ndarray, lo: int, hi: int, n: int, bins: int, qs: list[float],
                 progress: Progress) -> tuple[dict, np.ndarray, np.ndarray]:
    """Statistics of integer values from their exact value counts (one counting pass)."""
    size = hi - lo + 1

    def count(c: np.ndarray) -> np.ndarray:
        index = c.astype(np.intp)  # before subtracting: int16 - lo can overflow int16
        index -= lo
        return np.bincount(index, minlength=size)

    counts = _sum_chunks(count, flat, size, progress, "statistics: counting values")
    values = np.arange(lo, hi + 1, dtype=np.float64)
    mean = float(counts @ values) / n
    d = values - mean
    cd2 = counts * d * d
    stats = {"mean": mean, **_moments(n, float(cd2.sum()), float(cd2 @ d),
                                      float((cd2 * d) @ d))}
    cum = np.cumsum(counts)

    def order(r: int) -> float:
        return float(lo + int(np.searchsorted(cum, r, side="right")))

    for q, (k, t) in zip(qs, _positions(n, qs), strict=True):
        stats[f"p{q:g}"] = _lerp(order(k), order(min(k + 1, n - 1)), t)
    stats["mode"] = float(lo + int(np.argmax(counts)))
    # bins and edges exactly as np.histogram gives them for the source dtype
    hist, edges = np.histogram(values.astype(flat.dtype), bins, range=(float(lo), float(hi)),
                               weights=counts)
    return stats, np.rint(hist).astype(np.int64), edges


def _stats_float(flat: np.ndarray, lo: float, hi: float, n: int, total: float, bins: int,
                 qs: list[float], progress: Progress) -> tuple[dict, np.ndarray, np.ndarray]:
    """Statistics of float values: two-pass moments, histograms, exact percentiles."""
    mean = total / n
    fine = _FINE_BINS if hi > lo else 1

    hist = np.zeros(bins, np.int64)
    fine_counts = np.zeros(fine, np.int64)
    lock = threading.Lock()

    def second(c: np.ndarray) -> list[float]:
        h = np.histogram(c, bins, range=(lo, hi))[0]
        f = np.histogram(c, fine, range=(lo, hi))[0]
        with lock:  # integer counts: the order of accumulation does not matter
            hist[:] += h
            fine_counts[:] += f
        d = c.astype(np.float64) - mean
        d2 = d * d
        return [d2.sum(), (d2 * d).sum(), (d2 * d2).sum()]

    # moment sums per chunk, added in chunk order: bit-identical from run to run
    parts = _map_chunks(second, flat, 3, progress.sub(0.0, 0.7),
                        "statistics: moments and histogram").sum(axis=0)
    stats = {"mean": mean, **_moments(n, *parts)}
    # the edges np.histogram used for this dtype, so bin membership below agrees with it
    empty = np.empty(0, flat.dtype)
    edges = np.histogram_bin_edges(empty, bins, range=(lo, hi))
    fine_edges = np.histogram_bin_edges(empty, fine, range=(lo, hi))
    # order statistics: find each one's fine bin, then sort only the values of those bins
    pos = _positions(n, qs)
    ranks = sorted({r for k, _ in pos for r in (k, min(k + 1, n - 1))})
    cum = np.cumsum(fine_counts)
    need = sorted({int(np.searchsorted(cum, r, side="right")) for r in ranks})
    runs: list[list[int]] = []  # runs of adjacent needed bins: [first, last]
    for b in need:
        if runs and b == runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    lows = [fine_edges[a] for a, _ in runs]
    highs = [np.inf if b == fine - 1 else fine_edges[b + 1] for _, b in runs]
    flat_edges = np.column_stack([lows, highs]).astype(fine_edges.dtype).ravel()
    picked: list[list[np.ndarray]] = [[] for _ in runs]

    def collect(c: np.ndarray) -> list[float]:
        # slot 2j+1 means lows[j] <= value < highs[j]: the value is in run j
        where = np.searchsorted(flat_edges, c, side="right")
        inside = (where & 1).astype(bool)
        vals, slots = c[inside], where[inside] // 2
        with lock:
            for j in range(len(runs)):
                sel = vals[slots == j]
                if sel.size:
                    picked[j].append(sel)
        return [0.0]

    _map_chunks(collect, flat, 1, progress.sub(0.7, 1.0), "statistics: percentiles")
    run_values = [np.sort(np.concatenate(v)) if v else np.empty(0) for v in picked]

    def order(r: int) -> float:
        b = int(np.searchsorted(cum, r, side="right"))
        j = next(i for i, (first, last) in enumerate(runs) if first <= b <= last)
        before = int(cum[runs[j][0] - 1]) if runs[j][0] else 0
        return float(run_values[j][r - before])

    for q, (k, t) in zip(qs, pos, strict=True):
        stats[f"p{q:g}"] = _lerp(order(k), order(min(k + 1, n - 1)), t)
    stats["mode"] = None
    return stats, hist, edges


def _region_stats(values: np.ndarray, bins: int, qs: list[float],
                  progress: Progress) -> tuple[dict, np.ndarray, np.ndarray] | None:
    flat = values.reshape(-1)
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
    n = flat.size
    if n == 0:
        return None
    is_float = flat.dtype.kind == "f"

    def first(c: np.ndarray) -> list[float]:
        integral = 1.0
        if is_float:
            integral = float(np.array_equal(c, np.floor(c)))
        return [c.min(), c.max(), np.sum(c, dtype=np.float64), integral]

    parts = _map_chunks(first, flat, 4, progress.sub(0.0, 0.3), "statistics: range")
    total = float(parts[:, 2].sum())
    if not np.isfinite(total):
        raise ValueError("volume: contains NaN or infinite values; statistics need finite "
                         "values (replace them or use a mask that excludes them)")
    lo, hi = float(parts[:, 0].min()), float(parts[:, 1].max())
    rest = progress.sub(0.3, 1.0)
    if parts[:, 3].all() and hi - lo < _EXACT_RANGE and max(-lo, hi) < 2.0**52:
        stats, hist, edges = _stats_exact(flat, int(lo), int(hi), n, bins, qs, rest)
    else:
        stats, hist, edges = _stats_float(flat, lo, hi, n, total, bins, qs, rest)
    i = int(np.argmax(hist))
    p = hist[hist > 0] / n
    stats.update(min=lo, max=hi, peak=float((edges[i] + edges[i + 1]) / 2),
                 entropy_bits=float(-(p * np.log2(p)).sum()) + 0.0)
    return stats, hist, edges


def gray_statistics(
    volume: Volume,
    mask: LabelMap | None = None,
    *,
    bins: Annotated[int, Range(2, 4096, step=1)] = 256,
    percentiles: Annotated[str, Help("comma-separated percentiles in [0, 100]")] = (
        "1, 5, 25, 50, 75, 95, 99"),
    progress: Progress = NO_PROGRESS,
) -> dict[str, Table]:
    """Gray-level statistics of the whole image or of each segment of ``mask``.

    Per region: voxel count and volume, mean, standard deviation and variance (population,
    ddof = 0), skewness and excess kurtosis (biased estimates, as ``scipy.stats.skew`` and
    ``scipy.stats.kurtosis`` give them), min, max, the mode (the most frequent value; integer
    images only, else empty), the peak (centre of the fullest histogram bin), the requested
    percentiles (NumPy's "linear" method, exact), and the Shannon entropy of the histogram in
    bits. The histogram has ``bins`` equal bins from the region's min to its max, as
    ``numpy.histogram`` makes them.

    Integer-valued images (also float images holding whole numbers) are counted exactly, value
    by value, in one pass; other float images take two passes plus a third that sorts only the
    values around each percentile. Work runs in ~1M-value chunks in threads and checks for
    cancellation before each chunk.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    mask : LabelMap, optional
        Regions on the volume's grid; one row per segment of the label map. Without it the
        whole image is one region (label 0, name "image").
    bins : int
        Number of histogram bins (also used for the peak and the entropy).
    percentiles : str
        Comma-separated percentiles in [0, 100]; each becomes a column ``p<q>``.

    Returns
    -------
    dict
        ``"statistics"``: a Table with one row per region; ``"histogram"``: a Table with one row
        per region and bin (label, name, bin, low, high, count, fraction).

    Raises
    ------
    ValueError
        On an RGB volume, a mask on another grid, bad percentiles, or NaN/inf values.
    """
    _scalar(volume, "gray-level statistics")
    _check_mask(volume, mask)
    if not 2 <= int(bins) <= 1 << 20:
        raise ValueError(f"bins: expected an integer from 2 to 1048576, got {bins}")
    bins = int(bins)
    qs = parse_percentiles(percentiles)
    units = str(volume.metadata.get("Units", "") or "")
    voxel_ml = float(np.prod(volume.spacing) * abs(np.linalg.det(volume.direction))) / 1000.0
    segments = [(0, "image")] if mask is None else [(s.number, s.name) for s in mask.segments]
    keys = ["mean", "std", "variance", "skewness", "kurtosis", "min", "max", "mode", "peak",
            *(f"p{q:g}" for q in qs), "entropy_bits"]
    rows, hist_rows = [], []
    for i, (label, name) in enumerate(segments):
        progress.check()
        # the whole image without a copy, or a 1D copy of the region's values
        values = volume.array if mask is None else volume.array[mask.array == label]
        sub = progress.sub(i / len(segments), (i + 1) / len(segments))
        res = _region_stats(values, bins, qs, sub)
        row = {"label": label, "name": name, "count": int(values.size),
               "volume_ml": values.size * voxel_ml}
        if res is None:
            rows.append({**row, **dict.fromkeys(keys)})
            continue
        stats, hist, edges = res
        rows.append({**row, **{k: stats[k] for k in keys}})
        for b in range(bins):
            hist_rows.append({"label": label, "name": name, "bin": b,
                              "low": float(edges[b]), "high": float(edges[b + 1]),
                              "count": int(hist[b]), "fraction": hist[b] / values.size})
    value_units = {k: units for k in keys if k not in ("skewness", "kurtosis", "entropy_bits")}
    value_units.update(variance=f"{units}²" if units else "", volume_ml="mL",
                       entropy_bits="bits")
    return {
        "statistics": Table(tuple(rows), title="Gray-level statistics", units=value_units),
        "histogram": Table(tuple(hist_rows), title="Gray-level histogram",
                           units={"low": units, "high": units}),
    }


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


def _each_slice(func: Callable[[int], None], n: int, progress: Progress, message: str) -> None:
    """``func(k)`` for every slice index k, in threads, with progress and cancellation."""

    def call(k) -> int:
        func(int(k))
        return 0

    map_slices(call, np.arange(n), np.empty(n, np.int8), progress=progress, message=message)


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

    _scalar(volume, "the Sobel gradient")
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

        _each_slice(grad2d, nz, progress, "Sobel (2D)")
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

    _each_slice(grad3d, nz, progress, "Sobel (3D)")
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
    * spacing * levels / range``). Equivalent
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

    _scalar(volume, "Canny edge detection")
    if sigma_mm < 0:
        raise ValueError(f"sigma_mm: must be >= 0, got {sigma_mm}")
    if low_threshold < 0 or high_threshold < 0:
        raise ValueError(f"low_threshold, high_threshold: must be >= 0, got {low_threshold}, "
                         f"{high_threshold}")
    if low_threshold > high_threshold:
        raise ValueError(f"low_threshold: {low_threshold} is above high_threshold "
                         f"{high_threshold}")
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
            mag = cv2.magnitude(dx.astype(np.float32), dy.astype(np.float32))
            t_lo, t_hi = np.quantile(mag, [low_threshold, high_threshold])
        else:
            per_mm = 8.0 * sx * c  # one unit/mm of gradient in the int16 derivatives
            t_lo, t_hi = low_threshold * per_mm, high_threshold * per_mm
        cv2.Canny(dx, dy, float(t_lo), float(t_hi), edges=out[k], L2gradient=True)
        np.minimum(out[k], 1, out=out[k])  # OpenCV marks edges with 255

    _each_slice(edges, volume.shape[0], progress, "Canny edges")
    return LabelMap.like(volume, out, segments=(Segment(1, "Edges", (255, 225, 25)),))
