"""Resampling a second series onto a fixed grid from the patient geometry (SimpleITK, with a
separable fast path for grids that share their axes).

Split out of :mod:`medview.core.registration.rigid`, which re-exports every public name here.

A voxel of the result at LPS position ``p`` holds the moving volume's value at ``p``. Grids may
be sheared (gantry tilt: a non-orthonormal ``Volume.direction``); SimpleITK maps indices
through the full direction matrix, so every voxel lands where its own slice header puts it.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import check_scalar
from medview.core._shared.parallel import map_slices
from medview.core.labelmap import LabelMap
from medview.core.params import Help, Range
from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.core.volume import Volume

__all__ = ["resample_to_grid"]

Interpolation = Literal["linear", "nearest", "bspline"]

# output voxels per SimpleITK call: cancellation is checked between calls, and chunks of a
# few MB keep SimpleITK's output inside the caches (faster than one volume-sized call)
_CHUNK_VOXELS = 1 << 22


def _to_sitk(array: np.ndarray, spacing, origin, direction, *, float32: bool):
    """A SimpleITK image of ``array`` with the given geometry (float32 if asked)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    if float32 and img.GetPixelID() != sitk.sitkFloat32:
        img = sitk.Cast(img, sitk.sitkFloat32)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in origin))
    img.SetDirection(tuple(float(d) for d in np.asarray(direction).ravel()))
    return img


def _sitk_pixel_type(dtype: np.dtype):
    import SimpleITK as sitk

    return {
        np.dtype(np.uint8): sitk.sitkUInt8, np.dtype(np.int8): sitk.sitkInt8,
        np.dtype(np.uint16): sitk.sitkUInt16, np.dtype(np.int16): sitk.sitkInt16,
        np.dtype(np.uint32): sitk.sitkUInt32, np.dtype(np.int32): sitk.sitkInt32,
        np.dtype(np.uint64): sitk.sitkUInt64, np.dtype(np.int64): sitk.sitkInt64,
        np.dtype(np.float32): sitk.sitkFloat32, np.dtype(np.float64): sitk.sitkFloat64,
    }[np.dtype(dtype)]


def _prepare_moving(moving: Volume, interpolation: str, progress: Progress = NO_PROGRESS):
    """The moving image SimpleITK samples, and the interpolator that goes with it.

    B-spline: the coefficient image is computed once (SimpleITK would recompute it on every
    call) and sampled with the matching coefficient resampler; a cancel aborts it.
    """
    import SimpleITK as sitk

    if interpolation == "nearest":
        return (_to_sitk(moving.array, moving.spacing, moving.origin, moving.direction,
                         float32=False), sitk.sitkNearestNeighbor)
    img = _to_sitk(moving.array, moving.spacing, moving.origin, moving.direction, float32=True)
    if interpolation == "linear":
        return img, sitk.sitkLinear
    progress.check()
    decompose = sitk.BSplineDecompositionImageFilter()
    decompose.SetSplineOrder(3)
    decompose.AddCommand(sitk.sitkProgressEvent,
                         lambda: decompose.Abort() if progress.cancelled else None)
    try:
        coeff = decompose.Execute(img)
    except RuntimeError:
        if progress.cancelled:
            raise Cancelled("cancelled by the user") from None
        raise
    del img
    progress.check()
    return coeff, sitk.sitkBSplineResamplerOrder3


def _resample_into(out: np.ndarray, image, interpolator, fixed: Volume, transform,
                   default_value: float, progress: Progress, message: str) -> np.ndarray:
    """``out[z, y, x]`` = ``image`` sampled at ``transform(fixed voxel position)``, by chunks."""
    import SimpleITK as sitk

    nz, ny, nx = fixed.shape
    chunk = max(1, min(nz, _CHUNK_VOXELS // (nx * ny)))
    f = sitk.ResampleImageFilter()
    f.SetInterpolator(interpolator)
    f.SetTransform(transform)
    f.SetDefaultPixelValue(float(default_value))
    f.SetOutputPixelType(_sitk_pixel_type(out.dtype))
    f.SetOutputSpacing(fixed.spacing)
    f.SetOutputDirection(tuple(float(d) for d in fixed.direction.ravel()))
    for k0 in range(0, nz, chunk):
        progress.check()
        k1 = min(nz, k0 + chunk)
        f.SetOutputOrigin(tuple(float(c) for c in fixed.index_to_lps((0.0, 0.0, float(k0)))))
        f.SetSize((nx, ny, k1 - k0))
        part = f.Execute(image)
        out[k0:k1] = sitk.GetArrayViewFromImage(part)  # `part` stays alive for the view
        del part
        progress.update(k1 / nz, message)
    return out


def _output_dtype(moving: Volume, interpolation: str, default_value: float) -> np.dtype:
    if interpolation != "nearest":
        return np.dtype(np.float32)
    dtype = moving.array.dtype
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if (not math.isfinite(default_value) or default_value != int(default_value)
                or not info.min <= default_value <= info.max):
            raise ValueError(f"default_value: {default_value:g} cannot be stored in the moving "
                             f"volume's {dtype} voxels; use an integer in "
                             f"[{info.min}, {info.max}]")
    return dtype


def _finish(fixed: Volume, moving: Volume, out: np.ndarray, interpolation: str,
            warnings: tuple[str, ...]) -> Volume:
    meta = dict(moving.metadata)
    if isinstance(moving, LabelMap) and interpolation == "nearest":
        return LabelMap(out, fixed.spacing, fixed.origin, fixed.direction, meta,
                        moving.warnings + warnings, moving.segments)
    return Volume(out, fixed.spacing, fixed.origin, fixed.direction, meta,
                  moving.warnings + warnings)


def _interpolation_for(moving: Volume, interpolation: str) -> tuple[str, tuple[str, ...]]:
    if interpolation not in ("linear", "nearest", "bspline"):
        raise ValueError(f"interpolation: {interpolation!r} is not one of linear, nearest, "
                         "bspline")
    if isinstance(moving, LabelMap) and interpolation != "nearest":
        return "nearest", (f"label map resampled with nearest neighbour ({interpolation} "
                           "would invent labels between segments)",)
    return interpolation, ()


def resample_to_grid(
    volume: Volume,
    moving: Volume,
    *,
    interpolation: Annotated[Interpolation, Help("How values between moving voxels are "
                                                 "computed")] = "linear",
    default_value: Annotated[float, Range(-1e6, 1e6, step=1.0)] = 0.0,
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Resample ``moving`` onto the grid of ``volume`` (the fixed volume) by patient position.

    No registration: the scanner's patient coordinates are trusted (the identity transform in
    LPS, as SimpleITK's ``Resample`` with ``sitk.Transform()``). A voxel of the result at LPS
    position ``p`` has the moving volume's value at ``p``, interpolated.

    Parameters
    ----------
    volume : Volume
        The fixed volume, shape (z, y, x); only its grid is used (shape, spacing, origin,
        direction, possibly sheared).
    moving : Volume
        The volume to resample, shape (z', y', x'), on any grid in the same patient frame.
        A LabelMap is always resampled with nearest neighbour and stays a LabelMap.
    interpolation : {"linear", "nearest", "bspline"}
        Trilinear, nearest neighbour, or cubic B-spline (SimpleITK's).
    default_value : float
        Value of the voxels whose position lies outside the moving volume (NaN marks "no
        data" in a float result).

    Returns
    -------
    Volume
        On the fixed grid, shape (z, y, x), with the moving volume's metadata. float32 for
        linear and B-spline; the moving dtype for nearest neighbour.

    Raises
    ------
    ValueError
        On an RGB input, an unknown interpolation, or a ``default_value`` that the moving
        dtype cannot hold (nearest neighbour).
    """
    check_scalar(volume, "resampling", name="volume")
    check_scalar(moving, "resampling", name="moving")
    interpolation, warnings = _interpolation_for(moving, interpolation)
    dtype = _output_dtype(moving, interpolation, default_value)
    import SimpleITK as sitk

    out = np.empty(volume.shape, dtype)
    axes = _separable_map(volume, moving) if interpolation == "linear" else None
    if axes is not None and _separable_resample(out, moving, axes, default_value, progress):
        return _finish(volume, moving, out, interpolation, warnings)
    image, interpolator = _prepare_moving(moving, interpolation, progress)
    _resample_into(out, image, interpolator, volume, sitk.Transform(3, sitk.sitkIdentity),
                   default_value, progress, "Resampling onto the fixed grid")
    return _finish(volume, moving, out, interpolation, warnings)


def _separable_map(fixed: Volume, moving: Volume):
    """Per axis (x, y, z): ``moving index = scale * fixed index + offset`` when the two grids
    share their axes (each moving index depends on one fixed index only), else None."""
    a_m = moving.direction * np.asarray(moving.spacing)
    m = np.linalg.solve(a_m, fixed.direction * np.asarray(fixed.spacing))
    off = np.linalg.solve(a_m, np.asarray(fixed.origin) - np.asarray(moving.origin))
    # an off-diagonal term must not move any voxel by more than a millionth of a voxel
    reach = np.abs(m - np.diag(np.diag(m))) * np.asarray(fixed.shape[::-1])[np.newaxis, :]
    if reach.max() > 1e-6:
        return None
    return np.diag(m), off


def _linear_taps(n_out: int, scale: float, offset: float, n_in: int):
    """SimpleITK's linear interpolation along one axis: the two source indices, the weight of
    the second, and which outputs are inside ([-0.5, n - 0.5), clamped to the edge voxel in
    the outer half voxel).

    A position exactly on that border (a tie, common when one grid subdivides the other)
    counts as inside at the lower end and outside at the upper end, the way SimpleITK's own
    floating-point rounding decides most ties.
    """
    c = scale * np.arange(n_out, dtype=np.float64) + offset
    tie = 1e-9
    inside = (c >= -0.5 - tie) & (c < n_in - 0.5 - tie)
    base = np.floor(c)
    t = np.clip(c - base, 0.0, 1.0)
    lo = np.clip(base, 0, n_in - 1).astype(np.intp)
    hi = np.clip(base + 1, 0, n_in - 1).astype(np.intp)
    t[lo == hi] = 0.0
    return lo, hi, t, inside


def _separable_resample(out: np.ndarray, moving: Volume, axes, default_value: float,
                        progress: Progress) -> bool:
    """Trilinear resampling of axis-aligned grids as three 1D passes (the same values as
    SimpleITK's, several times faster for PET onto CT): the moving slices that are needed
    are first resampled in-plane, then each output slice blends two of them. False (nothing
    done) when that would need more memory than the output itself."""
    import cv2

    (sx, sy, sz), (ox, oy, oz) = axes
    nz, ny, nx = out.shape
    mz, my, mx = moving.shape
    zlo, zhi, tz, zin = _linear_taps(nz, sz, oz, mz)
    ylo, yhi, ty, yin = _linear_taps(ny, sy, oy, my)
    xlo, xhi, tx, xin = _linear_taps(nx, sx, ox, mx)
    used = np.unique(np.concatenate([zlo[zin], zhi[zin]]))
    if len(used) > nz:
        return False
    plane_in = np.outer(yin, xin)
    wy0, wy1 = (1 - ty).astype(np.float32)[:, None], ty.astype(np.float32)[:, None]
    wx0, wx1 = (1 - tx).astype(np.float32), tx.astype(np.float32)
    planes = np.empty((len(used), ny, nx), np.float32)
    src = moving.array

    def in_plane(z) -> int:  # z: position in `used`
        p = src[used[z]].astype(np.float32, copy=False)
        q = p[ylo] * wy0 + p[yhi] * wy1
        np.add(q[:, xlo] * wx0, q[:, xhi] * wx1, out=planes[z])
        return 0

    map_slices(in_plane, np.arange(len(used)), np.zeros(len(used), np.uint8),
               progress=progress.sub(0.0, 0.5), message="Resampling in-plane")
    where = np.full(mz, -1, np.intp)
    where[used] = np.arange(len(used))
    fill = np.float32(default_value)

    def blend(k) -> int:
        r = out[k]
        if not zin[k]:
            r.fill(fill)
            return 0
        a, b = planes[where[zlo[k]]], planes[where[zhi[k]]]
        cv2.addWeighted(a, 1.0 - float(tz[k]), b, float(tz[k]), 0.0, dst=r)
        if not plane_in.all():
            r[~plane_in] = fill
        return 0

    map_slices(blend, np.arange(nz), np.zeros(nz, np.uint8), progress=progress.sub(0.5, 1.0),
               message="Resampling across slices")
    return True
