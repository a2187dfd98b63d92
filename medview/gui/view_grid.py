"""The central views: one slice view, or a 2×2 grid of axial, coronal and sagittal views.

In the 2×2 layout the fourth cell shows the series' facts and the crosshair's position; the
views share one :class:`~medview.app.state.ViewerState`, so a click in one moves the others
(crosshair) and window, invert and colour map apply to all. Double-click a view to show it
alone; double-click again to return to the grid.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from medview.app.planes import PLANES
from medview.app.state import ViewerState
from medview.fileperms import give_user_mode
from medview.gui.overlays import format_date, format_person_name
from medview.gui.slice_viewer import SliceViewer, save_widget_png

__all__ = ["LAYOUTS", "ViewGrid"]

LAYOUTS = ("single", "2x2")


class _InfoLabel(QLabel):
    """The fourth cell: asks for the size of a view, not of its (wrapped) text."""

    def sizeHint(self) -> QSize:
        return QSize(400, 400)

    def minimumSizeHint(self) -> QSize:
        return QSize(160, 160)

    def hasHeightForWidth(self) -> bool:
        # a word-wrapped label asks for the height its text needs at its width, and the grid
        # gave its row that height before the other row's
        return False


class ViewGrid(QWidget):
    """Three plane views of one state, laid out as one view or a 2×2 grid.

    Signals
    -------
    layout_changed(str)
        ``"single"`` or ``"2x2"``.
    active_changed(str)
        The plane of the view keys and cine act on.
    """

    layout_changed = Signal(str)
    active_changed = Signal(str)

    def __init__(self, state: ViewerState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.views: dict[str, SliceViewer] = {}
        for plane in PLANES:
            view = SliceViewer(state, self, plane=plane)
            view.setObjectName(f"view_{plane}")
            view.maximise_requested.connect(self._on_maximise_requested)
            view.focused.connect(self._on_view_focused)
            self.views[plane] = view
        self.info = _InfoLabel(self)
        self.info.setObjectName("series_info")
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setWordWrap(True)
        self.info.setStyleSheet("QLabel { background: #111; color: #ccc; padding: 10px; }")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.views["axial"], 0, 0)
        grid.addWidget(self.views["coronal"], 0, 1)
        grid.addWidget(self.views["sagittal"], 1, 0)
        grid.addWidget(self.info, 1, 1)
        self._grid_layout = grid
        self.info.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._layout = "single"
        self._active: str | None = None
        self.info.setVisible(False)
        state.volume_changed.connect(self._on_volume_changed)
        state.camera.events.cursor.connect(self._update_info)
        self._apply()

    # -- layout ------------------------------------------------------------------------
    @property
    def layout_name(self) -> str:
        return self._layout

    @property
    def active_plane(self) -> str:
        """The view shown alone in the single layout (default: the acquired plane)."""
        return self._active or self.state.native_plane

    @property
    def active_view(self) -> SliceViewer:
        return self.views[self.active_plane]

    def set_layout(self, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
        if layout != self._layout:
            self._layout = layout
            self._apply()
            self.layout_changed.emit(layout)

    def toggle_layout(self) -> None:
        self.set_layout("2x2" if self._layout == "single" else "single")

    def set_active_plane(self, plane: str) -> None:
        if plane not in PLANES:
            raise ValueError(f"plane: expected one of {PLANES}, got {plane!r}")
        if plane != self.active_plane or self._active is None:
            self._active = plane
            self._apply()
            self.active_changed.emit(plane)

    def _on_maximise_requested(self, plane: str) -> None:
        if self._layout == "2x2":
            self._active = plane
            self.set_layout("single")
            self.active_changed.emit(plane)
        else:
            self.set_layout("2x2")
        self.views[plane].setFocus()

    def _on_view_focused(self, plane: str) -> None:
        if self._layout == "2x2" and plane != self._active:
            self._active = plane
            self.active_changed.emit(plane)

    def _apply(self) -> None:
        grid = self._layout == "2x2"
        active = self.active_plane
        for plane, view in self.views.items():
            view.setVisible(grid or plane == active)
            view.set_crosshair_visible(grid)
        self.info.setVisible(grid)
        # 2×2: four equal cells whatever the texts (the info cell's wrapped warnings must
        # not claim a taller row; the views' badges list them all); single: no stretch, or
        # the hidden cells' rows and columns would keep their share
        for k in (0, 1):
            self._grid_layout.setRowStretch(k, 1 if grid else 0)
            self._grid_layout.setColumnStretch(k, 1 if grid else 0)
        self._update_info()

    def set_smooth(self, smooth: bool) -> None:
        """Draw the images of all views smoothly (bilinear) or as sharp voxels."""
        for view in self.views.values():
            view.image_item.set_smooth(smooth)

    def _on_volume_changed(self, volume) -> None:
        self._active = None  # a new series opens on its acquired plane
        self._apply()

    def save_png(self, path, *, overlays: bool = True):
        """Save what is shown (the grid, or the single view) as a PNG; see
        :func:`~medview.gui.slice_viewer.save_widget_png`.

        ``overlays=False`` leaves out the text, orientation letters, crosshair and
        measurements (the image, label and fusion layers stay): a picture for a slide.
        """
        views = list(self.views.values())
        if not overlays:
            for view in views:
                view.set_annotations_visible(False)
        try:
            saved = save_widget_png(self if self._layout == "2x2" else self.active_view, path)
            give_user_mode(saved)  # written through mkstemp (0600): for others to read too
            return saved
        finally:
            if not overlays:
                for view in views:
                    view.set_annotations_visible(True)

    # -- the fourth cell ---------------------------------------------------------------
    def _update_info(self, *args) -> None:
        if self._layout != "2x2":
            return
        vol = self.state.volume
        if vol is None:
            self.info.setText("")
            return
        meta = vol.metadata
        nz, ny, nx = vol.shape[:3]
        sx, sy, sz = vol.spacing
        lps = self.state.cursor_lps()
        x, y, z = self.state.cursor
        esc = html.escape
        lines = [
            f"<b>{esc(format_person_name(meta.get('PatientName') or '') or '(no name)')}</b>",
            esc(f"{meta.get('Modality') or ''} · {format_date(meta.get('StudyDate') or '')}"),
            esc(str(meta.get("SeriesDescription") or "")),
            f"{nx} × {ny} × {nz} voxels, {sx:.3g} × {sy:.3g} × {sz:.3g} mm",
            f"acquired plane: {self.state.native_plane}",
            "",
            f"crosshair: voxel ({x}, {y}, {z})",
            f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm",
        ]
        sample = self.state.sample_index(x, y, z)
        if sample is not None and not isinstance(sample.value, tuple):
            lines.append(f"value {sample.value:.6g} {sample.units}".rstrip())
        for warning in vol.warnings[:3]:
            lines.append(f"<span style='color:#e0a040'>⚠ {esc(str(warning))}</span>")
        self.info.setText("<br>".join(lines))
