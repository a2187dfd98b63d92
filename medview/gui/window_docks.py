"""The main window's docks beside the views: Segmentation and Fusion, the processing chain
with its layers and table, and the settings around them (memory for open series, remote
endpoints). A mixin of :class:`~medview.gui.main_window.MainWindow`, split out of it along
that seam; the panels run their work on the window's task runner and "Run on" choice.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QToolBar

from medview.gui.fusion_panel import FusionPanel
from medview.gui.segment_panel import SegmentPanel

__all__ = ["DocksMixin"]

log = logging.getLogger(__name__)


class DocksMixin:
    """Mixed into MainWindow (before QMainWindow)."""

    def _build_segment_dock(self) -> None:
        self.segment_panel = SegmentPanel(self.state, self.tasks, self, run_on=self.run_on)
        self.segment_dock = QDockWidget("Segmentation", self)
        self.segment_dock.setObjectName("segment_dock")
        self.segment_dock.setWidget(self.segment_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.segment_dock)
        self.segment_dock.hide()  # View ▸ Segmentation, or choosing a paint tool, shows it
        self.segment_panel.task_started.connect(self._track_progress)
        self.segment_panel.failed.connect(self._show_error)
        # the undo/redo shortcuts work wherever the focus is in the window
        self.addAction(self.segment_panel.undo_action)
        self.addAction(self.segment_panel.redo_action)
        self.state.tool_changed.connect(self._on_tool_changed_show_panel)

        self.fusion_panel = FusionPanel(self.state, self.tasks, lambda: self.catalog, self,
                                        cached=self.session.cached_volume, run_on=self.run_on)
        self.fusion_dock = QDockWidget("Fusion", self)
        self.fusion_dock.setObjectName("fusion_dock")
        self.fusion_dock.setWidget(self.fusion_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.fusion_dock)
        self.tabifyDockWidget(self.segment_dock, self.fusion_dock)
        self.fusion_dock.hide()
        self.fusion_panel.task_started.connect(self._track_progress)
        self.fusion_panel.failed.connect(self._show_error)

    def _on_tool_changed_show_panel(self, tool: str) -> None:
        if tool in ("brush", "eraser", "fill") and not self.segment_dock.isVisible():
            self.segment_dock.show()

    # -- chain panel, layers and tables (issue 5) --------------------------------------
    def _build_chain_docks(self) -> None:
        """The processing-chain dock and the layers dock (right), the table dock (bottom)."""
        from medview.gui.chain_panel import ChainPanel
        from medview.gui.layers import LayerBinding, LayerList
        from medview.gui.layers_panel import LayersPanel, TablePanel, make_dock

        self.layers = LayerList()
        self.layer_binding = LayerBinding(self.layers, self.state)
        self.chain_panel = ChainPanel(self.state, self.layers, self.tasks, self,
                                      run_on=self.run_on)
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
        self.state.volume_changed.connect(self.layers.set_series)
        self.layers.set_series(self.state.volume)
        for view in self.views.values():
            view.point_picked.connect(self.chain_panel.add_picked_point)
        self.chain_panel.run_started.connect(self._track_progress)
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

    # -- remote endpoints (issue 6) ----------------------------------------------------
    def _build_cache_action(self) -> None:
        self.cache_action = QAction("&Memory for Open Series…", self)
        self.cache_action.setObjectName("action_volume_cache")
        self.cache_action.setToolTip("How much memory decoded series may keep, so that "
                                     "reopening them is instant")
        self.cache_action.triggered.connect(self.open_cache_dialog)
        self._menu("Settings").addAction(self.cache_action)

    def open_cache_dialog(self):
        """Ask for the volume cache's cap in MiB (non-modal); applied and stored on OK."""
        import psutil
        from PySide6.QtWidgets import QInputDialog

        dialog = QInputDialog(self)
        dialog.setWindowTitle("Memory for open series")
        ram_mb = psutil.virtual_memory().total / 2**20
        dialog.setLabelText(
            f"Keep up to this many MiB of decoded series (0: none).\n"
            f"Now {self.volume_cache.nbytes / 2**20:.0f} of "
            f"{self.volume_cache.cap_bytes / 2**20:.0f} MiB in use; this machine has "
            f"{ram_mb:.0f} MiB.")
        dialog.setInputMode(QInputDialog.InputMode.IntInput)
        dialog.setIntRange(0, int(ram_mb))
        dialog.setIntValue(int(self.volume_cache.cap_bytes / 2**20))
        dialog.intValueSelected.connect(self.set_cache_cap_mb)
        dialog.open()
        self.cache_dialog = dialog
        return dialog

    def _build_remote_actions(self) -> None:
        self.endpoints_action = QAction("&Remote Endpoints…", self)
        self.endpoints_action.setObjectName("action_remote_endpoints")
        self.endpoints_action.setToolTip("Servers a chain can run on (Run on)")
        self.endpoints_action.triggered.connect(self.open_endpoints_dialog)
        self._menu("Settings").addAction(self.endpoints_action)
        try:  # the configured endpoints join "Run on"; a broken config is a message
            from medview.remote.executor import sync_endpoint_executors

            sync_endpoint_executors()
        except Exception as exc:  # error boundary
            log.warning("remote endpoints not available: %s", exc)

    def open_endpoints_dialog(self):
        from medview.gui.endpoints_dialog import EndpointsDialog

        dialog = EndpointsDialog(self.tasks, self)
        dialog.open()
        self.endpoints_dialog = dialog
        return dialog
