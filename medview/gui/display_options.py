"""Display options of the views: smooth (bilinear) interpolation of zoomed images.

By default a zoomed image shows its voxels as sharp squares (nearest neighbour), which is
what measurements and label painting are judged against. RadiAnt and Weasis also offer a
smooth display; here View ▸ Smooth Zoomed Images draws the grey image with bilinear
filtering (Qt's smooth pixmap transform, at paint time: no resampled copy of the data).
Only the image is smoothed: label maps, scribbles and overlays stay sharp so their edges
show which voxels they hold. The choice is kept in the window's settings.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QAction, QPainter

__all__ = ["SMOOTH_KEY", "SmoothImageItem", "add_smooth_action"]

#: QSettings key of the smooth display choice ("1" or "0").
SMOOTH_KEY = "view/smooth_zoomed_images"


class SmoothImageItem(pg.ImageItem):
    """An ImageItem drawn with bilinear filtering when :attr:`smooth` is True."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.smooth = False

    def set_smooth(self, smooth: bool) -> None:
        if bool(smooth) != self.smooth:
            self.smooth = bool(smooth)
            self.update()

    def paint(self, painter: QPainter, *args) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        try:
            super().paint(painter, *args)
        finally:
            painter.restore()


def add_smooth_action(window, menu) -> QAction:
    """Add the checkable "Smooth Zoomed Images" to ``menu`` of main window ``window``.

    The action drives every view of ``window.view_grid`` and is stored under
    :data:`SMOOTH_KEY` in ``window.settings``; its stored state is applied now.
    """
    action = QAction("S&mooth Zoomed Images", window)
    action.setObjectName("smooth_action")
    action.setCheckable(True)
    action.setToolTip("Draw zoomed images with bilinear interpolation instead of sharp "
                      "voxels (labels and overlays stay sharp)")

    def apply(on: bool) -> None:
        window.view_grid.set_smooth(on)
        window.set_settings_value(SMOOTH_KEY, "1" if on else "0")

    action.toggled.connect(apply)
    menu.addAction(action)
    stored = window.settings_value(SMOOTH_KEY, "0") == "1"
    action.setChecked(stored)
    window.view_grid.set_smooth(stored)
    return action
