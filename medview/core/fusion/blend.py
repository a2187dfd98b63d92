"""Fusing two series: average, weighted and maximum fusion, and a colour alpha-blend
(fixed in gray, moving in a colour map such as PET "hot" over CT) giving an RGB volume.

The moving volume may be on any grid in the same patient frame: it is resampled onto the
fixed grid (linear, :func:`medview.core.registration.rigid.resample_to_grid`) first, and where it
has no data (outside its field of view) the fixed volume is shown alone. Register it first
(:func:`medview.core.registration.rigid.register_rigid`) when the patient moved between series.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np

from medview.core._shared.checks import check_scalar, each_slice
from medview.core.params import Help, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.registration.rigid import resample_to_grid
from medview.core.volume import Volume

__all__ = ["COLORMAPS", "blend_colour", "colormap_lut", "fuse_average", "fuse_maximum",
           "fuse_weighted"]

Colormap = Literal["hot", "jet", "viridis", "inferno", "grey"]
COLORMAPS: tuple[str, ...] = ("hot", "jet", "viridis", "inferno", "grey")

# viridis at x = i/255 for i = 0, 16, ..., 240, 255 (the published table); linear in between
# stays within a couple of levels of it
_VIRIDIS_X = np.array([*range(0, 256, 16), 255], np.float64) / 255.0
_VIRIDIS_RGB = np.array([
    (68, 1, 84), (72, 24, 106), (71, 45, 123), (66, 64, 134), (59, 82, 139), (51, 99, 141),
    (44, 114, 142), (38, 130, 142), (33, 145, 140), (31, 160, 136), (40, 174, 128),
    (63, 188, 115), (94, 201, 98), (132, 212, 75), (173, 220, 48), (216, 226, 25),
    (253, 231, 37)], np.float64) / 255.0

# inferno at x = i/255 for i = 0, 8, ..., 248, 255 (matplotlib's table, as OpenCV ships it);
# linear in between stays within two levels of it
_INFERNO_X = np.array([*range(0, 256, 8), 255], np.float64) / 255.0
_INFERNO_RGB = np.array([
    (0, 0, 4), (4, 3, 18), (11, 7, 36), (21, 11, 55), (33, 12, 74), (47, 10, 91), (61, 9, 101),
    (74, 12, 107), (87, 16, 110), (100, 21, 110), (113, 25, 110), (125, 30, 109),
    (138, 34, 106), (151, 39, 102), (163, 44, 97), (176, 49, 91), (188, 55, 84), (199, 62, 76),
    (210, 70, 68), (219, 80, 59), (228, 90, 49), (235, 102, 40), (241, 115, 29),
    (246, 128, 19), (249, 142, 9), (251, 157, 7), (252, 172, 17), (251, 188, 33),
    (249, 203, 53), (245, 219, 76), (242, 234, 105), (243, 246, 138), (252, 255, 164)],
    np.float64) / 255.0

# dtypes OpenCV's per-element functions take
_CV_TYPES = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32,
                                        np.float32, np.float64))

# voxels used for automatic windows: more changes the percentiles by far less than a level
_MAX_SAMPLES = 1_000_000


def colormap_lut(name: str) -> np.ndarray:
    """The 256-entry RGB table of a colour map, uint8, shape (256, 3).

    ``hot``: black → red → yellow → white (MATLAB's: red over the first 3/8, green over the
    next 3/8, blue over the last 1/4); ``jet``: dark blue → cyan → yellow → dark red;
    ``viridis``: the perceptually uniform dark violet → teal → yellow map; ``inferno``: black
    → purple → orange → pale yellow (perceptually uniform); ``grey``: black → white.
    """
    x = np.linspace(0.0, 1.0, 256)
    if name == "hot":
        rgb = np.stack([x / 0.375, (x - 0.375) / 0.375, (x - 0.75) / 0.25], axis=1)
    elif name == "jet":
        rgb = np.stack([1.5 - np.abs(4 * x - 3), 1.5 - np.abs(4 * x - 2),
                        1.5 - np.abs(4 * x - 1)], axis=1)
    elif name == "viridis":
        rgb = np.stack([np.interp(x, _VIRIDIS_X, _VIRIDIS_RGB[:, c]) for c in range(3)], axis=1)
    elif name == "inferno":
        rgb = np.stack([np.interp(x, _INFERNO_X, _INFERNO_RGB[:, c]) for c in range(3)], axis=1)
    elif name == "grey":
        rgb = np.repeat(x[:, None], 3, axis=1)
    else:
        raise ValueError(f"colormap: {name!r} is not one of {', '.join(COLORMAPS)}")
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _sample(array: np.ndarray) -> np.ndarray:
    flat = array.reshape(-1)
    if flat.size > _MAX_SAMPLES:
        flat = flat[:: flat.size // _MAX_SAMPLES + 1]
    return flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat


def _percentile_range(array: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentiles (on at most a million evenly strided voxels)."""
    flat = _sample(array)
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, (1.0, 99.0)))
    return lo, hi


def _check_inputs(volume, moving) -> None:
    check_scalar(volume, "fusion", name="volume")
    check_scalar(moving, "fusion", name="moving")


def _on_fixed_grid(volume: Volume, moving: Volume, progress: Progress) -> np.ndarray:
    """The moving voxels on the fixed grid; NaN where the moving volume has no data."""
    if moving.same_grid(volume):
        return moving.array
    return resample_to_grid(volume, moving, interpolation="linear", default_value=np.nan,
                            progress=progress).array


def _combine(volume: Volume, moving: Volume, kind: str, weight: float,
             progress: Progress) -> Volume:
    import cv2

    _check_inputs(volume, moving)
    resampled = not moving.same_grid(volume)
    m = _on_fixed_grid(volume, moving, progress.sub(0.0, 0.6 if resampled else 0.0))
    f = volume.array
    if kind == "maximum":
        dtype = np.result_type(f.dtype, m.dtype)
    else:
        dtype = np.dtype(np.float32)
    out = np.empty(volume.shape, dtype)

    def one(k) -> int:
        a, b, r = f[k], m[k], out[k]
        if kind == "maximum" and a.dtype == b.dtype == dtype and dtype in _CV_TYPES:
            cv2.max(a, b, dst=r)
        elif kind == "maximum":
            np.maximum(a, b, out=r, casting="unsafe")
        else:
            a32 = a.astype(np.float32, copy=False)
            b32 = b.astype(np.float32, copy=False)
            cv2.addWeighted(a32, 1.0 - weight, b32, weight, 0.0, dst=r)
        if resampled:  # outside the moving field of view, the fixed volume alone
            np.copyto(r, a, where=np.isnan(b), casting="unsafe")
        return 0

    each_slice(one, volume.shape[0], progress.sub(0.6 if resampled else 0.0, 1.0),
                f"Fusion: {kind}")
    return volume.with_array(out)


def fuse_average(volume: Volume, moving: Volume, *,
                 progress: Progress = NO_PROGRESS) -> Volume:
    """Average of the fixed and the moving volume, voxel by voxel: ``(fixed + moving) / 2``.

    Parameters
    ----------
    volume : Volume
        The fixed volume, shape (z, y, x); its grid and metadata are kept.
    moving : Volume
        The other series; resampled (linear) onto the fixed grid when on another grid, and
        where it has no data the result is the fixed value.

    Returns
    -------
    Volume
        float32, shape (z, y, x), on the fixed grid.
    """
    return _combine(volume, moving, "average", 0.5, progress)


def fuse_weighted(volume: Volume, moving: Volume, *,
                  weight: Annotated[float, Range(0.0, 1.0, step=0.05),
                                    Help("Share of the moving volume (0 = fixed only, "
                                         "1 = moving only)")] = 0.5,
                  progress: Progress = NO_PROGRESS) -> Volume:
    """Weighted fusion: ``(1 - weight) · fixed + weight · moving``, voxel by voxel.

    The two weights sum to one, so fusing a volume with itself gives the volume back and the
    result always lies between the two inputs.

    Parameters
    ----------
    volume : Volume
        The fixed volume, shape (z, y, x); its grid and metadata are kept.
    moving : Volume
        The other series; resampled (linear) onto the fixed grid when on another grid, and
        where it has no data the result is the fixed value.
    weight : float
        Share of the moving volume, in [0, 1].

    Returns
    -------
    Volume
        float32, shape (z, y, x), on the fixed grid.

    Raises
    ------
    ValueError
        When ``weight`` is outside [0, 1] or an input is RGB.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight: expected a value in [0, 1], got {weight}")
    return _combine(volume, moving, "weighted", float(weight), progress)


def fuse_maximum(volume: Volume, moving: Volume, *,
                 progress: Progress = NO_PROGRESS) -> Volume:
    """Maximum fusion: the larger of the fixed and the moving value, voxel by voxel.

    Parameters
    ----------
    volume : Volume
        The fixed volume, shape (z, y, x); its grid and metadata are kept.
    moving : Volume
        The other series; resampled (linear) onto the fixed grid when on another grid, and
        where it has no data the result is the fixed value.

    Returns
    -------
    Volume
        Shape (z, y, x) on the fixed grid; the common dtype of both inputs (float32 after
        resampling).
    """
    return _combine(volume, moving, "maximum", 0.0, progress)


def _fixed_window(volume: Volume, center: float | None,
                  width: float | None) -> tuple[float, float]:
    if center is not None and width is not None:
        return center, width
    meta = volume.metadata
    if meta.get("Modality") == "CT" or str(meta.get("Units", "")).upper() == "HU":
        auto = (50.0, 400.0)  # the abdomen preset
    else:
        lo, hi = _percentile_range(volume.array)
        auto = ((lo + hi) / 2.0, max(hi - lo, 1e-6))
    return (auto[0] if center is None else center), (auto[1] if width is None else width)


def blend_colour(
    volume: Volume,
    moving: Volume,
    *,
    window_center: Annotated[float | None, Range(-1e6, 1e6, step=1.0),
                             Help("Centre of the fixed volume's gray window, in its units "
                                  "(HU for CT); empty = automatic")] = None,
    window_width: Annotated[float | None, Range(1e-6, 1e6, step=1.0),
                            Help("Width of the fixed volume's gray window; empty = "
                                 "automatic")] = None,
    colormap: Colormap = "hot",
    moving_min: Annotated[float | None, Range(-1e9, 1e9, step=1.0),
                          Help("Moving value at the bottom of the colour map; empty = "
                               "1st percentile")] = None,
    moving_max: Annotated[float | None, Range(-1e9, 1e9, step=1.0),
                          Help("Moving value at the top of the colour map; empty = "
                               "99th percentile")] = None,
    opacity: Annotated[float, Range(0.0, 1.0, step=0.05)] = 0.5,
    hide_below_min: bool = True,
    progress: Progress = NO_PROGRESS,
) -> Volume:
    """Alpha-blend the moving volume in colour over the fixed volume in gray: an RGB volume.

    Gray: ``g = clip((fixed − (center − width/2)) / width, 0, 1) · 255``; colour:
    ``c = LUT[round(clip((moving − min) / (max − min), 0, 1) · 255)]``; result, per channel,
    ``round((1 − opacity) · g + opacity · c)``. Where the moving volume has no data (outside
    its field of view) and, with ``hide_below_min``, where it is below ``moving_min``, the
    result is the gray value alone.

    Parameters
    ----------
    volume : Volume
        The fixed volume (e.g. CT), shape (z, y, x); its grid and metadata are kept.
    moving : Volume
        The colour-coded series (e.g. PET), on any grid in the same patient frame; resampled
        (linear) onto the fixed grid first when needed.
    window_center, window_width : float, optional
        The fixed volume's gray window in its physical units. Automatic when not given: the
        abdomen window (50/400 HU) for CT, the 1–99 percentiles otherwise.
    colormap : {"hot", "jet", "viridis"}
        Colour map of the moving volume.
    moving_min, moving_max : float, optional
        Moving values at the two ends of the colour map (its units, e.g. Bq/ml); the 1st and
        99th percentiles of the moving volume when not given.
    opacity : float
        Weight of the colour, in [0, 1].
    hide_below_min : bool
        Show the gray value alone where the moving value is below ``moving_min``.

    Returns
    -------
    Volume
        uint8 RGB, shape (z, y, x, 3), on the fixed grid.

    Raises
    ------
    ValueError
        On a non-positive window width, ``moving_max <= moving_min``, an opacity outside
        [0, 1], an unknown colour map or an RGB input.
    """
    import cv2

    _check_inputs(volume, moving)
    lut = colormap_lut(colormap)
    lut3 = lut.reshape(1, 256, 3)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: expected a value in [0, 1], got {opacity}")
    if window_width is not None and not window_width > 0:
        raise ValueError(f"window_width: must be > 0, got {window_width}")
    center, width = _fixed_window(volume, window_center, window_width)
    if moving_min is None or moving_max is None:
        lo, hi = _percentile_range(moving.array)
        moving_min = lo if moving_min is None else moving_min
        moving_max = hi if moving_max is None else moving_max
        if moving_max <= moving_min:  # a constant moving volume: any range will do
            moving_max = moving_min + 1.0
    if not moving_max > moving_min:
        raise ValueError(f"moving_max: must be above moving_min ({moving_min:g}), got "
                         f"{moving_max:g}")
    resampled = not moving.same_grid(volume)
    m = _on_fixed_grid(volume, moving, progress.sub(0.0, 0.6 if resampled else 0.0))
    f = volume.array
    g_scale, g_offset = 255.0 / width, -(center - width / 2.0) * 255.0 / width
    c_scale = 255.0 / (moving_max - moving_min)
    c_offset = -moving_min * c_scale
    lo_m = np.float32(moving_min)
    out = np.empty((*volume.shape, 3), np.uint8)

    def one(k) -> int:
        g = cv2.convertScaleAbs(np.clip(f[k].astype(np.float32) * np.float32(g_scale)
                                        + np.float32(g_offset), 0.0, 255.0))
        gray = cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)
        mk = m[k].astype(np.float32, copy=False)
        level = mk * np.float32(c_scale) + np.float32(c_offset)
        np.nan_to_num(level, copy=False, nan=0.0)
        idx = cv2.convertScaleAbs(np.clip(level, 0.0, 255.0, out=level))
        colour = cv2.LUT(cv2.merge([idx, idx, idx]), lut3)
        hidden = np.isnan(mk)
        if hide_below_min:
            hidden |= mk < lo_m
        cv2.copyTo(gray, hidden.view(np.uint8), colour)  # gray alone where hidden
        cv2.addWeighted(gray, 1.0 - opacity, colour, opacity, 0.0, dst=out[k])
        return 0

    each_slice(one, volume.shape[0], progress.sub(0.6 if resampled else 0.0, 1.0),
                "Colour blend")
    return volume.with_array(out, PhotometricInterpretation="RGB")
