"""How a view draws an annotation: the shape as a path in view millimetres, and its text.

Every kind is drawn from its display points (:meth:`Measurement.shape_points
<medview.app.measurements.Measurement.shape_points>`) mapped to view millimetres through the
view's geometry, so a shape is where its values are taken, also on a sheared (tilted)
reformat: an ellipse through its axis ends (an affine map keeps an ellipse an ellipse), an
arrow's head at its second point, a text's anchor as a small cross.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

from medview.app.measurements import Measurement
from medview.app.planes import PlaneGeometry

__all__ = ["ARROW_HEAD_MM", "HANDLE_PX", "handle_path", "shape_item", "shape_path", "text_anchor"]

#: the length of an arrow's head and a text anchor's arms, as a fraction of the arrow (mm
#: bounds below)
ARROW_HEAD_MM = (2.0, 12.0)
_ELLIPSE_STEPS = 96
#: the size of the squares on a selected annotation's handles, in display pixels
HANDLE_PX = 6.0


def _view_points(m: Measurement, g: PlaneGeometry) -> np.ndarray:
    return np.array([g.to_view(u, v) for u, v in m.shape_points()], dtype=float)


def shape_path(m: Measurement, g: PlaneGeometry) -> QPainterPath:
    """The outline of ``m`` in view millimetres."""
    p = _view_points(m, g)
    path = QPainterPath()
    if m.kind == "ellipse" and len(p) == 4:
        centre = (p[0] + p[1]) / 2
        a, b = (p[1] - p[0]) / 2, (p[3] - p[2]) / 2
        t = np.linspace(0.0, 2 * np.pi, _ELLIPSE_STEPS, endpoint=False)[:, None]
        p = centre + np.cos(t) * a + np.sin(t) * b
        closed = True
    elif m.kind == "text":
        x, y = p[0]
        arm = 2.0 * max(g.pixel_mm)
        path.moveTo(x - arm, y)
        path.lineTo(x + arm, y)
        path.moveTo(x, y - arm)
        path.lineTo(x, y + arm)
        return path
    else:
        closed = m.kind in ("rectangle", "polygon")
    path.moveTo(QPointF(*p[0]))
    for x, y in p[1:]:
        path.lineTo(QPointF(x, y))
    if closed:
        path.closeSubpath()
    if m.kind == "arrow" and len(p) == 2:
        tail, head = p
        length = float(np.hypot(*(head - tail)))
        if length > 0:
            size = min(max(length * 0.25, ARROW_HEAD_MM[0]), ARROW_HEAD_MM[1])
            back = (tail - head) / length * size
            for angle in (math.radians(25), -math.radians(25)):
                c, s = math.cos(angle), math.sin(angle)
                wing = head + np.array([c * back[0] - s * back[1], s * back[0] + c * back[1]])
                path.moveTo(QPointF(*head))
                path.lineTo(QPointF(*wing))
    return path


def handle_path(m: Measurement, g: PlaneGeometry) -> QPainterPath:
    """Small squares (:data:`HANDLE_PX` display pixels across) on the handles of ``m``: the
    points a drag reshapes (:func:`medview.app.annotation_edit.handles`)."""
    from medview.app.annotation_edit import handles

    half = HANDLE_PX / 2 * max(g.pixel_mm)
    path = QPainterPath()
    for u, v in handles(m):
        x, y = g.to_view(u, v)
        path.addRect(x - half, y - half, 2 * half, 2 * half)
    return path


def shape_item(m: Measurement, g: PlaneGeometry, pen, *,
               selected: bool = False) -> QGraphicsPathItem:
    """A scene item drawing ``m`` with ``pen`` (in view millimetres); ``selected`` adds
    its handles."""
    path = shape_path(m, g)
    if selected:
        path.addPath(handle_path(m, g))
    item = QGraphicsPathItem(path)
    item.setPen(pen)
    return item


def text_anchor(m: Measurement, g: PlaneGeometry) -> tuple[float, float]:
    """Where the text of ``m`` starts (view mm): right of the shape, at its top."""
    p = _view_points(m, g)
    if m.kind == "ellipse" and len(p) == 4:
        centre = (p[0] + p[1]) / 2
        reach = np.abs(p - centre).max(axis=0)
        return float(centre[0] + reach[0]), float(centre[1] - reach[1])
    if m.kind == "arrow":
        return float(p[0][0]), float(p[0][1])  # at the tail: the head points at the finding
    return float(p[:, 0].max()), float(p[:, 1].min())
