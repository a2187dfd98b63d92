"""Which files and slices of a series can be used, checked from their headers before planning.

One inconsistent file must not sink its series: a slice with Samples per Pixel 4, Bits
Allocated 24, a Number of Frames the file cannot hold, a position of 1e308 or pixel data
shorter than declared is set aside here with its reason, and the series is planned without
it — the gap rules of :mod:`medview.dicom.series.assemble` then treat it as a missing slice
(interpolated from its neighbours, with a warning). Every count and size a header declares is
compared with the file's size before anything proportional to it is built (no slice list for
a claimed two million frames in a 3 kB file).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.scan.header import InstanceHeader

__all__ = [
    "FAR_GAP_STEPS",
    "MAX_COORD_MM",
    "bad_geometry",
    "place_set_aside",
    "same_position",
    "set_aside_unusable",
    "split_far_apart",
    "unusable_reason",
    "usable_slices",
]

#: positions further than this from the scanner's origin (100 m) are not patient positions
MAX_COORD_MM = 1e5
#: pixel spacings above this (10 m) are not pixel spacings
_MAX_SPACING_MM = 1e4
#: files named one by one in the warnings (the rest are counted)
_LISTED = 20
#: a gap of more than this many usual steps between slices splits a stack
FAR_GAP_STEPS = 10.0


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def unusable_reason(h: InstanceHeader) -> str | None:
    """Why the pixels of ``h`` cannot be read, judged from the header alone; None if they can.

    Checks the pixel module (sizes medview decodes), the declared byte counts against the
    file's size, mosaic tiling and the geometry values (finite, plausible). Costs no I/O when
    the header carries its file size.
    """
    from medview.dicom.pixels._layout import check_pixel_data

    try:
        check_pixel_data(h, file_size=h.file_size or None)
    except PixelDataError as exc:
        return str(exc).removeprefix(f"{h.path}: ")
    if h.is_mosaic:
        count = int(h.mosaic_count)  # type: ignore[arg-type]
        tiles = math.ceil(math.sqrt(count))
        if tiles > min(h.rows, h.columns):
            return (f"a mosaic of {count} images cannot tile a {h.rows}×{h.columns} image "
                    "(NumberOfImagesInMosaic is wrong)")
    if h.frames and len(h.frames) != h.number_of_frames:
        return (f"{len(h.frames)} per-frame groups for {h.number_of_frames} frame(s): the "
                "header is inconsistent")
    return _geometry_reason(h.image_position, h.image_orientation, h.pixel_spacing)


def _finite_within(values, n: int, limit: float) -> bool:
    """``values`` holds ``n`` finite numbers within ±``limit`` (plain Python: this runs per
    file of every series planned, where NumPy's per-call cost would dominate)."""
    try:
        return len(values) == n and all(math.isfinite(v) and abs(v) <= limit for v in values)
    except TypeError:
        return False


_REASONS: dict = {}  # (orientation, spacing) -> reason: the slices of a series share them


def _geometry_reason(position, orientation, spacing) -> str | None:
    if position is not None and not _finite_within(position, 3, MAX_COORD_MM):
        return f"ImagePositionPatient {tuple(position)} is not a position in mm"
    try:
        key = (orientation, spacing)
        if key in _REASONS:
            return _REASONS[key]
    except TypeError:  # unhashable values: checked each time
        return _orientation_spacing_reason(orientation, spacing)
    reason = _orientation_spacing_reason(orientation, spacing)
    if len(_REASONS) >= 1024:
        _REASONS.clear()
    _REASONS[key] = reason
    return reason


def _orientation_spacing_reason(orientation, spacing) -> str | None:
    if orientation is not None:
        if not _finite_within(orientation, 6, 2.0):
            return f"ImageOrientationPatient {tuple(orientation)} is not two directions"
        r0, r1, r2, c0, c1, c2 = (float(v) for v in orientation)
        rn = r0 * r0 + r1 * r1 + r2 * r2
        cn = c0 * c0 + c1 * c1 + c2 * c2
        if abs(rn - 1) > 0.1 or abs(cn - 1) > 0.1 or abs(r0 * c0 + r1 * c1 + r2 * c2) > 0.05:
            return (f"ImageOrientationPatient {tuple(round(float(v), 4) for v in orientation)}"
                    " is not two orthogonal unit vectors")
    if spacing is not None and not (
        _finite_within(spacing, 2, _MAX_SPACING_MM) and min(spacing) > 0
    ):
        return f"PixelSpacing {tuple(spacing)} is not a pixel spacing in mm"
    return None


def bad_geometry(ref) -> str | None:
    """Why the geometry of one slice (a frame's own values) is unusable; None if usable."""
    return _geometry_reason(ref.position, ref.orientation, ref.pixel_spacing)


def set_aside_unusable(images: list[InstanceHeader], warnings: list[str]
                       ) -> tuple[list[InstanceHeader], list[tuple[InstanceHeader, str]]]:
    """Split ``images`` into usable headers and ``(header, reason)`` set aside; warn."""
    set_aside = [(h, r) for h in images if (r := unusable_reason(h)) is not None]
    if not set_aside:
        return images, []
    aside = {id(h) for h, _ in set_aside}
    warnings.extend(
        f"unreadable file {_name(h.path)}: {r}: left out of the series (a missing slice)"
        for h, r in set_aside[:_LISTED])
    if len(set_aside) > _LISTED:
        warnings.append(f"… and {len(set_aside) - _LISTED} more unreadable file(s) left out")
    return [h for h in images if id(h) not in aside], set_aside


def usable_slices(images: list[InstanceHeader], warnings: list[str]) -> list:
    """The slices of ``images`` (frames, mosaic tiles) whose own geometry is usable; warn."""
    from medview.dicom.series.slices import expand_slices

    slices = []
    for h in images:
        refs = expand_slices(h)
        if len(refs) > 1:
            # frames have geometry of their own (per-frame groups, or computed from a step):
            # the header's values were checked already, one slice per file needs no more
            checked = [(r, bad_geometry(r)) for r in refs]
            bad = [why for _, why in checked if why is not None]
            if bad:
                warnings.append(
                    f"{len(bad)} frame(s) of {_name(h.path)} left out (a missing slice each): "
                    f"{bad[0]}")
                refs = [r for r, why in checked if why is None]
        slices.extend(refs)
    return slices


def place_set_aside(stack, set_aside: list[tuple[InstanceHeader, str]]) -> list[tuple[int, str]]:
    """``(z, "unreadable file NAME: reason")`` for the files set aside that lie in ``stack``.

    A file set aside whose position falls on a plane of the stack's grid (same orientation and
    size) is the slice that plane stands in for; files with no usable position, or outside the
    grid, are only named in the warnings.
    """
    if not stack.has_geometry or not set_aside:
        return []
    d = np.asarray(stack.direction, dtype=np.float64)
    normal = np.cross(d[:, 0], d[:, 1])
    dz = float(stack.spacing[2])
    origin = np.asarray(stack.origin, dtype=np.float64)
    out = []
    for h, reason in set_aside:
        if (h.image_position is None or h.image_orientation is None or dz <= 0
                or (h.rows, h.columns) != tuple(stack.shape[1:])
                or _geometry_reason(h.image_position, h.image_orientation, None)):
            continue
        o = np.asarray(h.image_orientation, dtype=np.float64)
        if abs(float(np.cross(o[:3], o[3:]) @ normal)) < 0.999:
            continue
        offset = np.asarray(h.image_position, dtype=np.float64) - origin
        t = float(offset @ d[:, 2]) / float(d[:, 2] @ d[:, 2])
        z = round(t / dz)
        if 0 <= z < stack.shape[0] and abs(t - z * dz) <= dz / 2:
            out.append((int(z), f"unreadable file {_name(h.path)}: {reason}"))
    return out


def split_far_apart(refs: list, normal: np.ndarray) -> tuple[list[list], str]:
    """Split a sorted stack where slices lie far apart; return the parts and a warning.

    One slice 50 cm away from the others (a wrong position, or a second block of the body in
    the same series) would otherwise make the gap rules resample thousands of planes out of a
    few slices. A gap of more than :data:`FAR_GAP_STEPS` usual (median) steps splits the
    stack when filling it would more than double the slice count; each part is a stack of its
    own (the largest loads). ``refs`` must be sorted along ``normal``.
    """
    n = len(refs)
    if n < 3:
        return [refs], ""
    t = np.array([float(r.position @ normal) for r in refs])
    steps = np.diff(t)
    positive = steps[steps > 1e-6]
    if not len(positive):
        return [refs], ""
    usual = float(np.median(positive))
    far = np.flatnonzero(steps > FAR_GAP_STEPS * usual)
    if not len(far) or (t[-1] - t[0]) / usual + 1 <= 2 * n:
        return [refs], ""
    cuts = [0, *(int(i) + 1 for i in far), n]
    parts = [refs[a:b] for a, b in itertools.pairwise(cuts)]
    gaps = ", ".join(f"{steps[i]:.4g} mm" for i in far[:4])
    return parts, (
        f"slices lie far apart (gaps of {gaps}, the usual step is {usual:.3g} mm): split into "
        f"{len(parts)} stacks of " + ", ".join(str(len(p)) for p in parts) + " slices "
        "instead of filling the gaps"
    )


def same_position(block: list, others: list, normal: np.ndarray, tol_mm: float
                  ) -> dict[int, list]:
    """``k → [refs of others within tol_mm of block[k] along normal]`` (only hits)."""
    if not others:
        return {}
    t = np.array([float(r.position @ normal) for r in block])
    out: dict[int, list] = {}
    for r in others:
        k = int(np.argmin(np.abs(t - float(r.position @ normal))))
        if abs(t[k] - float(r.position @ normal)) <= tol_mm:
            out.setdefault(k, []).append(r)
    return out
