"""The layers a slice view draws over its image: labels and scribbles, the fused series,
the RGB overlay, the slice preview and the measurements.

:class:`ViewLayers` is mixed into :class:`~medview.gui.slice_viewer.SliceViewer`: it uses the
view's ``state``, ``plane``, ``view_box``, ``_geometry`` and its image items.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QTransform

from medview.app.annotation_model import annotation_of, annotation_text
from medview.app.measurements import Measurement
from medview.gui.annotation_items import shape_item, text_anchor
from medview.gui.colormaps import colormap_lut, fusion_lut, label_lut, label_rgba

__all__ = ["MEASURE_COLOUR", "ViewLayers"]

MEASURE_COLOUR = QColor(80, 220, 255)


class ViewLayers:
    """Draws the slice's layers and measurements in view millimetres. A mixin of
    :class:`~medview.gui.slice_viewer.SliceViewer`."""

    def _set_item_image(self, item: pg.ImageItem, image: np.ndarray, **kw) -> None:
        """``item.setImage(image, **kw)``, then place it over the slice in millimetres (the
        aspect lock then gives the true shape of the anatomy; a sheared reformat is drawn as
        the parallelogram it is in patient space).

        The placement is a transform from display pixels to view millimetres, set after every
        image: pyqtgraph 0.14 scales ``setRect`` of an item that holds no image yet as a
        1-pixel image (drawn hundreds of times too big), and a rect cannot express a shear.
        """
        item.setImage(image, **kw)
        item.setTransform(self.item_transform())

    def _show_fusion(self) -> None:
        image = self.state.fusion_image(self.plane)
        if image is None:
            self.fusion_item.clear()
            self.fusion_item.setVisible(False)
            return
        self._set_item_image(self.fusion_item, image, autoLevels=False,
                             levels=self.state.fusion_window,
                             lut=fusion_lut(self.state.fusion_colormap))
        self.fusion_item.setOpacity(self.state.fusion_opacity)
        self.fusion_item.setVisible(True)

    #: Scribbles are drawn nearly opaque over the (translucent) segmentation they train.
    SCRIBBLE_OPACITY = 0.9

    def _show_labels(self) -> None:
        for item, which, opacity in ((self.label_item, "labels", self.state.label_opacity),
                                     (self.scribble_item, "scribbles", self.SCRIBBLE_OPACITY)):
            labels = self.state.label_image(self.plane, which)
            if labels is None:
                item.clear()
                item.setVisible(False)
                continue
            lm = self.state.labels if which == "labels" else self.state.scribbles
            lut = label_lut(lm.segments, opacity)
            self._set_item_image(item, label_rgba(labels, lut), autoLevels=False, levels=(0, 255))
            item.setVisible(True)

    # -- RGB overlay and slice preview (chain panel layers) -----------------------------
    def _add_layer_items(self) -> None:
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(4)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_item.setZValue(7)
        for item in (self.overlay_item, self.preview_item):
            item.setVisible(False)
            self.view_box.addItem(item)
        self.state.layers.events.rgb.connect(self._show_overlay)
        self.state.overlay_model.events.all.connect(self._show_overlay)
        self.state.preview_model.events.all.connect(self._show_preview)

    def _place_layer_item(self, item: pg.ImageItem, image: np.ndarray | None, **kw) -> None:
        if image is None or self._geometry is None:
            item.clear()
            item.setVisible(False)
            return
        self._set_item_image(item, image, autoLevels=False, **kw)
        item.setVisible(True)

    def _show_overlay(self) -> None:
        image = self.state.overlay_image(self.plane)
        self._place_layer_item(self.overlay_item, image, levels=(0, 255))
        self.overlay_item.setOpacity(self.state.overlay_opacity)

    def _show_preview(self) -> None:
        image = self.state.preview_image(self.plane)
        p = self.state.preview
        if image is None or p is None:
            self._place_layer_item(self.preview_item, None)
        elif p.kind == "labels":
            lut = label_lut(p.segments, self.state.label_opacity, int(image.max(initial=0)) + 1)
            self._place_layer_item(self.preview_item, label_rgba(image, lut), levels=(0, 255))
        elif p.kind == "rgb":
            self._place_layer_item(self.preview_item, image, levels=(0, 255))
        else:
            lut = colormap_lut(self.state.colormap, inverted=self.state.inverted)
            self._place_layer_item(self.preview_item, image, levels=p.levels, lut=lut)

    # -- measurements ------------------------------------------------------------------
    def display_point(self, view_point: QPointF) -> tuple[float, float]:
        """View (mm) coordinates → display pixel coordinates ``(u, v)``."""
        return self._geometry.from_view(view_point.x(), view_point.y())

    def item_transform(self) -> QTransform:
        """Display pixels → view mm: the transform of the image and of every layer."""
        m = self._geometry.view_matrix
        return QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])

    def start_measurement(self, start: tuple[float, float]) -> Measurement:
        m = Measurement(self.state.tool, self.plane, self.state.plane_slice(self.plane),
                        start, start)
        return self.state.add_measurement(m)

    def measurement_text(self, m: Measurement) -> str:
        """What the view writes beside a measurement: the values the report saves
        (:func:`~medview.app.annotation_model.annotation_text`)."""
        return annotation_text(annotation_of(m, self.state.volume, self._geometry), m)

    def _draw_measurements(self) -> None:
        for item in self._measure_items:
            self.view_box.removeItem(item)
        self._measure_items = []
        self.measurement_texts = {}
        g = self._geometry
        if g is None or self.oblique.active:
            return  # measurements live on the acquired slices: not drawn on an oblique plane
        pen = pg.mkPen(MEASURE_COLOUR, width=2)
        pen.setCosmetic(True)
        for m in self.state.measurements_on(self.plane, self.state.plane_slice(self.plane)):
            # drawn in view millimetres from the display points: the outline is where the
            # values are taken, also on a sheared (tilted) reformat
            shape = shape_item(m, g, pen,
                               selected=m is self.annotation_tools.editor.selected)
            shape.setZValue(20)
            self.view_box.addItem(shape, ignoreBounds=True)
            text = self.measurement_text(m)
            self.measurement_texts[m.id] = text
            label = pg.TextItem(text, color=MEASURE_COLOUR, anchor=(0, 1),
                                fill=pg.mkBrush(0, 0, 0, 140))
            label.setPos(*text_anchor(m, g))
            label.setZValue(21)
            label.setVisible(bool(text) and getattr(self, "_annotations_shown", True))
            self.view_box.addItem(label, ignoreBounds=True)
            self._measure_items += [shape, label]
        self.place_floating_labels()

    # -- view → state ------------------------------------------------------------------
