"""Reference lines: where another image's plane cuts the current view.

Given the current view's :class:`~medview.core.reformat.plane.ImagePlane` and another plane
(another view of the same volume, an oblique MPR plane, a localizer/scout image from its
ImagePositionPatient/ImageOrientationPatient/Rows/Columns/PixelSpacing, a slice of another
series in the same frame of reference), :func:`reference_line` gives the segment of their
intersection in the current view's display coordinates, clipped to the current image and (by
default) to the other image's rectangle, so the line shows where both images have pixels —
as scout lines do on a localizer.

Only meaningful for planes in one frame of reference (same FrameOfReferenceUID); checking that
is the caller's business (the headers are not core's).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from medview.core.reformat.plane import ImagePlane

__all__ = ["ReferenceLine", "reference_line"]

_PARALLEL = 1e-9  # |sin| of the angle between the planes below which they are parallel


class ReferenceLine(NamedTuple):
    """A segment where another plane cuts the current view.

    ``start`` and ``end`` are display ``(u, v)`` of the current view (pixel centre at
    ``+0.5``); ``start_lps`` and ``end_lps`` the same points in LPS mm.
    """

    start: tuple[float, float]
    end: tuple[float, float]
    start_lps: np.ndarray
    end_lps: np.ndarray

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(self.end_lps - self.start_lps))


def _clip(lo_s: float, hi_s: float, a: float, b: float, lo: float, hi: float):
    """Narrow ``[lo_s, hi_s]`` to the ``s`` where ``lo ≤ a + b·s ≤ hi`` (Liang–Barsky)."""
    if abs(b) < 1e-12:
        return (lo_s, hi_s) if lo <= a <= hi else None
    s0, s1 = sorted(((lo - a) / b, (hi - a) / b))
    lo_s, hi_s = max(lo_s, s0), min(hi_s, s1)
    return (lo_s, hi_s) if hi_s > lo_s else None


def reference_line(current: ImagePlane, other: ImagePlane, *,
                   clip_to_other: bool = True) -> ReferenceLine | None:
    """The segment where ``other``'s plane cuts ``current``, in ``current``'s display coordinates.

    Parameters
    ----------
    current : ImagePlane
        The view the line is drawn on.
    other : ImagePlane
        The plane whose trace is wanted.
    clip_to_other : bool
        Also clip the segment to ``other``'s image rectangle (default); False gives the
        trace of ``other``'s infinite plane across the whole current image.

    Returns
    -------
    ReferenceLine or None
        None when the planes are parallel or the line misses the image(s).
    """
    m = other.normal
    fu, fv = float(current.col_step @ m), float(current.row_step @ m)
    scale = max(np.linalg.norm(current.col_step), np.linalg.norm(current.row_step))
    if np.hypot(fu, fv) < _PARALLEL * scale:
        return None
    # signed distance from other's plane at display (u, v): f0 + fu·u + fv·v
    f0 = float((current.display_to_lps(0.0, 0.0) - other.origin) @ m)
    g = fu * fu + fv * fv
    p0 = np.array([-f0 * fu / g, -f0 * fv / g])  # the line's point nearest (0, 0)
    t = np.array([-fv, fu]) / np.sqrt(g)  # the line's direction, unit in display units
    span: tuple[float, float] | None = (-np.inf, np.inf)
    span = _clip(*span, p0[0], t[0], 0.0, current.columns)
    if span is not None:
        span = _clip(*span, p0[1], t[1], 0.0, current.rows)
    if span is not None and clip_to_other:
        # other's display coordinates are linear in s along the line
        x0 = current.display_to_lps(p0[0], p0[1])
        x1 = current.display_to_lps(p0[0] + t[0], p0[1] + t[1])
        (ou0, ov0), (ou1, ov1) = (other.lps_to_display(x) for x in (x0, x1))
        span = _clip(*span, float(ou0), float(ou1 - ou0), 0.0, other.columns)
        if span is not None:
            span = _clip(*span, float(ov0), float(ov1 - ov0), 0.0, other.rows)
    if span is None:
        return None
    a, b = p0 + span[0] * t, p0 + span[1] * t
    return ReferenceLine((float(a[0]), float(a[1])), (float(b[0]), float(b[1])),
                         current.display_to_lps(a[0], a[1]), current.display_to_lps(b[0], b[1]))
