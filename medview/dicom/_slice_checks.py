"""Which files and slices of a series can be used, checked from their headers before planning.

One inconsistent file must not sink its series: a slice with Samples per Pixel 4, Bits
Allocated 24, a Number of Frames the file cannot hold, a position of 1e308 or pixel data
shorter than declared is set aside here with its reason, and the series is planned without
it — the gap rules of :mod:`medview.dicom.assemble` then treat it as a missing slice
(interpolated from its neighbours, with a warning). Every count and size a header declares is
compared with the file's size before anything proportional to it is built (no slice list for
a claimed two million frames in a 3 kB file).
"""

from __future__ import annotations

import math

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.header import InstanceHeader

__all__ = ["MAX_COORD_MM", "bad_geometry", "place_set_aside", "set_aside_unusable",
           "unusable_reason", "usable_slices"]

#: positions further than this from the scanner's origin (100 m) are not patient positions
MAX_COORD_MM = 1e5
#: pixel spacings above this (10 m) are not pixel spacings
_MAX_SPACING_MM = 1e4
#: files named one by one in the warnings (the rest are counted)
_LISTED = 20


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def unusable_reason(h: InstanceHeader) -> str | None:
    """Why the pixels of ``h`` cannot be read, judged from the header alone; None if they can.

    Checks the pixel module (sizes medview decodes), the declared byte counts against the
    file's size, mosaic tiling and the geometry values (finite, plausible). Costs no I/O when
    the header carries its file size.
    """
    from medview.dicom._pixel_layout import check_pixel_data

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


def _geometry_reason(position, orientation, spacing) -> str | None:
    if position is not None:
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,) or not np.all(np.isfinite(p)) or np.abs(p).max() > MAX_COORD_MM:
            return f"ImagePositionPatient {tuple(position)} is not a position in mm"
    if orientation is not None:
        o = np.asarray(orientation, dtype=np.float64)
        if o.shape != (6,) or not np.all(np.isfinite(o)):
            return f"ImageOrientationPatient {tuple(orientation)} is not two directions"
        r, c = o[:3], o[3:]
        if abs(np.linalg.norm(r) - 1) > 0.05 or abs(np.linalg.norm(c) - 1) > 0.05 or abs(
            float(r @ c)
        ) > 0.05:
            return (f"ImageOrientationPatient {tuple(np.round(o, 4))} is not two orthogonal "
                    "unit vectors")
    if spacing is not None:
        s = np.asarray(spacing, dtype=np.float64)
        if s.shape != (2,) or not np.all(np.isfinite(s)) or s.min() <= 0 or (
            s.max() > _MAX_SPACING_MM
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
    from medview.dicom.slices import expand_slices

    slices = []
    for h in images:
        refs = expand_slices(h)
        bad = [(r, why) for r in refs if (why := bad_geometry(r)) is not None]
        if bad:
            warnings.append(
                f"{len(bad)} frame(s) of {_name(h.path)} left out (a missing slice each): "
                f"{bad[0][1]}")
            refs = [r for r in refs if bad_geometry(r) is None]
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
