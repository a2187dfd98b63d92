"""Segmentation by intensity: thresholds, region growing from seed points, k-means.

Every function takes a scalar :class:`~medview.core.volume.Volume` (physical values: HU for
CT) and returns a :class:`~medview.core.labelmap.LabelMap` on the same grid (uint8, 0 =
background). Per-slice work runs in threads (:func:`~medview.core._shared.parallel.map_slices`),
with progress and cancellation at least per chunk of slices.

The automatic thresholds are scikit-image's (``threshold_otsu``, ``threshold_multiotsu``,
``threshold_li``, ``threshold_triangle``) computed from a histogram that equals
``skimage.exposure.histogram(volume, nbins, source_range="image")`` bin for bin but is built
in threads without copying the volume, so Otsu's threshold is exactly scikit-image's.
Foreground is ``value > threshold`` like scikit-image's examples; multi-Otsu classes are
``np.digitize(value, thresholds)``.

The histogram and the thresholds live in :mod:`medview.core.segmentation.thresholds` and are
re-exported here. Morphological clean-up and connected components live in
:mod:`medview.core.morphology.cleanup`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np

from medview.core._shared.parallel import map_slices
from medview.core.labelmap import LabelMap
from medview.core.params import Points, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.segmentation.thresholds import (
    _in_range,
    _in_range_bounds,
    _label_map,
    _reduce_slices,
    _scalar_array,
    _segments,
    intensity_histogram,
    threshold_li,
    threshold_manual,
    threshold_multiotsu,
    threshold_otsu,
    threshold_triangle,
)
from medview.core.volume import Volume

__all__ = [
    "cluster_kmeans",
    "grow_region",
    "intensity_histogram",
    "threshold_li",
    "threshold_manual",
    "threshold_multiotsu",
    "threshold_otsu",
    "threshold_triangle",
]

_KMEANS_STARTS = 4


# -- region growing --------------------------------------------------------------------
def _seed_indices(volume: Volume, seeds) -> np.ndarray:
    pts = np.asarray(seeds, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"seeds: expected a list of [x, y, z] LPS points in mm, got {seeds!r}")
    idx = np.rint(volume.lps_to_index(pts)).astype(np.int64)  # (n, 3) in x, y, z
    shape_xyz = np.array(volume.shape[::-1])
    outside = np.any((idx < 0) | (idx >= shape_xyz), axis=1)
    if outside.any():
        bad = pts[outside][0].tolist()
        raise ValueError(f"seeds: point {bad} (LPS mm) lies outside the volume "
                         f"(index {idx[outside][0].tolist()}, grid x,y,z {shape_xyz.tolist()})")
    return idx


def grow_region(volume: Volume, *,
                seeds: Annotated[list, Points(min_count=1)],
                criterion: Literal["tolerance", "range"] = "tolerance",
                tolerance: Annotated[float, Range(0.0, None, step=1.0)] = 100.0,
                low: Annotated[float, Range(step=1.0)] = -1000.0,
                high: Annotated[float, Range(step=1.0)] = -400.0,
                full_connectivity: bool = False,
                in_plane_only: bool = False,
                progress: Progress = NO_PROGRESS) -> LabelMap:
    """Grow a region from seed points through connected voxels within an intensity range.

    The range is ``[low, high]`` (``criterion="range"``) or the mean of the seed voxels ±
    ``tolerance`` (``criterion="tolerance"``). Same result as SimpleITK's
    ``ConnectedThreshold`` on the volume; computed as a threaded range test, then the
    connected components of that mask (:class:`~medview.core.morphology.cleanup.Components`) that
    hold a seed; in 2D SimpleITK's flood fill on each seed slice.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x).
    seeds : list of [x, y, z]
        Seed points in LPS mm, each inside the volume (the viewer fills them from clicks).
    criterion : {"tolerance", "range"}
        "tolerance": the seeds' mean ± tolerance; "range": from low to high.
    tolerance : float
        Half-width of the range around the seeds' mean, in the volume's units.
    low : float
        Lowest value inside when criterion is "range".
    high : float
        Highest value inside when criterion is "range".
    full_connectivity : bool
        Grow through edges and corners too (26 neighbours; 8 in a slice), not only faces (6).
    in_plane_only : bool
        Grow only within the slices that hold a seed (2D).

    Returns
    -------
    LabelMap
        uint8, 1 in the region; the range used is in ``metadata["RangeLow"/"RangeHigh"]``.

    Raises
    ------
    ValueError
        If a seed lies outside the volume, ``low`` > ``high``, ``tolerance`` < 0, or no seed
        voxel lies within the range.
    """
    import SimpleITK as sitk

    arr = _scalar_array(volume)
    idx = _seed_indices(volume, seeds)
    seed_values = arr[idx[:, 2], idx[:, 1], idx[:, 0]].astype(np.float64)
    if criterion == "tolerance":
        if not tolerance >= 0:
            raise ValueError(f"tolerance: must be >= 0, got {tolerance}")
        mean = float(seed_values.mean())
        lo, hi = mean - float(tolerance), mean + float(tolerance)
    elif criterion == "range":
        lo, hi = float(low), float(high)
        if not lo <= hi:
            raise ValueError(f"low: {lo:g} is above high {hi:g}; swap them")
    else:
        raise ValueError(f"criterion: expected 'tolerance' or 'range', got {criterion!r}")
    bounds = _in_range_bounds(arr, lo, hi)
    inside = (np.zeros(len(idx), bool) if bounds is None
              else (seed_values >= float(bounds[0])) & (seed_values <= float(bounds[1])))
    if not inside.any():
        raise ValueError(f"seeds: no seed voxel lies within [{lo:g}, {hi:g}] (seed values "
                         f"{', '.join(f'{v:g}' for v in seed_values)}); widen the range")
    mask = _in_range(arr, lo, hi, progress.sub(0.0, 0.3))
    if in_plane_only:
        out = np.zeros(arr.shape, np.uint8)
        conn = (sitk.ConnectedThresholdImageFilter.FullConnectivity if full_connectivity
                else sitk.ConnectedThresholdImageFilter.FaceConnectivity)
        zs = sorted({int(z) for z in idx[inside, 2]})
        for n, z in enumerate(zs):
            progress.check()
            pts = [(int(x), int(y)) for x, y, zz in idx[inside] if zz == z]
            img = sitk.GetImageFromArray(mask[z])
            region = sitk.ConnectedThreshold(img, seedList=pts, lower=1, upper=1,
                                             replaceValue=1, connectivity=conn)
            out[z] = sitk.GetArrayViewFromImage(region)
            progress.update(0.3 + 0.7 * (n + 1) / len(zs), "region growing")
    else:
        # label the in-range mask and keep the components holding a seed: the time does not
        # grow with the region (SimpleITK's flood fill takes 10 s for a body-sized region)
        from medview.core.morphology.cleanup import Components

        comps = Components(mask, full=bool(full_connectivity), progress=progress.sub(0.3, 0.9))
        del mask
        keep = np.zeros(comps.count, np.uint8)
        for x, y, z in idx[inside]:
            keep[comps.component_at((z, y, x))] = 1
        out = comps.paint(keep, np.uint8, progress.sub(0.9, 1.0))
    return _label_map(volume, out, _segments([1], ["Region"]), RangeLow=lo, RangeHigh=hi)


# -- k-means ---------------------------------------------------------------------------
def cluster_kmeans(volume: Volume, *,
                   k: Annotated[int, Range(2, 16)] = 3,
                   seed: Annotated[int, Range(0, 2**31 - 1)] = 0,
                   progress: Progress = NO_PROGRESS) -> LabelMap:
    """Cluster voxel intensities with k-means; labels 0 … k-1 ordered by cluster mean.

    The darkest cluster is label 0 (background), the brightest ``k - 1``; each voxel goes
    to the nearest centre (ties to the darker one). Lloyd's k-means runs on the intensity
    histogram weighted by counts, which for integer volumes (one bin per level) is k-means
    on every voxel, from 4 scikit-learn ``kmeans_plusplus`` starts seeded with ``seed``
    (the lowest inertia wins), to convergence; for float volumes (256 bins) Lloyd's
    iterations then continue on every voxel (threaded passes) until no voxel changes
    cluster, so the centres are a k-means fixed point of the volume itself.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape (z, y, x), finite values.
    k : int
        Number of clusters.
    seed : int
        Random seed of the k-means++ initialisation: same seed, same result.

    Returns
    -------
    LabelMap
        uint8 labels 0 … k-1; cluster means in ``metadata["ClusterMeans"]``.

    Raises
    ------
    ValueError
        If the volume has fewer distinct values than ``k``.
    """
    arr = _scalar_array(volume)
    k = int(k)
    if k < 2:
        raise ValueError(f"k: needs at least 2 clusters, got {k}")
    counts, centers = intensity_histogram(volume, nbins=256, progress=progress.sub(0.0, 0.4))
    occupied = counts > 0
    values = centers[occupied].astype(np.float64)
    weights = counts[occupied].astype(np.float64)
    if values.size < k:
        raise ValueError(f"k: the volume has only {values.size} distinct value(s) "
                         f"(histogram bins), fewer than k={k}")
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.RandomState(int(seed))
    best, best_inertia = None, np.inf
    for _ in range(_KMEANS_STARTS):
        init, _ = kmeans_plusplus(values[:, None], k, sample_weight=weights, random_state=rng)
        means = _lloyd_weighted(values, weights, np.sort(init[:, 0]))
        cls = np.searchsorted((means[:-1] + means[1:]) / 2.0, values, side="left")
        inertia = float(np.dot(weights, (values - means[cls]) ** 2))
        if inertia < best_inertia:
            best, best_inertia = means, inertia
    means = best
    if arr.dtype.kind == "f":
        means = _lloyd_voxels(arr, means, progress.sub(0.4, 0.8))
    bounds = (means[:-1] + means[1:]) / 2.0

    def assign(s: np.ndarray) -> np.ndarray:
        lab = np.greater(s, bounds[0]).view(np.uint8)
        for b in bounds[1:]:
            lab += np.greater(s, b).view(np.uint8)
        return lab

    out = np.empty(arr.shape, np.uint8)
    map_slices(assign, arr, out, progress=progress.sub(0.8, 1.0), message="labelling")
    names = [f"Cluster {i + 1} (mean {m:.6g})" for i, m in enumerate(means[1:], start=1)]
    return _label_map(volume, out, _segments(range(1, k), names),
                      ClusterMeans=[float(m) for m in means], KMeansSeed=int(seed))


def _lloyd_weighted(values, weights, means, max_iter: int = 1000) -> np.ndarray:
    """Lloyd's iterations on weighted 1-D points until the assignment stops changing."""
    prev = None
    for _ in range(max_iter):
        cls = np.searchsorted((means[:-1] + means[1:]) / 2.0, values, side="left")
        if prev is not None and np.array_equal(cls, prev):
            break
        prev = cls
        w = np.bincount(cls, weights=weights, minlength=len(means))
        s = np.bincount(cls, weights=weights * values, minlength=len(means))
        means = np.where(w > 0, s / np.where(w > 0, w, 1), means)
        means = np.sort(means)
    return means


def _lloyd_voxels(arr: np.ndarray, means: np.ndarray, progress: Progress,
                  max_iter: int = 50) -> np.ndarray:
    """Lloyd's iterations over every voxel (1-D, sorted means) until no voxel moves."""
    import cv2

    k = len(means)
    total = _reduce_slices(lambda s: np.array([s.size, np.sum(s, dtype=np.float64)]), arr,
                           progress.sub(0.0, 0.1), "k-means")
    prev = None
    for it in range(max_iter):
        bounds = [float(b) for b in (means[:-1] + means[1:]) / 2.0]

        def below(s: np.ndarray, bounds=bounds) -> np.ndarray:
            # count and sum of the values <= each boundary (ties go to the darker cluster)
            r = np.empty((k - 1, 2))
            for j, b in enumerate(bounds):
                r[j, 0] = cv2.countNonZero(cv2.compare(s, b, cv2.CMP_LE))
                r[j, 1] = cv2.sumElems(cv2.threshold(s, b, 0, cv2.THRESH_TOZERO_INV)[1])[0]
            return r

        step = progress.sub(0.1 + 0.09 * min(it, 9), 0.19 + 0.09 * min(it, 9))
        cum = np.vstack([_reduce_slices(below, arr, step, "k-means"), total])
        if prev is not None and np.array_equal(cum[:, 0], prev):
            break
        prev = cum[:, 0].copy()
        cnt = np.diff(cum[:, 0], prepend=0.0)
        tot = np.diff(cum[:, 1], prepend=0.0)
        means = np.sort(np.where(cnt > 0, tot / np.where(cnt > 0, cnt, 1), means))
    return means
