"""Reference lines on a slice view: where the other views' planes, and the study's
localizer, cut it.

View ▸ Reference Lines (``state.mpr.model.reference_lines``) draws, on every view, one line
per other view (in that view's colour: axial red, coronal green, sagittal blue) and one for
the localizer (magenta) when the study has one in the same frame of reference
(:func:`medview.app.localizer.find_localizer`). The segments come from
:meth:`medview.app.mpr_model.MprViews.reference_lines` (clipped to both images), in the
view's display coordinates, drawn through the same display → view mm mapping as the image
(acquired slice, sheared reformat or oblique plane). They follow the crosshair, the
rotation and the slab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsLineItem

if TYPE_CHECKING:
    from medview.gui.slice_viewer import SliceViewer

__all__ = ["REFERENCE_COLOURS", "ReferenceLinesItem"]

#: colour of each plane's line, and of the localizer's
REFERENCE_COLOURS = {"axial": QColor(255, 70, 70), "coronal": QColor(60, 220, 60),
                     "sagittal": QColor(70, 140, 255), "localizer": QColor(255, 0, 255)}
LINE_WIDTH_PX = 2


class ReferenceLinesItem:
    """The reference lines of one view (a line item per other plane and the localizer)."""

    def __init__(self, view: SliceViewer):
        self.view = view
        state = view.state
        self.items: dict[str, QGraphicsLineItem] = {}
        for name, colour in REFERENCE_COLOURS.items():
            item = QGraphicsLineItem()
            pen = QPen(colour)
            pen.setWidth(LINE_WIDTH_PX)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(11)  # over the crosshair: the lines are asked for
            item.setVisible(False)
            view.view_box.addItem(item, ignoreBounds=True)
            self.items[name] = item
        #: the segments drawn, display coordinates of the view: name → ReferenceLine
        self.lines: dict = {}
        model = state.mpr.model
        for event in (model.events.reference_lines, model.events.localizer, model.events.frame,
                      model.events.coarse):
            event.connect(self.update)
        state.camera.events.cursor.connect(self.update)
        state.slab.model.events.all.connect(self.update)
        state.volume_changed.connect(self._after_volume)

    def _after_volume(self, *args) -> None:
        # the view takes its new geometry in its own handler, which runs after this one
        self.lines = {}
        for item in self.items.values():
            item.setVisible(False)

    def update(self, *args) -> None:
        view = self.view
        state = view.state
        shown = state.mpr.model.reference_lines and view.geometry_ is not None \
            and state.volume is not None and getattr(view, "_annotations_shown", True)
        self.lines = dict(state.mpr.reference_lines(view.plane)) if shown else {}
        for name, item in self.items.items():
            line = self.lines.get(name)
            if line is None:
                item.setVisible(False)
                continue
            item.setLine(QLineF(view.oblique.display_to_view(*line.start),
                                view.oblique.display_to_view(*line.end)))
            item.setVisible(True)
