"""Connected components: labelling, keeping the largest component, per-component table.

Split out of :mod:`medview.core.morphology.cleanup`, which re-exports every public name here; the
label-map input/output helpers shared by all clean-up operations live here too.

OpenCV's 2D labelling per slice is stitched across slices with a sparse graph (2–3× faster
than ``ndimage.label`` on a volume). Results equal SciPy's / scikit-image's / SimpleITK's on
the same connectivity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np

from medview.core._shared.checks import check_labels
from medview.core._shared.parallel import map_slices, worker_count
from medview.core.labelmap import LabelMap, Segment, default_segments
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.table import Table

__all__ = [
    "Components",
    "keep_largest_component",
    "label_components",
]

_MAX_LABELS = 255  # label=0 cleans each label on its own: beyond this, ask for one label
# Components: above this many 2D pieces per pixel of a slice (noise; 512 on a 512² slice),
# SciPy's 3D labelling on chunks of _CHUNK_SLICES slices beats stitching OpenCV's per-slice
# labels (2x on a raw CT threshold)
_SPECKLE_PIECES_PER_PIXEL = 1 / 512
_CHUNK_SLICES = 32


# -- inputs and outputs ----------------------------------------------------------------
def _check_labels(labels: LabelMap, label: int) -> np.ndarray:
    check_labels(labels)
    label = int(label)
    if label < 0:
        raise ValueError(f"label: must be >= 0 (0 = every label), got {label}")
    return labels.array


def _present_labels(arr: np.ndarray, progress: Progress) -> list[int]:
    """Non-zero label values present, without sorting the volume."""
    if arr.dtype.kind == "i":
        lo = int(arr.min())
        if lo < 0:
            raise ValueError(f"labels: label values must be >= 0, found {lo}")
    top = int(arr.max())
    if top <= 1:  # empty or binary: max tells
        return [top] if top else []
    if top > 1 << 24:
        return [int(v) for v in np.unique(arr) if v > 0]
    counts = np.zeros(top + 1, np.int64)
    for z in range(arr.shape[0]):
        progress.check()
        counts += np.bincount(arr[z].ravel(), minlength=top + 1)
    return [int(v) for v in np.flatnonzero(counts[1:]) + 1]


def _targets(arr: np.ndarray, label: int, progress: Progress) -> tuple[list[int], bool]:
    """(labels to clean, whether the map is binary: that one label and background)."""
    present = _present_labels(arr, progress)
    if label:
        return [int(label)], present == [int(label)]
    if len(present) > _MAX_LABELS:
        raise ValueError(f"label: the map holds {len(present)} labels and label=0 cleans each "
                         f"on its own; choose one with label=N or merge them first")
    return present, len(present) == 1


def _mask_of(arr: np.ndarray, k: int, binary: bool, progress: Progress) -> np.ndarray:
    if binary and arr.dtype == np.uint8 and k == 1:
        return arr  # a 0/1 map is its own mask
    out = np.empty(arr.shape, np.uint8)
    if binary:
        map_slices(lambda s: np.not_equal(s, 0).view(np.uint8), arr, out, progress=progress)
    else:
        map_slices(lambda s: np.equal(s, k).view(np.uint8), arr, out, progress=progress)
    return out


def _clean(labels: LabelMap, label: int, op: Callable[[np.ndarray, Progress], np.ndarray],
           progress: Progress, **metadata) -> LabelMap:
    """Run the binary ``op`` on each target label's mask and merge the results."""
    arr = _check_labels(labels, label)
    targets, binary = _targets(arr, label, progress.sub(0.0, 0.05))
    if not targets:
        return LabelMap.like(labels, arr.copy(), segments=labels.segments, **metadata)
    if binary:
        (k,) = targets
        result = op(_mask_of(arr, k, True, progress.sub(0.05, 0.1)), progress.sub(0.1, 1.0))
        if k != 1:
            result = result.astype(arr.dtype, copy=False)
            result *= arr.dtype.type(k)
        return LabelMap.like(labels, result.astype(arr.dtype, copy=False),
                             segments=labels.segments, **metadata)
    out = arr.copy()
    span = 0.95 / len(targets)
    for n, k in enumerate(targets):
        p = progress.sub(0.05 + n * span, 0.05 + (n + 1) * span)
        mask = _mask_of(arr, k, False, p.sub(0.0, 0.1))
        result = op(mask, p.sub(0.1, 0.9))
        value = arr.dtype.type(k)

        def merge(z: np.ndarray, mask=mask, result=result, value=value) -> np.ndarray:
            i = int(z)
            o, m, r = out[i], mask[i], result[i]
            o[(m != 0) & (r == 0)] = 0  # removed
            o[(r != 0) & (arr[i] == 0) & (o == 0)] = value  # added, on background only
            return o

        map_slices(merge, np.arange(arr.shape[0]), out, progress=p.sub(0.9, 1.0))
    return LabelMap.like(labels, out, segments=labels.segments, **metadata)


# -- connected components ---------------------------------------------------------------
class Components:
    """3D connected components of a 0/1 uint8 volume, labelled in pieces and stitched in z.

    Every slice is labelled in 2D with OpenCV (4- or 8-connected, raster order) — or, for
    noisy masks with hundreds of pieces per slice, chunks of slices with
    ``scipy.ndimage.label`` — and the pieces that touch across neighbouring slices are joined
    with one sparse-graph connected-components pass. Components are numbered ``0 … count-1``
    in raster order of their first voxel (``ndimage.label``'s order, minus one). Holds one
    int32 volume.

    Parameters
    ----------
    mask : ndarray of uint8, shape (z, y, x)
        Foreground where non-zero.
    full : bool
        26-connected (faces, edges, corners) instead of 6-connected (faces).
    progress : Progress
        Checked for cancellation every few slices.
    """

    def __init__(self, mask: np.ndarray, *, full: bool, progress: Progress):
        from concurrent.futures import ThreadPoolExecutor

        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        nz = mask.shape[0]
        self.full = full
        self.labels = np.empty(mask.shape, np.int32)
        if self._speckled(mask):
            self.bounds = [(z, min(nz, z + _CHUNK_SLICES)) for z in range(0, nz, _CHUNK_SLICES)]
            counts = self._label_chunks(mask, progress.sub(0.0, 0.8))
        else:
            self.bounds = [(z, z + 1) for z in range(nz)]
            counts = self._label_slices(mask, progress.sub(0.0, 0.6))
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nodes = int(self.offsets[-1])
        joins = [i for i in range(1, len(self.bounds)) if counts[i - 1] and counts[i]]

        def stitch(i: int) -> tuple[np.ndarray, np.ndarray]:
            progress.check()
            z = self.bounds[i][0]
            a, b = self._touching(self.labels[z - 1], self.labels[z])
            return a - 1 + self.offsets[i - 1], b - 1 + self.offsets[i]

        with ThreadPoolExecutor(worker_count()) as pool:
            edges = list(pool.map(stitch, joins))
        progress.update(0.95, "labelling")
        if edges and sum(len(u) for u, _ in edges):
            u = np.concatenate([e[0] for e in edges])
            v = np.concatenate([e[1] for e in edges])
            graph = coo_matrix((np.ones(u.size, np.int8), (u, v)), shape=(nodes, nodes))
            self.count, self.node_comp = connected_components(graph, directed=False)
        else:
            self.count, self.node_comp = nodes, np.arange(nodes)
        progress.update(1.0, "labelling")

    def _speckled(self, mask: np.ndarray) -> bool:
        """Many small 2D pieces per slice (noise): stitching them costs more than SciPy's 3D."""
        import cv2

        nz = mask.shape[0]
        picks = sorted({nz // 4, nz // 2, (3 * nz) // 4})
        pieces = [cv2.connectedComponents(mask[z], connectivity=8 if self.full else 4)[0]
                  for z in picks]
        return float(np.mean(pieces)) > _SPECKLE_PIECES_PER_PIXEL * mask[0].size

    def _label_slices(self, mask: np.ndarray, progress: Progress) -> np.ndarray:
        import cv2

        nz = mask.shape[0]
        counts = np.zeros(nz, np.int64)
        for z in range(nz):  # OpenCV labels one slice on all cores itself
            if z % 8 == 0:
                progress.check()
                progress.update(z / nz, "labelling")
            # no statistics: OpenCV's stats pass costs 3x the labelling
            counts[z] = cv2.connectedComponentsWithAlgorithm(
                mask[z], 8 if self.full else 4, cv2.CV_32S, cv2.CCL_WU,
                labels=self.labels[z])[0] - 1
        return counts

    def _label_chunks(self, mask: np.ndarray, progress: Progress) -> np.ndarray:
        import scipy.ndimage as ndi

        structure = ndi.generate_binary_structure(3, 3 if self.full else 1)
        counts = np.zeros(len(self.bounds), np.int64)
        for i, (z0, z1) in enumerate(self.bounds):
            progress.check()
            counts[i] = ndi.label(mask[z0:z1], structure, output=self.labels[z0:z1])
            progress.update((i + 1) / len(self.bounds), "labelling")
        return counts

    def _touching(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (label in a, label in b) pairs of neighbouring voxels across two slices."""
        ny, nx = a.shape
        shifts = [(0, 0)] if not self.full else [(dy, dx) for dy in (-1, 0, 1)
                                                  for dx in (-1, 0, 1)]
        codes = []
        for dy, dx in shifts:
            ya = slice(max(0, -dy), ny - max(0, dy))
            yb = slice(max(0, dy), ny - max(0, -dy))
            xa = slice(max(0, -dx), nx - max(0, dx))
            xb = slice(max(0, dx), nx - max(0, -dx))
            sa, sb = a[ya, xa], b[yb, xb]
            both = (sa > 0) & (sb > 0)
            la, lb = sa[both], sb[both]
            if la.size == 0:
                continue
            # pairs repeat along runs of a row: keep each run's first pixel only
            start = np.empty(la.size, bool)
            start[0] = True
            np.not_equal(la[1:], la[:-1], out=start[1:])
            start[1:] |= lb[1:] != lb[:-1]
            codes.append((la[start].astype(np.int64) << 32) | lb[start])
        if not codes:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        c = np.unique(np.concatenate(codes))
        return c >> 32, c & 0xFFFFFFFF

    def _chunk_lut(self, i: int, per_comp: np.ndarray, background) -> np.ndarray:
        o0, o1 = self.offsets[i], self.offsets[i + 1]
        lut = np.empty(int(o1 - o0) + 1, per_comp.dtype)
        lut[0] = background
        lut[1:] = per_comp[self.node_comp[o0:o1]]
        return lut

    def component_at(self, index_zyx) -> int:
        """Component number (0 … count-1) at a voxel ``(z, y, x)``, or -1 on background."""
        z, y, x = (int(i) for i in index_zyx)
        lab = int(self.labels[z, y, x])
        if lab == 0:
            return -1
        chunk = next(i for i, (z0, z1) in enumerate(self.bounds) if z0 <= z < z1)
        return int(self.node_comp[self.offsets[chunk] + lab - 1])

    def sizes(self) -> np.ndarray:
        """Voxel count per component, shape (count,)."""
        areas = np.zeros(int(self.offsets[-1]), np.int64)
        for i, (z0, z1) in enumerate(self.bounds):
            o0, o1 = int(self.offsets[i]), int(self.offsets[i + 1])
            if o1 > o0:
                areas[o0:o1] = np.bincount(self.labels[z0:z1].ravel(),
                                           minlength=o1 - o0 + 1)[1:]
        return np.bincount(self.node_comp, weights=areas, minlength=self.count).astype(np.int64)

    def paint(self, per_comp: np.ndarray, dtype, progress: Progress) -> np.ndarray:
        """A volume with ``per_comp[c]`` on every voxel of component c, 0 elsewhere."""
        per_comp = np.asarray(per_comp).astype(dtype, copy=False)
        luts = [self._chunk_lut(i, per_comp, 0) for i in range(len(self.bounds))]
        chunk_of = np.repeat(np.arange(len(self.bounds)),
                             [z1 - z0 for z0, z1 in self.bounds])
        out = np.empty(self.labels.shape, dtype)
        map_slices(lambda z: luts[chunk_of[int(z)]][self.labels[int(z)]],
                   np.arange(self.labels.shape[0]), out, progress=progress, message="painting")
        return out


def _largest_3d(mask: np.ndarray, full: bool, progress: Progress) -> np.ndarray:
    comps = Components(mask, full=full, progress=progress.sub(0.0, 0.7))
    if comps.count == 0:
        return np.zeros(mask.shape, np.uint8)
    sizes = comps.sizes()
    keep = np.zeros(comps.count, np.uint8)
    keep[int(np.argmax(sizes))] = 1  # ties: the first in raster order
    return comps.paint(keep, np.uint8, progress.sub(0.8, 1.0))


def _largest_2d(mask: np.ndarray, full: bool, progress: Progress) -> np.ndarray:
    import cv2

    def one(s: np.ndarray) -> np.ndarray:
        n, lab, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
            s, 8 if full else 4, cv2.CV_32S, cv2.CCL_WU)
        if n <= 1:
            return np.zeros(s.shape, np.uint8)
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        return np.equal(lab, best).view(np.uint8)

    out = np.empty(mask.shape, np.uint8)
    map_slices(one, mask, out, progress=progress, message="largest component")
    return out


def keep_largest_component(labels: LabelMap, *,
                           label: Annotated[int, Range(0, 65535)] = 0,
                           full_connectivity: bool = False,
                           in_plane_only: bool = False,
                           progress: Progress = NO_PROGRESS) -> LabelMap:
    """Keep only the largest connected component (of each label); the rest becomes background.

    Parameters
    ----------
    labels : LabelMap
        Labels to clean, shape (z, y, x).
    label : int
        Label to clean; 0 = every label, each on its own.
    full_connectivity : bool
        Connect through edges and corners too (26 neighbours; 8 in a slice), not only faces.
        Faces only means 6 neighbours (4 in a slice).
    in_plane_only : bool
        Keep the largest component of each slice (2D).

    Returns
    -------
    LabelMap
        Same dtype, grid and segments. Of equal-sized components the first in raster order
        (z, y, x) is kept.
    """
    fn = _largest_2d if in_plane_only else _largest_3d
    return _clean(labels, label, lambda m, p: fn(m, bool(full_connectivity), p), progress)


def label_components(labels: LabelMap, *,
                     label: Annotated[int, Range(0, 65535)] = 0,
                     full_connectivity: bool = False,
                     min_volume_ml: Annotated[float, Range(0.0, None, step=0.1,
                                                           unit="mL")] = 0.0,
                     progress: Progress = NO_PROGRESS) -> dict[str, LabelMap | Table]:
    """Connected components, numbered by size, with each one's volume in millilitres.

    Parameters
    ----------
    labels : LabelMap
        Input labels, shape (z, y, x).
    label : int
        Which voxels are foreground: 0 = every non-zero label together, N = label N only.
    full_connectivity : bool
        Connect through edges and corners too (26 neighbours), not only faces (6).
    min_volume_ml : float
        Drop components smaller than this (they become background).

    Returns
    -------
    dict
        ``"labels"``: LabelMap with components 1 … n, largest first (ties in raster order of
        first voxel), uint8/uint16/int32 as the count needs. ``"table"``: one row per
        component, largest first: ``label``, ``voxels`` and ``volume_ml`` (voxels ×
        ``LabelMap.voxel_volume_ml``).
    """
    arr = _check_labels(labels, label)
    min_volume_ml = float(min_volume_ml)
    if not min_volume_ml >= 0:
        raise ValueError(f"min_volume_ml: must be >= 0, got {min_volume_ml}")
    label = int(label)
    mask = np.empty(arr.shape, np.uint8)
    test = (lambda s: np.equal(s, label)) if label else (lambda s: np.not_equal(s, 0))
    map_slices(lambda s: test(s).view(np.uint8), arr, mask, progress=progress.sub(0.0, 0.1))
    comps = Components(mask, full=bool(full_connectivity), progress=progress.sub(0.1, 0.7))
    del mask
    voxels = comps.sizes()
    progress.update(0.8, "measuring")
    vml = labels.voxel_volume_ml
    order = np.argsort(-voxels, kind="stable")
    order = order[voxels[order] * vml >= min_volume_ml] if min_volume_ml > 0 else order
    n = len(order)
    dtype = np.uint8 if n <= 0xFF else np.uint16 if n <= 0xFFFF else np.int32
    new_id = np.zeros(comps.count, dtype)
    new_id[order] = np.arange(1, n + 1)
    out = comps.paint(new_id, dtype, progress.sub(0.8, 1.0))
    vols = voxels[order] * vml
    table = Table.from_columns(
        {"label": list(range(1, n + 1)), "voxels": voxels[order].tolist(),
         "volume_ml": vols.tolist()},
        title="Connected components", units={"volume_ml": "mL"})
    palette = [s.color for s in default_segments(range(1, 16))]
    segments = tuple(Segment(i, f"Component {i}", palette[(i - 1) % len(palette)])
                     for i in range(1, n + 1)) or (Segment(1, "Component 1 (none found)"),)
    lm = LabelMap.like(labels, out, segments=segments, ComponentCount=n)
    return {"labels": lm, "table": table}
