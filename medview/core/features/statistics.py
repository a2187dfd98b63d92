"""Gray-level statistics of a volume, optionally per label of a mask (tables).

Split out of :mod:`medview.core.features.edges`, which re-exports every public name here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated

import numpy as np

from medview.core._shared.checks import check_mask, check_scalar
from medview.core._shared.parallel import map_slices
from medview.core.labelmap import LabelMap
from medview.core.params import Help, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["gray_statistics", "parse_percentiles"]

_CHUNK = 1 << 20  # values per work item of the statistics passes
_EXACT_RANGE = 1 << 20  # integer images spanning at most this many values are counted exactly
_FINE_BINS = 1 << 16  # bins of the histogram that locates percentiles in float images


# -- helpers ------------------------------------------------------------------------------
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
    percentiles: Annotated[list[float], Range(0.0, 100.0),
                           Help("percentiles to report, each in [0, 100]")] = (
        1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0),
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
    percentiles : sequence of float
        Percentiles in [0, 100] (a comma-separated string is accepted too); each becomes a
        column ``p<q>``.

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
    check_scalar(volume, "gray-level statistics")
    check_mask(volume, mask)
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
