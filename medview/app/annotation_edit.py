"""Editing a finished annotation, without Qt: its handles, and its points after a move or a
handle drag (display ``(u, v)`` points of its view, as :class:`Measurement.shape_points
<medview.app.measurements.Measurement.shape_points>`).

- every kind moves whole by a drag of its outline (:func:`moved`);
- a handle is one of its defining points (:func:`handles`): a line's ends, an angle's arm
  ends and vertex, a polygon's vertices, a text's anchor, a rectangle's corners (the
  opposite corner stays), an ellipse's axis ends (the opposite end stays; the other axis
  keeps its length, centred, at right angles) — :func:`with_handle`.

The state applies the result (:meth:`ViewerState.edit_measurement
<medview.app.annotation_state.AnnotationsAndKeyImages.edit_measurement>`): the values are
measured again from the new points and the change is the reader's work.
"""

from __future__ import annotations

import math

from medview.app.measurements import ROI_KINDS, Measurement

__all__ = ["bounds", "handles", "moved", "with_handle"]

Point = tuple[float, float]


def handles(m: Measurement) -> list[Point]:
    """The points of ``m`` a drag can move one by one."""
    return m.shape_points()


def moved(points: list[Point], du: float, dv: float) -> tuple[Point, ...]:
    """``points`` moved by ``(du, dv)`` display pixels."""
    return tuple((u + du, v + dv) for u, v in points)


def with_handle(kind: str, points: list[Point], index: int, to: Point) -> tuple[Point, ...]:
    """``points`` (of a shape of ``kind``) with handle ``index`` dragged to ``to``.

    Raises
    ------
    IndexError
        If ``index`` is not one of the shape's points.
    """
    pts = [tuple(map(float, p)) for p in points]
    if not 0 <= index < len(pts):
        raise IndexError(f"index: {index} is not one of the {len(pts)} points")
    to = (float(to[0]), float(to[1]))
    if kind == "rectangle" and len(pts) == 4:
        ou, ov = pts[(index + 2) % 4]  # the opposite corner stays
        (u0, u1), (v0, v1) = sorted((ou, to[0])), sorted((ov, to[1]))
        return ((u0, v0), (u1, v0), (u1, v1), (u0, v1))
    if kind == "ellipse" and len(pts) == 4:
        other = index ^ 1  # 0 ↔ 1 and 2 ↔ 3 are the ends of one axis
        fixed = pts[other]
        cu, cv = (fixed[0] + to[0]) / 2, (fixed[1] + to[1]) / 2
        au, av = to[0] - fixed[0], to[1] - fixed[1]
        length = math.hypot(au, av)
        a, b = (0, 1) if index < 2 else (2, 3)
        c, d = (2, 3) if index < 2 else (0, 1)
        half = math.dist(pts[c], pts[d]) / 2  # the other axis keeps its length
        if length == 0:
            nu, nv = 0.0, 0.0
        else:
            nu, nv = -av / length * half, au / length * half
        out = [(0.0, 0.0)] * 4
        out[a], out[b] = (fixed, to) if other == a else (to, fixed)
        out[c], out[d] = (cu - nu, cv - nv), (cu + nu, cv + nv)
        return tuple(out)
    pts[index] = to
    return tuple(pts)


def bounds(kind: str, points: tuple[Point, ...]) -> tuple[Point, Point]:
    """``p0`` and ``p1`` of a measurement with ``points``: an ROI's bounding box, else its
    first and last points."""
    if kind in ROI_KINDS:
        us, vs = [p[0] for p in points], [p[1] for p in points]
        return (min(us), min(vs)), (max(us), max(vs))
    return points[0], points[-1]
