"""Label-map clean-up: opening/closing, hole filling, largest component, connected components.

Every function takes a :class:`~medview.core.labelmap.LabelMap` and returns one on the same
grid. Sizes are in millimetres and honour the voxel spacing: a radius of 2 mm is an ellipsoid
of ``2 / spacing`` voxels along each axis.

Which voxels are cleaned (``label``): 0 means every label present, each on its own (a binary
mask is the common case: one label); a number means only that label. Voxels an operation
removes become background; voxels it adds (closing, filled holes) take the label being
cleaned, but only where the input was background, so no label ever takes over another's
voxels.

Backends, chosen for speed on the 2-core workstations: per-slice OpenCV morphology in threads
(an ellipsoid is the union of its slices, so a 3D dilation is the maximum over neighbouring
slices of 2D dilations), OpenCV flood fill for holes, and SciPy's labelling run on chunks of
slices and stitched across the chunk borders (faster than one ``ndimage.label`` call on a
whole volume). Results equal SciPy's / scikit-image's on the same footprint and connectivity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np

from medview.core.labelmap import LabelMap, Segment, default_segments
from medview.core.parallel import map_slices
from medview.core.params import Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.table import Table

__all__ = [
    "close_labels",
    "ellipsoid_footprint",
    "fill_holes",
    "keep_largest_component",
    "label_components",
    "open_labels",
]

_MAX_LABELS = 255  # label=0 cleans each label on its own: beyond this, ask for one label
_CHUNK_SLICES = 32  # slices per ndimage.label call (see the module docstring)


# -- inputs and outputs ----------------------------------------------------------------
def _check_labels(labels: LabelMap, label: int) -> np.ndarray:
    if not isinstance(labels, LabelMap):
        raise TypeError(f"labels: expected a LabelMap, got {type(labels).__name__}")
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


# -- structuring element and per-slice morphology ---------------------------------------
def ellipsoid_footprint(radius_mm: float, spacing_xyz, *,
                        in_plane_only: bool = False) -> np.ndarray:
    """Voxel offsets within ``radius_mm`` of the centre, honouring the spacing.

    Parameters
    ----------
    radius_mm : float
        Radius in millimetres (>= 0).
    spacing_xyz : sequence of 3 floats
        Voxel size along x, y, z in mm.
    in_plane_only : bool
        A single-slice (2D) ellipse.

    Returns
    -------
    ndarray of bool, shape (2rz+1, 2ry+1, 2rx+1)
        True where ``(dx·sx)² + (dy·sy)² + (dz·sz)² <= radius²``; ``r = floor(radius /
        spacing)`` per axis (0 along z with ``in_plane_only``). Symmetric about its centre.
    """
    radius_mm = float(radius_mm)
    if not radius_mm >= 0:
        raise ValueError(f"radius_mm: must be >= 0, got {radius_mm}")
    sx, sy, sz = (float(s) for s in spacing_xyz)
    rx, ry = int(radius_mm // sx), int(radius_mm // sy)
    rz = 0 if in_plane_only else int(radius_mm // sz)
    dz, dy, dx = np.ogrid[-rz:rz + 1, -ry:ry + 1, -rx:rx + 1]
    # a hair of slack so that radius = k * spacing includes the k-th voxel despite rounding
    return (dx * sx) ** 2 + (dy * sy) ** 2 + (dz * sz) ** 2 <= radius_mm**2 * (1 + 1e-9)


def _morph(mask: np.ndarray, footprint: np.ndarray, op: str, progress: Progress) -> np.ndarray:
    """Binary 3D dilation or erosion of a 0/1 uint8 volume by a symmetric footprint.

    Outside the volume counts as background for dilation and foreground for erosion, so the
    border neither grows nor eats objects (scikit-image's ``mode="ignore"``).
    """
    import cv2

    nz = mask.shape[0]
    rz = footprint.shape[0] // 2
    kernels = []
    for dz in range(-rz, rz + 1):
        k2 = footprint[dz + rz]
        rows, cols = np.flatnonzero(k2.any(axis=1)), np.flatnonzero(k2.any(axis=0))
        ry = max(abs(rows[0] - k2.shape[0] // 2), abs(rows[-1] - k2.shape[0] // 2))
        rx = max(abs(cols[0] - k2.shape[1] // 2), abs(cols[-1] - k2.shape[1] // 2))
        cy, cx = k2.shape[0] // 2, k2.shape[1] // 2
        kernels.append((dz, np.ascontiguousarray(k2[cy - ry:cy + ry + 1,
                                                    cx - rx:cx + rx + 1]).astype(np.uint8)))
    nonempty = np.array([cv2.countNonZero(mask[z]) > 0 for z in range(nz)])
    dilate = op == "dilate"

    def one(z: np.ndarray) -> np.ndarray:
        z = int(z)
        acc = None
        for dz, k in kernels:
            zz = z + dz
            if not 0 <= zz < nz:
                continue  # outside: ignored either way
            if dilate:
                if not nonempty[zz]:
                    continue
                r = cv2.dilate(mask[zz], k)
                acc = r if acc is None else cv2.max(acc, r, dst=acc)
            else:
                if not nonempty[zz]:
                    return np.zeros(mask.shape[1:], np.uint8)
                r = cv2.erode(mask[zz], k)
                acc = r if acc is None else cv2.min(acc, r, dst=acc)
        return np.zeros(mask.shape[1:], np.uint8) if acc is None else acc

    out = np.empty(mask.shape, np.uint8)
    map_slices(one, np.arange(nz), out, progress=progress, message=op)
    return out


def _binary_open(mask, footprint, progress):
    eroded = _morph(mask, footprint, "erode", progress.sub(0.0, 0.5))
    return _morph(eroded, footprint, "dilate", progress.sub(0.5, 1.0))


def _binary_close(mask, footprint, progress):
    dilated = _morph(mask, footprint, "dilate", progress.sub(0.0, 0.5))
    return _morph(dilated, footprint, "erode", progress.sub(0.5, 1.0))


def open_labels(labels: LabelMap, *,
                radius_mm: Annotated[float, Range(0.0, 50.0, step=0.5, unit="mm")] = 2.0,
                label: Annotated[int, Range(0, 65535)] = 0,
                in_plane_only: bool = False,
                progress: Progress = NO_PROGRESS) -> LabelMap:
    """Morphological opening: remove specks and thin bridges narrower than the ellipsoid.

    Erosion then dilation by :func:`ellipsoid_footprint` (``radius_mm``, honouring the
    spacing). Equal to ``skimage.morphology.binary_opening(mask, footprint)``.

    Parameters
    ----------
    labels : LabelMap
        Labels to clean, shape (z, y, x).
    radius_mm : float
        Radius of the ellipsoidal structuring element in mm.
    label : int
        Label to clean; 0 = every label, each on its own.
    in_plane_only : bool
        Open each slice on its own with a 2D ellipse.

    Returns
    -------
    LabelMap
        Same dtype, grid and segments.
    """
    fp = ellipsoid_footprint(radius_mm, labels.spacing, in_plane_only=in_plane_only)
    return _clean(labels, label, lambda m, p: _binary_open(m, fp, p), progress)


def close_labels(labels: LabelMap, *,
                 radius_mm: Annotated[float, Range(0.0, 50.0, step=0.5, unit="mm")] = 2.0,
                 label: Annotated[int, Range(0, 65535)] = 0,
                 in_plane_only: bool = False,
                 progress: Progress = NO_PROGRESS) -> LabelMap:
    """Morphological closing: bridge gaps and fill dents narrower than the ellipsoid.

    Dilation then erosion by :func:`ellipsoid_footprint`; objects at the border of the
    volume are not eaten (scikit-image's ``binary_closing``, SimpleITK's safe border).

    Parameters
    ----------
    labels : LabelMap
        Labels to clean, shape (z, y, x).
    radius_mm : float
        Radius of the ellipsoidal structuring element in mm.
    label : int
        Label to clean; 0 = every label, each on its own.
    in_plane_only : bool
        Close each slice on its own with a 2D ellipse.

    Returns
    -------
    LabelMap
        Same dtype, grid and segments.
    """
    fp = ellipsoid_footprint(radius_mm, labels.spacing, in_plane_only=in_plane_only)
    return _clean(labels, label, lambda m, p: _binary_close(m, fp, p), progress)


# -- connected components ---------------------------------------------------------------
class _Components:
    """3D connected components of a 0/1 volume, labelled chunk by chunk and stitched.

    ``ndimage.label`` runs on chunks of slices (provisional labels, numbered per chunk);
    label pairs that touch across a chunk border are joined with a sparse-graph
    connected-components pass. Final components are numbered in raster order of first
    appearance (``ndimage.label``'s order) as ``0 … n-1``.
    """

    def __init__(self, mask: np.ndarray, *, full: bool, progress: Progress):
        import scipy.ndimage as ndi
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        nz = mask.shape[0]
        self.full = full
        self.labels = np.empty(mask.shape, np.int32)
        structure = ndi.generate_binary_structure(3, 3 if full else 1)
        self.bounds = [(z, min(nz, z + _CHUNK_SLICES)) for z in range(0, nz, _CHUNK_SLICES)]
        counts = []
        for i, (z0, z1) in enumerate(self.bounds):
            progress.check()
            counts.append(ndi.label(mask[z0:z1], structure, output=self.labels[z0:z1]))
            progress.update(0.9 * (i + 1) / len(self.bounds), "labelling")
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nodes = int(self.offsets[-1])
        us, vs = [], []
        for i in range(1, len(self.bounds)):
            z = self.bounds[i][0]
            a, b = self._touching(self.labels[z - 1], self.labels[z])
            us.append(a - 1 + self.offsets[i - 1])
            vs.append(b - 1 + self.offsets[i])
        if us and sum(len(u) for u in us):
            u, v = np.concatenate(us), np.concatenate(vs)
            graph = coo_matrix((np.ones(u.size, np.int8), (u, v)), shape=(nodes, nodes))
            self.count, self.node_comp = connected_components(graph, directed=False)
        else:
            self.count, self.node_comp = nodes, np.arange(nodes)
        progress.update(1.0, "labelling")

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
            codes.append((sa[both].astype(np.int64) << 32) | sb[both])
        c = np.unique(np.concatenate(codes))
        return c >> 32, c & 0xFFFFFFFF

    def _chunk_lut(self, i: int, per_comp: np.ndarray, background) -> np.ndarray:
        o0, o1 = self.offsets[i], self.offsets[i + 1]
        lut = np.empty(int(o1 - o0) + 1, per_comp.dtype)
        lut[0] = background
        lut[1:] = per_comp[self.node_comp[o0:o1]]
        return lut

    def sizes(self) -> np.ndarray:
        """Voxel count per component, shape (count,)."""
        node_sizes = np.zeros(int(self.offsets[-1]), np.int64)
        for i, (z0, z1) in enumerate(self.bounds):
            n = int(self.offsets[i + 1] - self.offsets[i])
            node_sizes[self.offsets[i]:self.offsets[i + 1]] = np.bincount(
                self.labels[z0:z1].ravel(), minlength=n + 1)[1:]
        return np.bincount(self.node_comp, weights=node_sizes,
                           minlength=self.count).astype(np.int64)

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
    comps = _Components(mask, full=full, progress=progress.sub(0.0, 0.7))
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


# -- holes -----------------------------------------------------------------------------
def _holes_2d(mask: np.ndarray, progress: Progress) -> np.ndarray:
    """Per slice: background pixels not 4-connected to the slice border."""
    import cv2

    ny, nx = mask.shape[1:]

    def one(s: np.ndarray) -> np.ndarray:
        pad = np.zeros((ny + 2, nx + 2), np.uint8)
        pad[1:-1, 1:-1] = s
        if not pad.any():
            return np.zeros(s.shape, np.uint8)
        cv2.floodFill(pad, None, (0, 0), 2, flags=4)
        return np.equal(pad[1:-1, 1:-1], 0).view(np.uint8)

    out = np.empty(mask.shape, np.uint8)
    map_slices(one, mask, out, progress=progress, message="holes")
    return out


def _fill_2d(mask: np.ndarray, progress: Progress) -> np.ndarray:
    holes = _holes_2d(mask, progress)
    np.bitwise_or(holes, mask, out=holes)
    return holes


def _fill_3d(mask: np.ndarray, progress: Progress) -> np.ndarray:
    """3D holes: background not 6-connected to the volume's border (first/last slice included).

    A 3D hole is a 2D hole in each of its slices (a path to a slice's border is a path to the
    volume's border), so only the 2D holes are labelled in 3D; a candidate component is not
    a hole when it reaches the first or last slice or touches, above or below, background that
    is connected to its own slice's border.
    """
    nz = mask.shape[0]
    cand = _holes_2d(mask, progress.sub(0.0, 0.3))
    if nz == 1 or not cand.any():
        # a single slice is all border in 3D: nothing is enclosed
        return mask.copy()
    comps = _Components(cand, full=False, progress=progress.sub(0.3, 0.8))
    if comps.count == 0:
        return mask.copy()
    leaky = np.zeros(comps.count + 1, bool)  # index 0 unused (background)
    chunk_of = np.repeat(np.arange(len(comps.bounds)), [z1 - z0 for z0, z1 in comps.bounds])
    ident = np.arange(comps.count)

    def mark(z: int, touching: np.ndarray) -> None:
        lut = comps._chunk_lut(int(chunk_of[z]), ident + 1, 0)
        leaky[lut[comps.labels[z][touching]]] = True

    mark(0, cand[0] != 0)
    mark(nz - 1, cand[nz - 1] != 0)
    for z in range(nz - 1):
        progress.check()
        # background connected to the slice border: neither object nor 2D hole
        open_below = (mask[z] == 0) & (cand[z] == 0)
        open_above = (mask[z + 1] == 0) & (cand[z + 1] == 0)
        mark(z, (cand[z] != 0) & open_above)
        mark(z + 1, (cand[z + 1] != 0) & open_below)
    fill = (~leaky[1:]).astype(np.uint8)
    out = comps.paint(fill, np.uint8, progress.sub(0.9, 1.0))
    np.bitwise_or(out, mask, out=out)
    return out


def fill_holes(labels: LabelMap, *,
               label: Annotated[int, Range(0, 65535)] = 0,
               in_plane_only: bool = False,
               progress: Progress = NO_PROGRESS) -> LabelMap:
    """Fill enclosed background (holes) inside each label.

    3D: background not face-connected (6 neighbours) to the border of the volume, which
    includes the first and last slices — as ``scipy.ndimage.binary_fill_holes``; on a
    single slice nothing is enclosed in 3D, use ``in_plane_only``. 2D: per slice, background
    not 4-connected to the slice's border.

    Parameters
    ----------
    labels : LabelMap
        Labels to clean, shape (z, y, x).
    label : int
        Label to fill; 0 = every label, each on its own.
    in_plane_only : bool
        Fill holes slice by slice (2D).

    Returns
    -------
    LabelMap
        Same dtype, grid and segments.
    """
    fn = _fill_2d if in_plane_only else _fill_3d
    return _clean(labels, label, fn, progress)


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
    comps = _Components(mask, full=bool(full_connectivity), progress=progress.sub(0.1, 0.7))
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
