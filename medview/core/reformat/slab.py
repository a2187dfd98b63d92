"""Thick-slab projections of a view plane: MIP, MinIP and average over a slab in mm.

A view shows the voxel plane perpendicular to one voxel axis (``axis``: 0 = x, 1 = y,
2 = z) at slice ``index``. A slab of ``thickness_mm`` is centred on that plane and projected
along the plane's **true normal** (the unit vector perpendicular to the two in-plane voxel
axes), so it is right on anisotropic voxels and on gantry-tilted (sheared) stacks:

- The planes of the slab are the voxel planes ``index + m``. Their spacing along the true
  normal is ``Δ = |spacing[axis] · direction[:, axis] · n|`` (the slice spacing times the
  cosine of the tilt for a sheared stack, the plain spacing otherwise).
- **Partial end-planes rule**: plane ``m`` is in the slab when its centre lies within half the
  thickness of the current plane's centre, ``|m|·Δ ≤ thickness_mm / 2`` (1 µm tolerance). A
  plane counts whole or not at all (no weighting), so MIP, MinIP and average all see the same
  voxels; the slab is always the odd number of planes ``2·⌊T / 2Δ⌋ + 1`` and covers
  ``(2·⌊T / 2Δ⌋ + 1)·Δ`` mm of tissue (:attr:`SlabPlan.covered_mm`). A thickness below ``Δ``
  gives the plain slice. At the ends of the volume the planes that do not exist are left out.
- **Sheared stacks**: on a tilted stack one voxel step along ``axis`` also moves sideways in
  the view plane. Plane ``m`` is therefore read shifted in-plane by the nearest whole voxel
  to ``-m·β`` (``β`` = the in-plane part of the step), so each output pixel collects the
  voxels along the perpendicular through it, each within half a voxel of that line. Pixels
  whose shifted voxel falls outside the image take only the planes that exist there.
- Made-up planes (``volume.metadata["made_up_slices"]``: interpolated onto a uniform grid, or
  stand-ins for unreadable files, themselves interpolated) are voxels like any other;
  :attr:`SlabPlan.planes` tells a view which z planes a native-plane slab took.

Speed: the voxels of a slab are reduced with ``np.maximum.reduce`` / ``np.minimum.reduce`` /
``np.add.reduce`` over contiguous views; a slab across the x axis (sagittal views of axial
stacks), whose planes are 2-byte columns of ``[z, y, x]`` rows, is first copied block by block
into ``[z, x, y]`` order, which is about 5× faster than reducing the strided view. A
cumulative sum per axis for the average was measured and not kept (see
``benchmarks/slab.py``): it needs twice the volume's memory per axis and is not faster where
the direct sum is slow. :class:`SlabProjector` keeps the last few results so views whose slab
did not change are not recomputed, and (for volumes up to 256 MiB) an ``[x, z, y]`` copy that
makes sagittal slabs as cheap as axial ones.

The GUI keeps one :class:`SlabProjector` per shown volume and asks it for each view's image
(``axis`` = the view's ``PlaneGeometry.normal``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medview.core.volume import Volume

__all__ = ["MODES", "SlabPlan", "SlabProjector", "plan_slab", "project_slab"]

#: the projections offered
MODES = ("mip", "minip", "average")
Mode = Literal["mip", "minip", "average"]

_TOL_MM = 1e-3  # a plane whose centre is within 1 µm of the slab's edge is in
_BLOCK = 32  # z planes per block when a slab runs across x (fits the copy in L2)


@dataclass(frozen=True)
class SlabPlan:
    """Which voxels a slab takes.

    Attributes
    ----------
    axis : int
        Voxel axis normal to the view (0 = x, 1 = y, 2 = z).
    index : int
        The current slice (the slab's centre plane).
    offsets : tuple of int
        The planes ``index + m`` in the slab, ``m`` ascending, clipped to the volume.
    shifts : ndarray, shape (len(offsets), 2), int
        In-plane shift of each plane in voxels, along the two remaining NumPy axes of the
        array (in their order): output pixel ``(r, c)`` reads voxel ``(r + shifts[i, 0],
        c + shifts[i, 1])`` of plane ``index + offsets[i]``. All zero unless the stack is
        sheared.
    plane_spacing_mm : float
        Distance between neighbouring planes along the true normal (``Δ``).
    thickness_mm : float
        The thickness asked for.
    """

    axis: int
    index: int
    offsets: tuple[int, ...]
    shifts: np.ndarray
    plane_spacing_mm: float
    thickness_mm: float

    @property
    def n_planes(self) -> int:
        return len(self.offsets)

    @property
    def covered_mm(self) -> float:
        """Thickness of tissue the planes taken cover: ``n_planes · Δ``."""
        return self.n_planes * self.plane_spacing_mm

    @property
    def planes(self) -> tuple[int, ...]:
        """Absolute slice indices of the planes taken."""
        return tuple(self.index + m for m in self.offsets)


def _in_plane(axis: int) -> tuple[int, int]:
    """The two voxel axes of the view plane, in the order of the remaining NumPy axes."""
    return tuple(2 - a for a in range(3) if a != 2 - axis)  # type: ignore[return-value]


def _normal_step(volume: Volume, axis: int) -> tuple[float, np.ndarray]:
    """``Δ`` and the in-plane part ``β`` (voxels along the in-plane axes) of one step."""
    steps = volume.direction * np.asarray(volume.spacing)[np.newaxis, :]  # columns: mm/voxel
    b, c = _in_plane(axis)
    normal = np.cross(steps[:, b], steps[:, c])
    normal /= np.linalg.norm(normal)
    step = steps[:, axis]
    along = float(step @ normal)
    beta, *_ = np.linalg.lstsq(np.column_stack([steps[:, b], steps[:, c]]),
                               step - along * normal, rcond=None)
    beta[np.abs(beta) < 1e-9] = 0.0  # orthogonal stacks: exactly no shift
    return abs(along), beta


def _check(volume: Volume, axis: int, index: int, thickness_mm: float) -> None:
    if not isinstance(volume, Volume):
        raise TypeError(f"volume: expected a Volume, got {type(volume).__name__}")
    if volume.is_rgb:
        raise ValueError("volume: a slab projection needs a scalar volume, got an RGB one")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis: expected 0 (x), 1 (y) or 2 (z), got {axis!r}")
    n = volume.shape[2 - axis]
    if not 0 <= index < n:
        raise ValueError(f"index: slice {index} is outside 0..{n - 1} on axis {axis}")
    if not np.isfinite(thickness_mm) or thickness_mm < 0:
        raise ValueError(f"thickness_mm: expected a finite value ≥ 0, got {thickness_mm!r}")


def plan_slab(volume: Volume, *, axis: int, index: int, thickness_mm: float) -> SlabPlan:
    """The planes (and in-plane shifts) a slab of ``thickness_mm`` takes.

    Parameters
    ----------
    volume : Volume
        Scalar volume; ``direction`` may be sheared (gantry tilt).
    axis : {0, 1, 2}
        Voxel axis normal to the view (``PlaneGeometry.normal``).
    index : int
        Current slice on that axis: the slab's centre plane.
    thickness_mm : float
        Slab thickness in mm (≥ 0); see the module docstring for the end-plane rule.

    Raises
    ------
    ValueError
        For an RGB volume, an axis other than 0–2, an index outside the volume or a
        negative or non-finite thickness.
    """
    index = int(index)
    _check(volume, axis, index, float(thickness_mm))
    delta, beta = _normal_step(volume, axis)
    half = int(np.floor((float(thickness_mm) / 2.0 + _TOL_MM) / delta))
    n = volume.shape[2 - axis]
    offsets = tuple(m for m in range(-half, half + 1) if 0 <= index + m < n)
    # np.rint is odd-symmetric, so planes ±m shift by opposite amounts
    shifts = np.rint(-np.outer(offsets, beta)).astype(np.int64).reshape(len(offsets), 2)
    return SlabPlan(axis, index, offsets, shifts, delta, float(thickness_mm))


# -- reductions -------------------------------------------------------------------------
def _accumulator(dtype: np.dtype) -> np.dtype:
    if dtype.kind in "iub" and dtype.itemsize <= 2:
        return np.dtype(np.int32)  # exact for up to 32,768 planes of 16-bit values
    if dtype.kind in "iub":
        return np.dtype(np.int64)
    return np.dtype(np.float64)


def _reduce_run(array: np.ndarray, axis: int, k0: int, k1: int, mode: str) -> np.ndarray:
    """Reduce planes ``k0 .. k1 - 1`` along voxel ``axis`` to one 2D plane (no shift)."""
    np_axis = 2 - axis
    if mode == "average":
        ufunc, kw = np.add, {"dtype": _accumulator(array.dtype)}
    else:
        ufunc, kw = (np.maximum if mode == "mip" else np.minimum), {}
    if np_axis == 0 and mode == "average":
        # plane by plane into one accumulator: the casting reduction buffers (~25 % slower)
        out = array[k0].astype(kw["dtype"])
        for k in range(k0 + 1, k1):
            np.add(out, array[k], out=out)
        return out
    if np_axis < 2:
        sel: list = [slice(None)] * 3
        sel[np_axis] = slice(k0, k1)
        return ufunc.reduce(array[tuple(sel)], axis=np_axis, **kw)
    # across x: reduce blocks copied to [z, x, y] (the strided reduction is ~5× slower)
    nz, ny = array.shape[:2]
    out = np.empty((nz, ny), kw.get("dtype", array.dtype))
    buf = np.empty((min(_BLOCK, nz), k1 - k0, ny), array.dtype)
    for z0 in range(0, nz, _BLOCK):
        z1 = min(z0 + _BLOCK, nz)
        block = buf[: z1 - z0]
        np.copyto(block, array[z0:z1, :, k0:k1].transpose(0, 2, 1))
        ufunc.reduce(block, axis=1, out=out[z0:z1], **kw)
    return out


def _overlap(shift: int, n: int) -> tuple[slice, slice]:
    """Destination and source slices of a shift by ``shift`` along an axis of ``n``."""
    if shift >= 0:
        return slice(0, max(n - shift, 0)), slice(shift, n)
    return slice(-shift, n), slice(0, max(n + shift, 0))


def project_slab(volume: Volume, *, axis: int, index: int, thickness_mm: float,
                 mode: Mode = "mip") -> np.ndarray:
    """Project a slab of ``thickness_mm`` centred on slice ``index`` of a view.

    Parameters
    ----------
    volume : Volume
        Scalar volume, shape ``(nz, ny, nx)``.
    axis : {0, 1, 2}
        Voxel axis normal to the view.
    index : int
        Current slice on ``axis``.
    thickness_mm : float
        Slab thickness in mm; below the plane spacing the plain slice is returned.
    mode : {"mip", "minip", "average"}
        Maximum, minimum or mean intensity along the slab's normal.

    Returns
    -------
    ndarray, 2D
        The volume's array with the ``axis`` dimension projected away (shape of
        ``np.take(volume.array, index, axis=2 - axis)``); the volume's dtype for MIP and
        MinIP, float32 for the average. ``np.expand_dims(result, 2 - axis)`` given to
        ``PlaneGeometry.image(…, 0)`` turns it like the view.

    Raises
    ------
    ValueError
        For an unknown ``mode`` and as :func:`plan_slab`.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    plan = plan_slab(volume, axis=axis, index=index, thickness_mm=thickness_mm)
    return _project(volume.array, plan, mode)


def _runs(plan: SlabPlan) -> list[tuple[int, int, int, int]]:
    """Consecutive planes with the same shift: ``(k0, k1, shift_r, shift_c)``."""
    runs: list[list[int]] = []
    for m, (sr, sc) in zip(plan.offsets, plan.shifts.tolist(), strict=True):
        k = plan.index + m
        if runs and runs[-1][1] == k and runs[-1][2:] == [sr, sc]:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, sr, sc])
    return [tuple(r) for r in runs]  # type: ignore[misc]


def _project(array: np.ndarray, plan: SlabPlan, mode: str) -> np.ndarray:
    runs = _runs(plan)
    if len(runs) == 1:  # no shear within the slab (every orthogonal stack)
        k0, k1, _, _ = runs[0]
        out = _reduce_run(array, plan.axis, k0, k1, mode)
        if mode == "average":
            return np.multiply(out, np.float32(1.0 / (k1 - k0)), dtype=np.float32)
        return out
    # the run holding the centre plane has no shift and covers every output pixel
    centre = next(r for r in runs if r[0] <= plan.index < r[1])
    out = _reduce_run(array, plan.axis, centre[0], centre[1], mode)
    rows, cols = out.shape
    total = sum(k1 - k0 for k0, k1, _, _ in runs)
    count = np.full((rows, cols), total, np.int32) if mode == "average" else None
    for run in runs:
        if run is centre:
            continue
        k0, k1, sr, sc = run
        (dr, srr), (dc, scc) = _overlap(sr, rows), _overlap(sc, cols)
        dst = out[dr, dc]
        if k1 - k0 == 1 or (mode == "average" and plan.axis != 0):
            # plane by plane, read in place (runs on a tilted stack are 1–2 planes long;
            # adding in place spares the reduction's widened copy)
            sel: list = [slice(None)] * 3
            for k in range(k0, k1):
                sel[2 - plan.axis] = k
                src = array[tuple(sel)][srr, scc]
                if mode == "mip":
                    np.maximum(dst, src, out=dst)
                elif mode == "minip":
                    np.minimum(dst, src, out=dst)
                else:
                    dst += src
        else:
            src = _reduce_run(array, plan.axis, k0, k1, mode)[srr, scc]
            {"mip": np.maximum, "minip": np.minimum, "average": np.add}[mode](dst, src, out=dst)
        if mode == "average":
            # the pixels this run missed: thin bands along the borders it was shifted off
            count[_complement(dr, rows), :] -= k1 - k0
            count[dr, _complement(dc, cols)] -= k1 - k0
    if mode == "average":
        return np.divide(out, count, dtype=np.float32)
    return out


def _complement(sl: slice, n: int) -> np.ndarray:
    """Indices of ``range(n)`` outside the contiguous slice ``sl``."""
    start, stop, _ = sl.indices(n)
    return np.r_[0:start, stop:n]


class SlabProjector:
    """Slab projections of one volume, keeping the last few results.

    Scrolling one view of a 2×2 layout leaves the slabs of the other views unchanged; the
    projector returns their previous result without recomputing it. Results are read-only.

    Parameters
    ----------
    volume : Volume
        Scalar volume.
    cache_size : int
        How many results to keep (default 6: two per view).
    x_major : bool, optional
        Keep a copy of the voxels in ``[x, z, y]`` order, made at the first slab across x
        (about 1 s and the volume's size again: 150 MiB for a 512×512×300 CT), so sagittal
        slabs of axial stacks read contiguous planes like the other views (0.3 ms instead
        of 5–14 ms for 10 mm on our machines, see ``benchmarks/slab.py``). Default (None):
        only for volumes up to :attr:`X_MAJOR_MAX_BYTES`, as memory matters more for big
        series.
    """

    #: largest volume (bytes) that gets the ``[x, z, y]`` copy by default
    X_MAJOR_MAX_BYTES = 256 * 2**20

    def __init__(self, volume: Volume, *, cache_size: int = 6,
                 x_major: bool | None = None) -> None:
        if not isinstance(volume, Volume):
            raise TypeError(f"volume: expected a Volume, got {type(volume).__name__}")
        if cache_size < 0:
            raise ValueError(f"cache_size: expected ≥ 0, got {cache_size}")
        self.volume = volume
        self._size = int(cache_size)
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        if x_major is None:
            x_major = volume.nbytes <= self.X_MAJOR_MAX_BYTES
        self._x_major = bool(x_major)
        self._xzy: np.ndarray | None = None

    def project(self, *, axis: int, index: int, thickness_mm: float,
                mode: Mode = "mip") -> np.ndarray:
        """As :func:`project_slab` on this projector's volume (cached; read-only result)."""
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        plan = plan_slab(self.volume, axis=axis, index=index, thickness_mm=thickness_mm)
        # key by the planes taken: thicknesses that take the same planes share a result
        key = (plan.axis, plan.index, plan.offsets, mode)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        runs = _runs(plan)
        if plan.axis == 0 and self._x_major and len(runs) == 1:
            if self._xzy is None:
                self._xzy = np.ascontiguousarray(self.volume.array.transpose(2, 0, 1))
            # planes of [x, z, y] are contiguous: reduce them as the axial path does
            k0, k1 = runs[0][:2]
            out = _reduce_run(self._xzy, 2, k0, k1, mode)
            if mode == "average":
                out = np.multiply(out, np.float32(1.0 / (k1 - k0)), dtype=np.float32)
        else:
            out = _project(self.volume.array, plan, mode)
        if out.base is not None or not out.flags.owndata:
            out = out.copy()
        out.setflags(write=False)
        if self._size:
            self._cache[key] = out
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return out

    def plan(self, *, axis: int, index: int, thickness_mm: float) -> SlabPlan:
        """As :func:`plan_slab` on this projector's volume."""
        return plan_slab(self.volume, axis=axis, index=index, thickness_mm=thickness_mm)
