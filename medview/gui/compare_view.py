"""Series side by side: panes of a :class:`~medview.app.compare.Comparison`, each a slice
view of its own series with a header that shows and switches its link.

The synchronisation of slices and window is the Comparison's (no Qt); zoom and pan live in
each view's ViewBox, so they are copied here: the centre of the view that moved is mapped to
patient position, through the link to the other pane's position, and the other view is
centred there at the same millimetres per screen pixel. A series is dropped on a pane from
the browser (or from the comparison window's list of priors).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from medview.app.compare import Comparison, Pane
from medview.app.hanging import LAYOUT_SHAPES
from medview.gui.overlays import format_date
from medview.gui.series_browser import SERIES_MIME
from medview.gui.slice_viewer import SliceViewer

__all__ = ["LINK_TEXTS", "MENU_TEXTS", "ComparePane", "CompareView"]

#: What the link button says for each mode.
LINK_TEXTS = {"position": "Linked: position", "registration": "Linked: registered",
              "offset": "Linked: offset", "off": "Not linked"}
#: The link modes the header's menu offers.
MENU_TEXTS = {"position": "By position (same frame of reference)",
              "registration": "By registration", "off": "Not linked"}
_LINK_COLOURS = {"position": "#6c6", "registration": "#6cf", "offset": "#fc6", "off": "#999"}


class ComparePane(QWidget):
    """One pane: a header (series, link state and its menu) over a slice view.

    Signals
    -------
    series_dropped(int, str)
        A series (its UID) was dropped on pane ``index``.
    register_requested(int), link_here_requested(int)
        The header's menu asked to register this pane onto the reference, or to link the
        slices shown now.
    mode_requested(int, str)
        A link mode was chosen in the header's menu.
    """

    series_dropped = Signal(int, str)
    register_requested = Signal(int)
    link_here_requested = Signal(int)
    mode_requested = Signal(int, str)

    def __init__(self, pane: Pane, index: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.pane, self.index = pane, index
        self.setAcceptDrops(True)
        self.setObjectName(f"compare_pane_{index}")
        self.title = QLabel(self)
        self.title.setObjectName("pane_title")
        self.title.setStyleSheet("QLabel { color: #ddd; }")
        self.link_button = QToolButton(self)
        self.link_button.setObjectName("link_button")
        self.link_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.link_menu = QMenu(self.link_button)
        self.link_button.setMenu(self.link_menu)
        self.link_menu.aboutToShow.connect(self._fill_menu)
        self.viewer = SliceViewer(pane.state, self)
        self.viewer.setAcceptDrops(False)  # the pane takes the drop
        head = QHBoxLayout()
        head.setContentsMargins(4, 2, 4, 2)
        head.addWidget(self.title, 1)
        head.addWidget(self.link_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addLayout(head)
        box.addWidget(self.viewer, 1)
        self.setStyleSheet("ComparePane { background: #222; }")
        pane.link.events.all.connect(self.update_header)
        pane.state.volume_changed.connect(self.update_header)
        self.update_header()

    def update_header(self, *args) -> None:
        vol, link = self.pane.volume, self.pane.link
        if vol is None:
            self.title.setText("Drop a series here")
        else:
            meta = vol.metadata
            ref = " (reference)" if self.index == 0 else ""
            self.title.setText(f"{meta.get('Modality') or ''} "
                               f"{format_date(str(meta.get('StudyDate') or ''))} · "
                               f"{meta.get('SeriesDescription') or ''}{ref}")
        mode = "position" if self.index == 0 else link.mode
        text = "reference" if self.index == 0 else LINK_TEXTS[mode]
        self.link_button.setText(text)
        self.link_button.setToolTip(link.note or text)
        self.link_button.setStyleSheet(f"QToolButton {{ color: {_LINK_COLOURS[mode]}; }}")
        self.link_button.setEnabled(self.index > 0 and vol is not None)

    def _fill_menu(self) -> None:
        menu, link = self.link_menu, self.pane.link
        menu.clear()
        for mode in ("position", "registration", "off"):
            action = menu.addAction(MENU_TEXTS[mode],
                                    lambda m=mode: self.mode_requested.emit(self.index, m))
            action.setCheckable(True)
            action.setChecked(link.mode == mode)
            action.setEnabled(mode != "registration" or link.registered is not None)
        menu.addSeparator()
        menu.addAction("Register with the reference",
                       lambda: self.register_requested.emit(self.index))
        menu.addAction("Link here (these slices are the same place)",
                       lambda: self.link_here_requested.emit(self.index))
        window = menu.addAction("Window linked")
        window.setCheckable(True)
        window.setChecked(link.window)
        window.toggled.connect(lambda on: setattr(self.pane.link, "window", on))

    # -- drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(SERIES_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:
        uid = bytes(event.mimeData().data(SERIES_MIME)).decode("ascii", "replace").strip()
        if uid:
            event.acceptProposedAction()
            self.series_dropped.emit(self.index, uid)


class CompareView(QWidget):
    """The panes of ``comparison`` in a grid (1×1, 1×2, 2×1, 2×2).

    Signals
    -------
    series_dropped(int, str), register_requested(int), link_here_requested(int),
    mode_requested(int, str)
        From the panes (see :class:`ComparePane`).
    """

    series_dropped = Signal(int, str)
    register_requested = Signal(int)
    link_here_requested = Signal(int)
    mode_requested = Signal(int, str)

    def __init__(self, comparison: Comparison, parent: QWidget | None = None):
        super().__init__(parent)
        self.comparison = comparison
        self.panes: list[ComparePane] = []
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(3)
        self._layout = "1x2"
        self._panning = False
        self.set_layout("1x2")

    @property
    def layout_name(self) -> str:
        return self._layout

    def set_layout(self, layout: str) -> None:
        """Show ``layout``'s panes (keeping the series of the panes that stay)."""
        if layout not in LAYOUT_SHAPES:
            raise ValueError(f"layout: expected one of {tuple(LAYOUT_SHAPES)}, got {layout!r}")
        rows, cols = LAYOUT_SHAPES[layout]
        self._layout = layout
        self.comparison.set_pane_count(rows * cols)
        for widget in self.panes[rows * cols:]:
            self._grid.removeWidget(widget)
            widget.viewer.close()
            widget.deleteLater()
        self.panes = self.panes[:rows * cols]
        for k in range(len(self.panes), rows * cols):
            widget = ComparePane(self.comparison.panes[k], k, self)
            for name in ("series_dropped", "register_requested", "link_here_requested",
                         "mode_requested"):
                getattr(widget, name).connect(getattr(self, name).emit)
            widget.viewer.view_box.sigRangeChangedManually.connect(
                lambda *_a, i=k: self.sync_view_from(i))
            self.panes.append(widget)
        for k, widget in enumerate(self.panes):
            self._grid.addWidget(widget, k // cols, k % cols)
        for k in range(2):
            self._grid.setRowStretch(k, 1 if k < rows else 0)
            self._grid.setColumnStretch(k, 1 if k < cols else 0)

    def viewer(self, index: int) -> SliceViewer:
        return self.panes[index].viewer

    # -- zoom and pan ------------------------------------------------------------------
    def view_centre_lps(self, index: int) -> np.ndarray | None:
        """Patient position (LPS, mm) at the centre of pane ``index``'s view, on its slice."""
        viewer, state = self.viewer(index), self.comparison.panes[index].state
        g = viewer.geometry_
        if g is None:
            return None
        centre = viewer.view_box.viewRect().center()
        u, v = g.from_view(centre.x(), centre.y())
        ijk = g.display_to_index(u, v, state.plane_slice(viewer.plane))
        return np.asarray(state.volume.index_to_lps(tuple(float(c) for c in ijk)))

    def sync_view_from(self, index: int) -> None:
        """Centre the panes linked to pane ``index`` on the same place, at the same scale
        (mm per screen pixel)."""
        if self._panning:
            return
        source = self.viewer(index)
        lps = self.view_centre_lps(index)
        mm_per_px = source.view_box.viewPixelSize()[0]
        if lps is None or not mm_per_px or not math.isfinite(mm_per_px):
            return
        self._panning = True
        try:
            for k in self.comparison.linked_panes(index):
                if k >= len(self.panes):
                    continue
                self._centre_on(k, self.comparison.map_lps(index, k, lps), mm_per_px)
        finally:
            self._panning = False

    def _centre_on(self, index: int, lps, mm_per_px: float) -> None:
        viewer, state = self.viewer(index), self.comparison.panes[index].state
        g = viewer.geometry_
        if g is None:
            return
        ijk = state.volume.lps_to_index(np.asarray(lps, dtype=float))
        x, y = g.to_view(*g.index_to_display(ijk))
        box = viewer.view_box.boundingRect()
        w, h = box.width() * mm_per_px, box.height() * mm_per_px
        viewer.view_box.setRange(QRectF(x - w / 2, y - h / 2, w, h), padding=0.0)
