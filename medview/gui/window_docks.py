"""The main window's docks (Segmentation, Fusion, Processing chain, Layers, Feature table)
around the views (a mixin of
:class:`~medview.gui.main_window.MainWindow`, split out of it along that seam).

The docks get the window's :class:`~medview.app.session.Session` and call its methods; their
jobs reach the progress area through the session's ``job_started``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDockWidget, QToolBar

from medview.gui.fusion_panel import FusionPanel
from medview.gui.segment_panel import SegmentPanel

__all__ = ["DocksMixin"]


class DocksMixin:
    """Docks and tool bar of the MainWindow (see there)."""

    # -- segmentation and fusion -------------------------------------------------------
    def _build_segment_dock(self) -> None:
        self.segment_panel = SegmentPanel(self.state, self.session, self)
        self.segment_dock = QDockWidget("Segmentation", self)
        self.segment_dock.setObjectName("segment_dock")
        self.segment_dock.setWidget(self.segment_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.segment_dock)
        self.segment_dock.hide()  # View ▸ Segmentation, or choosing a paint tool, shows it
        self.segment_panel.failed.connect(self._show_error)
        # the undo/redo shortcuts work wherever the focus is in the window
        self.addAction(self.segment_panel.undo_action)
        self.addAction(self.segment_panel.redo_action)
        self.state.tools.events.tool.connect(self._on_tool_changed_show_panel)

        self.fusion_panel = FusionPanel(self.state, self.session, self)
        self.fusion_dock = QDockWidget("Fusion", self)
        self.fusion_dock.setObjectName("fusion_dock")
        self.fusion_dock.setWidget(self.fusion_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.fusion_dock)
        self.tabifyDockWidget(self.segment_dock, self.fusion_dock)
        self.fusion_dock.hide()
        self.fusion_panel.failed.connect(self._show_error)

    def _on_tool_changed_show_panel(self, tool: str) -> None:
        if tool in ("brush", "eraser", "fill") and not self.segment_dock.isVisible():
            self.segment_dock.show()

    # -- chain panel, layers and tables (issue 5) --------------------------------------
    def _build_chain_docks(self) -> None:
        """The processing-chain dock and the layers dock (right), the table dock (bottom)."""
        from medview.gui.chain_panel import ChainPanel
        from medview.gui.layers_panel import LayersPanel, TablePanel, make_dock

        self.layers = self.state.layers
        self.chain_panel = ChainPanel(self.state, self.layers, self.session, self)
        self.chain_panel.error_handler = self._show_error
        self.chain_dock = make_dock("Processing chain", "chain_dock", self.chain_panel, self)
        self.layers_panel = LayersPanel(self.layers, self.state, self)
        self.layers_dock = make_dock("Layers", "layers_dock", self.layers_panel, self)
        self.table_panel = TablePanel(self)
        self.table_dock = make_dock("Feature table", "table_dock", self.table_panel, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.chain_dock)
        self.tabifyDockWidget(self.chain_dock, self.layers_dock)
        self.chain_dock.raise_()
        self.resizeDocks([self.chain_dock], [440], Qt.Orientation.Horizontal)
        # closed at start, so the views keep the room when no processing is wanted; the
        # "Chain" tool button (Ctrl+K) and View menu open them
        for dock in (self.chain_dock, self.layers_dock):
            dock.setVisible(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.table_dock)
        self.table_dock.setVisible(False)
        for view in self.views.values():
            view.point_picked.connect(self.chain_panel.add_picked_point)
        self.cancel_button.clicked.connect(self.chain_panel.cancel_run)
        self.chain_panel.run_finished.connect(self._on_chain_run_finished)
        self.layers_panel.table_requested.connect(self.show_table_layer)
        self.layers_panel.error.connect(self._show_error)
        self.table_panel.error.connect(self._show_error)
        view_menu = next(a.menu() for a in self.menuBar().actions() if a.text() == "&View")
        for dock in (self.chain_dock, self.layers_dock, self.table_dock):
            view_menu.addAction(dock.toggleViewAction())
        self.chain_action = self.chain_dock.toggleViewAction()
        self.chain_action.setText("Chain")
        self.chain_action.setShortcut(QKeySequence("Ctrl+K"))
        self.chain_action.setToolTip("Processing chain: build, preview and run (Ctrl+K)")
        self.chain_action.toggled.connect(self._on_chain_action_toggled)
        tool_bar = self.findChild(QToolBar, "tools_toolbar")
        if tool_bar is not None:
            tool_bar.addSeparator()
            tool_bar.addAction(self.chain_action)

    def _on_chain_run_finished(self, _layers) -> None:
        # the run's main output is shown (by the panel): the layers come forward with it
        self.layers_dock.setVisible(True)
        self.layers_dock.raise_()
        self.layers_panel.select(self.chain_panel.main_layer)

    def _on_chain_action_toggled(self, on: bool) -> None:
        if on:  # the layers come with the chain (tabbed beside it)
            self.layers_dock.setVisible(True)
            QTimer.singleShot(0, self.chain_dock.raise_)  # after the dock has been shown

    def show_table_layer(self, layer) -> None:
        """Show a table layer in the table dock."""
        self.table_panel.set_table(layer.value, layer.name)
        self.table_dock.setVisible(True)
        self.table_dock.raise_()
