"""The window's style: Qt's Fusion with check boxes that can be seen on the dark palette.

Fusion draws a check box as a box filled with the Base colour and outlined in a darker
Window colour; on medview's dark palette (:func:`medview.gui.app.dark_palette`) the outline of
an unticked box in a list (the layers' show/hide boxes, the chain's enable boxes) has almost
no contrast with the list behind it. This proxy draws both kinds of check indicator with a
light outline and a clear tick.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleFactory

__all__ = ["OUTLINE", "TICK", "MedviewStyle"]

#: the indicator's outline and tick: light on the dark Base (30, 30, 32)
OUTLINE = QColor(175, 175, 180)
TICK = QColor(240, 240, 240)
_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorItemViewItemCheck,
               QStyle.PrimitiveElement.PE_IndicatorCheckBox)


class MedviewStyle(QProxyStyle):
    """Fusion, with visible check indicators."""

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element, option, painter: QPainter, widget=None) -> None:
        if element not in _INDICATORS:
            super().drawPrimitive(element, option, painter, widget)
            return
        state = option.state
        enabled = bool(state & QStyle.StateFlag.State_Enabled)
        r = option.rect
        side = max(min(r.width(), r.height()) - 3, 6)
        # whole pixels + 0.5: a 1-pixel outline falls on one row of pixels, crisp
        left = r.x() + (r.width() - side) // 2 + 0.5
        top = r.y() + (r.height() - side) // 2 + 0.5
        box = QRectF(left, top, side, side)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(option.palette.base())
        outline = OUTLINE if enabled else OUTLINE.darker(170)
        painter.setPen(QPen(outline, 1.0))
        painter.drawRoundedRect(box, 2.0, 2.0)
        pen = QPen(TICK if enabled else TICK.darker(170), max(1.6, side / 7.0))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        x, y, s = box.x(), box.y(), side
        if state & QStyle.StateFlag.State_On:
            painter.drawPolyline(QPolygonF([QPointF(x + 0.22 * s, y + 0.52 * s),
                                            QPointF(x + 0.42 * s, y + 0.72 * s),
                                            QPointF(x + 0.78 * s, y + 0.28 * s)]))
        elif state & QStyle.StateFlag.State_NoChange:
            painter.drawLine(QPointF(x + 0.25 * s, y + 0.5 * s), QPointF(x + 0.75 * s, y + 0.5 * s))
        painter.restore()
