"""Series side by side: panes of a :class:`~medview.app.compare.Comparison`, each the views
of its own series (a :class:`~medview.gui.view_grid.ViewGrid` on the pane's state: one plane,
or the 2×2 MPR) with a header that shows and switches its link and the pane's view.

The synchronisation of slices and window is the Comparison's (no Qt); zoom and pan live in
each view's ViewBox, so they are copied here: the centre of the view that moved is mapped to
patient position, through the link to the other pane's position, and the other pane's view
of the same plane (axial, coronal or sagittal of its own series) is centred there at the same
millimetres per screen pixel. Scrolling any view moves the pane's 3-D crosshair, which the
Comparison maps in LPS, so every view of every linked pane lands on the same place. A series
is dropped on a pane from the browser (or from the comparison window's list of priors).
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
from medview.app.planes import PLANES
from medview.gui.overlays import format_date
from medview.gui.series_browser import SERIES_MIME
from medview.gui.slice_viewer import SliceViewer
from medview.gui.view_grid import ViewGrid

__all__ = ["LINK_TEXTS", "MENU_TEXTS", "VIEW_TEXTS", "ComparePane", "CompareView"]

#: What the link button says for each mode.
LINK_TEXTS = {"position": "Linked: position", "registration": "Linked: registered",
              "offset": "Linked: offset", "off": "Not linked"}
#: The link modes the header's menu offers.
MENU_TEXTS = {"position": "By position (same frame of reference)",
              "registration": "By registration", "off": "Not linked"}
#: The views a pane offers: one plane of its series, or the three planes (2×2 MPR).
VIEW_TEXTS = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal",
              "mpr": "MPR 2×2"}
_LINK_COLOURS = {"position": "#6c6", "registration": "#6cf", "offset": "#fc6", "off": "#999"}


class ComparePane(QWidget):
    """One pane: a header (series, view choice, link state and its menu) over the views of
    its series.

    Signals
    -------
    series_dropped(int, str)
        A series (its UID) was dropped on pane ``index``.
    register_requested(int), link_here_requested(int)
        The header's menu asked to register this pane onto the reference, or to link the
        slices shown now.
    mode_requested(int, str)
        A link mode was chosen in the header's menu.
    view_changed(int, str)
        Pane ``index`` now shows ``view`` (a plane, or ``"mpr"``).
    """

    series_dropped = Signal(int, str)
    register_requested = Signal(int)
    link_here_requested = Signal(int)
    mode_requested = Signal(int, str)
    view_changed = Signal(int, str)

    def __init__(self, pane: Pane, index: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.pane, self.index = pane, index
        self._view: str | None = None  # None: the acquired plane of whatever series is shown
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
        self.view_button = QToolButton(self)
        self.view_button.setObjectName("view_button")
        self.view_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.view_button.setToolTip("The view of this pane's series")
        self.view_menu = QMenu(self.view_button)
        for name, text in VIEW_TEXTS.items():
            action = self.view_menu.addAction(text, lambda n=name: self.set_view(n))
            action.setData(name)
            action.setCheckable(True)
        self.view_button.setMenu(self.view_menu)
        self.grid = ViewGrid(pane.state, self)
        for view in self.grid.views.values():
            view.setAcceptDrops(False)  # the pane takes the drop
        head = QHBoxLayout()
        head.setContentsMargins(4, 2, 4, 2)
        head.addWidget(self.title, 1)
        head.addWidget(self.view_button)
        head.addWidget(self.link_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addLayout(head)
        box.addWidget(self.grid, 1)
        self.setStyleSheet("ComparePane { background: #222; }")
        pane.link.events.all.connect(self.update_header)
        # after the grid's own handler (which goes back to the acquired plane): a chosen
        # view stays when another series is dropped on the pane
        pane.state.volume_changed.connect(self._on_volume_changed)
        self.grid.active_changed.connect(lambda *_: self._update_view_button())
        self.update_header()
        self._update_view_button()

    # -- the pane's view ---------------------------------------------------------------
    @property
    def viewer(self) -> SliceViewer:
        """The view keys act on: the plane shown alone, or the one last focused in MPR."""
        return self.grid.active_view

    @property
    def view_name(self) -> str:
        """``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"mpr"``."""
        return "mpr" if self.grid.layout_name == "2x2" else self.grid.active_plane

    def set_view(self, view: str) -> None:
        """Show one plane of the pane's series (``"axial"`` …) or the 2×2 MPR (``"mpr"``)."""
        if view not in VIEW_TEXTS:
            raise ValueError(f"view: expected one of {tuple(VIEW_TEXTS)}, got {view!r}")
        self._view = view
        self._apply_view()
        self.view_changed.emit(self.index, view)

    def _apply_view(self) -> None:
        if self._view == "mpr":
            self.grid.set_layout("2x2")
        else:
            if self._view in PLANES:
                self.grid.set_active_plane(self._view)
            self.grid.set_layout("single")
        self._update_view_button()

    def _on_volume_changed(self, *args) -> None:
        if self._view is not None:
            self._apply_view()
        self._update_view_button()  # without a choice: the new series' acquired plane
        self.update_header()

    def _update_view_button(self) -> None:
        name = self.view_name
        self.view_button.setText(VIEW_TEXTS[name])
        for action in self.view_menu.actions():
            action.setChecked(action.data() == name)

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
    mode_requested(int, str), view_changed(int, str)
        From the panes (see :class:`ComparePane`).
    """

    series_dropped = Signal(int, str)
    register_requested = Signal(int)
    link_here_requested = Signal(int)
    mode_requested = Signal(int, str)
    view_changed = Signal(int, str)

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
            for view in widget.grid.views.values():
                view.close()
            widget.deleteLater()
        self.panes = self.panes[:rows * cols]
        for k in range(len(self.panes), rows * cols):
            widget = ComparePane(self.comparison.panes[k], k, self)
            for name in ("series_dropped", "register_requested", "link_here_requested",
                         "mode_requested", "view_changed"):
                getattr(widget, name).connect(getattr(self, name).emit)
            for plane, view in widget.grid.views.items():
                view.view_box.sigRangeChangedManually.connect(
                    lambda *_a, i=k, p=plane: self.sync_view_from(i, p))
            self.panes.append(widget)
        for k, widget in enumerate(self.panes):
            self._grid.addWidget(widget, k // cols, k % cols)
        for k in range(2):
            self._grid.setRowStretch(k, 1 if k < rows else 0)
            self._grid.setColumnStretch(k, 1 if k < cols else 0)

    def viewer(self, index: int, plane: str | None = None) -> SliceViewer:
        """Pane ``index``'s view of ``plane`` (default: its active view)."""
        pane = self.panes[index]
        return pane.viewer if plane is None else pane.grid.views[plane]

    # -- zoom and pan ------------------------------------------------------------------
    def view_centre_lps(self, index: int, plane: str | None = None) -> np.ndarray | None:
        """Patient position (LPS, mm) at the centre of pane ``index``'s view of ``plane``
        (default: its active view), on its slice."""
        viewer, state = self.viewer(index, plane), self.comparison.panes[index].state
        g = viewer.geometry_
        if g is None:
            return None
        centre = viewer.view_box.viewRect().center()
        u, v = g.from_view(centre.x(), centre.y())
        ijk = g.display_to_index(u, v, state.plane_slice(viewer.plane))
        return np.asarray(state.volume.index_to_lps(tuple(float(c) for c in ijk)))

    def sync_view_from(self, index: int, plane: str | None = None) -> None:
        """Centre the views of ``plane`` (default: pane ``index``'s active view's) of the
        panes linked to pane ``index`` on the same place, at the same scale (mm per screen
        pixel)."""
        if self._panning:
            return
        source = self.viewer(index, plane)
        plane = source.plane
        lps = self.view_centre_lps(index, plane)
        mm_per_px = source.view_box.viewPixelSize()[0]
        if lps is None or not mm_per_px or not math.isfinite(mm_per_px):
            return
        self._panning = True
        try:
            for k in self.comparison.linked_panes(index):
                if k >= len(self.panes):
                    continue
                self._centre_on(k, plane, self.comparison.map_lps(index, k, lps), mm_per_px)
        finally:
            self._panning = False

    def _centre_on(self, index: int, plane: str, lps, mm_per_px: float) -> None:
        viewer, state = self.viewer(index, plane), self.comparison.panes[index].state
        g = viewer.geometry_
        if g is None or not viewer.isVisible():
            return  # a hidden view has no size to fill (it keeps its own zoom)
        ijk = state.volume.lps_to_index(np.asarray(lps, dtype=float))
        x, y = g.to_view(*g.index_to_display(ijk))
        box = viewer.view_box.boundingRect()
        w, h = box.width() * mm_per_px, box.height() * mm_per_px
        viewer.view_box.setRange(QRectF(x - w / 2, y - h / 2, w, h), padding=0.0)
