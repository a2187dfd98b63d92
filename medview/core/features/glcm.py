"""Gray-level co-occurrence (GLCM) texture measures of a volume or of the voxels under a mask
(table); voxel pairs are counted in-plane (2D) or also across slices (3D).

Split out of :mod:`medview.core.features.texture`, which re-exports every public name here.
"""

from __future__ import annotations

import threading
from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import check_mask, check_positive, check_scalar, each_slice
from medview.core._shared.parallel import map_slices
from medview.core.features.edges import _Scratch
from medview.core.labelmap import LabelMap
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["GLCM_MEASURES", "glcm_texture"]


# -- gray-level co-occurrence ----------------------------------------------------------------
_IN_PLANE = ((0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 1, -1))  # skimage's 0, 45, 90, 135 degrees
_ALL_13 = _IN_PLANE + tuple((1, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
GLCM_MEASURES = ("contrast", "dissimilarity", "homogeneity", "asm", "energy", "correlation")


def _glcm_measures(counts: np.ndarray) -> dict[str, float]:
    """skimage.feature.graycoprops' measures of one symmetric, normalised co-occurrence matrix."""
    p = counts / counts.sum()
    levels = p.shape[0]
    i, j = np.ogrid[:levels, :levels]
    diff2 = (i - j) ** 2.0
    mu_i, mu_j = float((i * p).sum()), float((j * p).sum())
    sd_i = float(np.sqrt((p * (i - mu_i) ** 2).sum()))
    sd_j = float(np.sqrt((p * (j - mu_j) ** 2).sum()))
    asm = float((p**2).sum())
    if sd_i * sd_j < 1e-15:
        correlation = 1.0  # constant region: skimage's convention
    else:
        correlation = float((p * (i - mu_i) * (j - mu_j)).sum() / (sd_i * sd_j))
    return {"contrast": float((p * diff2).sum()),
            "dissimilarity": float((p * np.sqrt(diff2)).sum()),
            "homogeneity": float((p / (1.0 + diff2)).sum()), "asm": asm,
            "energy": float(np.sqrt(asm)), "correlation": correlation}


def _pair_windows(n: int, step: int) -> tuple[slice, slice]:
    """Index ranges of the first and second voxel of the pairs at ``step`` along one axis."""
    if step >= 0:
        return slice(0, max(n - step, 0)), slice(step, n)
    return slice(-step, n), slice(0, max(n + step, 0))


def _cooccurrence(q: np.ndarray, inside: np.ndarray | None, offset: tuple[int, int, int],
                  levels: int, progress: Progress) -> np.ndarray:
    """Co-occurrence counts (levels, levels) of quantised ``q`` at ``offset`` (z, y, x)."""
    import cv2

    oz, oy, ox = offset
    nz, ny, nx = q.shape
    ya, yb = _pair_windows(ny, oy)
    xa, xb = _pair_windows(nx, ox)
    total = np.zeros((levels, levels), np.float64)
    if nz - oz <= 0 or ya.stop <= ya.start or xa.stop <= xa.start:
        return total
    lock = threading.Lock()

    def count(k) -> int:
        k = int(k)
        a, b = q[k, ya, xa], q[k + oz, yb, xb]
        m = None
        if inside is not None:
            m = cv2.bitwise_and(inside[k, ya, xa], inside[k + oz, yb, xb])
        h = cv2.calcHist([a, b], [0, 1], m, [levels, levels], [0, levels, 0, levels])
        with lock:
            total[...] += h
        return 0

    map_slices(count, np.arange(nz - oz), np.empty(nz - oz, np.int8), progress=progress,
               message="co-occurrence")
    return total


def _quantise(values: np.ndarray, lo: float, hi: float, levels: int,
              progress: Progress) -> np.ndarray:
    """uint8 levels ``floor((v - lo) * (levels / (hi - lo)))`` clipped to [0, levels - 1]."""
    scale = levels / (hi - lo) if hi > lo else 0.0
    q = np.empty(values.shape, np.uint8)
    scratch = _Scratch()

    def one(k: int) -> None:
        f = scratch.get("f", values.shape[1:], np.float64)
        np.subtract(values[k], lo, out=f)
        np.multiply(f, scale, out=f)
        np.clip(f, 0, levels - 1, out=f)
        q[k] = f  # truncation of values >= 0: the floor

    each_slice(one, values.shape[0], progress, "GLCM: quantise")
    return q


def glcm_texture(
    volume: Volume,
    mask: LabelMap | None = None,
    *,
    levels: Annotated[int, Range(2, 256, step=1)] = 32,
    distance_mm: Annotated[float, Range(0.1, 100.0, step=0.1, unit="mm")] = 1.0,
    mode: Literal["2d", "3d"] = "2d",
    value_min: float | None = None,
    value_max: float | None = None,
    progress: Progress = NO_PROGRESS,
) -> Table:
    """GLCM texture measures of the whole image or of each segment of ``mask``.

    The region's values are quantised into ``levels`` equal bins from ``value_min`` to
    ``value_max`` (default: the region's min and max; values outside go to the end bins):
    ``floor((v - min) * (levels / (max - min)))`` in float64, the maximum in the last bin.
    Pairs of voxels at one step along a direction are counted, both voxels in the region,
    symmetrically (the pair (i, j) also counts as (j, i)). The step is
    ``max(1, round(distance_mm / spacing))`` voxels along each axis the direction moves on.
    "2d": the 4 in-plane directions of scikit-image's angles 0, 45, 90 and 135°, pairs counted
    within each slice and summed over slices; "3d": the 13 directions of a 26-neighbourhood.
    Each measure (as ``skimage.feature.graycoprops`` defines it) is computed per direction on
    the normalised matrix and averaged over the directions that have pairs.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    mask : LabelMap, optional
        Regions on the volume's grid; one row per segment. Without it the whole image.
    levels : int
        Number of gray levels after quantisation.
    distance_mm : float
        Distance between the voxels of a pair, in mm.
    mode : {"2d", "3d"}
        In-plane directions only, or all 13 directions.
    value_min : float, optional
        Lower end of the quantisation range (same for every region); default the region's min.
    value_max : float, optional
        Upper end of the quantisation range; default the region's max.

    Returns
    -------
    Table
        One row per region: label, name, count, levels, value_min, value_max, directions, and
        contrast, dissimilarity, homogeneity, asm, energy, correlation.

    Raises
    ------
    ValueError
        On an RGB volume, a mask on another grid, ``levels`` outside 2…256, a non-positive
        distance, or ``value_min >= value_max``.
    """
    import scipy.ndimage as ndi

    check_scalar(volume, "GLCM texture")
    check_mask(volume, mask)
    if not 2 <= levels <= 256:
        raise ValueError(f"levels: expected 2 to 256, got {levels}")
    distance_mm = check_positive("distance_mm", distance_mm)
    if mode not in ("2d", "3d"):
        raise ValueError(f"mode: expected '2d' or '3d', got {mode!r}")
    if value_min is not None and value_max is not None and not value_min < value_max:
        raise ValueError(f"value_min: {value_min} must be below value_max {value_max}")
    sx, sy, sz = volume.spacing
    steps = [max(1, round(distance_mm / s)) for s in (sz, sy, sx)]
    directions = _IN_PLANE if mode == "2d" else _ALL_13
    offsets = [tuple(d * s for d, s in zip(direction, steps, strict=True))
               for direction in directions]
    arr = volume.array
    if mask is None:
        regions = [(0, "image", (slice(None),) * 3)]
    else:
        boxes = ndi.find_objects(mask.array)
        regions = [(s.number, s.name, boxes[s.number - 1] if s.number <= len(boxes) else None)
                   for s in mask.segments]
    rows = []
    for r, (label, name, box) in enumerate(regions):
        sub = progress.sub(r / len(regions), (r + 1) / len(regions))
        row = {"label": label, "name": name, "count": 0, "levels": levels,
               "value_min": None, "value_max": None, "directions": 0,
               **dict.fromkeys(GLCM_MEASURES)}
        rows.append(row)
        if box is None:
            continue
        values = arr[box]
        inside = None if mask is None else (mask.array[box] == label).view(np.uint8)
        picked = values if inside is None else values[inside.view(bool)]
        row["count"] = int(picked.size)
        if not picked.size:
            continue
        lo = float(picked.min()) if value_min is None else float(value_min)
        hi = float(picked.max()) if value_max is None else float(value_max)
        row.update(value_min=lo, value_max=hi)
        q = _quantise(values, lo, hi, levels, sub.sub(0.0, 0.2))
        per_direction = []
        for d, offset in enumerate(offsets):
            part = sub.sub(0.2 + 0.8 * d / len(offsets), 0.2 + 0.8 * (d + 1) / len(offsets))
            counts = _cooccurrence(q, inside, offset, levels, part)
            if counts.sum() > 0:
                per_direction.append(_glcm_measures(counts + counts.T))
        row["directions"] = len(per_direction)
        for key in GLCM_MEASURES if per_direction else ():
            row[key] = float(np.mean([m[key] for m in per_direction]))
    progress.update(1.0, "GLCM done")
    return Table(tuple(rows), title=f"GLCM texture ({mode}, {levels} levels, "
                                    f"{distance_mm:g} mm)",
                 units={"value_min": str(volume.metadata.get("Units") or ""),
                        "value_max": str(volume.metadata.get("Units") or "")})
