"""The main window's menus (File, Image, View) and its tool bar: the actions that act on
the views and the state (a mixin of :class:`~medview.gui.main_window.MainWindow`, split out
of it along that seam; the other menus, e.g. Settings and Help, come from their own modules).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QSlider, QSpinBox, QToolBar, QToolButton

from medview.app.models import COLORMAPS
from medview.app.windowing import CT_PRESETS
from medview.gui.display_options import add_smooth_action

__all__ = ["MenusMixin"]


class MenusMixin:
    """Menus and tool bar of the MainWindow (see there)."""

    def _build_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.import_action = QAction("&Import Folder…", self)
        self.import_action.setShortcut(QKeySequence.StandardKey.Open)
        self.import_action.triggered.connect(self.choose_folder_to_import)
        file_menu.addAction(self.import_action)
        self.save_png_action = QAction("&Save View as PNG…", self)
        self.save_png_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_png_action.triggered.connect(self.choose_png_to_save)
        file_menu.addAction(self.save_png_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.request_close)
        file_menu.addAction(quit_action)

        image_menu = self.menuBar().addMenu("&Image")
        self.image_menu = image_menu
        self.preset_actions: dict[int, QAction] = {}
        for preset in CT_PRESETS:
            action = QAction(f"{preset.name}  (W {preset.width:g} / L {preset.center:g})", self)
            action.setShortcut(QKeySequence(str(preset.key)))
            action.setToolTip("CT preset; on MR and PET: automatic window (1–99 %)")
            action.triggered.connect(lambda checked=False, k=preset.key: self.apply_preset(k))
            image_menu.addAction(action)
            self.preset_actions[preset.key] = action
        image_menu.addSeparator()
        auto = QAction("&Automatic Window (1–99 %)", self)
        auto.setShortcut(QKeySequence("A"))
        auto.triggered.connect(self.state.auto_window)
        image_menu.addAction(auto)
        self.reset_action = QAction("&Reset View", self)
        self.reset_action.setShortcut(QKeySequence("R"))
        self.reset_action.triggered.connect(self.state.reset)
        image_menu.addAction(self.reset_action)
        self.invert_action = QAction("&Invert", self)
        self.invert_action.setShortcut(QKeySequence("I"))
        self.invert_action.setCheckable(True)
        self.invert_action.toggled.connect(self.state.set_inverted)
        self.state.display.events.inverted.connect(self._on_invert_changed)
        image_menu.addAction(self.invert_action)

        colour_menu = image_menu.addMenu("&Colour Map")
        self.colormap_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name in COLORMAPS:
            action = QAction(name.capitalize(), self, checkable=True)
            action.setChecked(name == self.state.colormap)
            action.triggered.connect(lambda checked=False, n=name: self.state.set_colormap(n))
            group.addAction(action)
            colour_menu.addAction(action)
            self.colormap_actions[name] = action
        self.state.display.events.colormap.connect(
            lambda name: self.colormap_actions[name].setChecked(True))

        view_menu = self.menuBar().addMenu("&View")
        self.layout_action = QAction("&2×2 Layout (Axial, Coronal, Sagittal)", self)
        self.layout_action.setCheckable(True)
        self.layout_action.setIconText("2×2")
        self.layout_action.setShortcut(QKeySequence("M"))
        self.layout_action.setToolTip("Three planes with a linked crosshair (M); "
                                      "double-click a view to show it alone")
        self.layout_action.toggled.connect(
            lambda on: self.view_grid.set_layout("2x2" if on else "single"))
        self.view_grid.layout_changed.connect(
            lambda name: self.layout_action.setChecked(name == "2x2"))
        view_menu.addAction(self.layout_action)
        self.cine_action = QAction("&Cine", self)
        self.cine_action.setCheckable(True)
        self.cine_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.cine_action.setToolTip("Play through the slices of the active view (Space)")
        self.cine_action.toggled.connect(self.set_cine)
        view_menu.addAction(self.cine_action)
        self.smooth_action = add_smooth_action(self, view_menu)
        view_menu.addSeparator()
        view_menu.addAction(self.browser_dock.toggleViewAction())
        view_menu.addAction(self.segment_dock.toggleViewAction())
        view_menu.addAction(self.fusion_dock.toggleViewAction())
        self._build_tool_bar(file_menu)

    def _build_tool_bar(self, file_menu) -> None:
        bar = QToolBar("Tools", self)
        bar.setObjectName("tools_toolbar")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        tools = (("window", "W/L", "W", "Left drag sets window/level (W)"),
                 ("distance", "Distance", "D", "Left drag measures a distance in mm (D)"),
                 ("ellipse", "Ellipse ROI", "E", "Left drag draws an elliptical ROI (E)"),
                 ("rectangle", "Rect ROI", "B", "Left drag draws a rectangular ROI (B)"),
                 ("brush", "Brush", "P", "Left drag paints the selected label (P)"),
                 ("eraser", "Eraser", "X", "Left drag erases labels (X)"),
                 ("fill", "Fill", "F", "Click fills a region on the slice (F)"))
        for tool, text, key, tip in tools:
            action = QAction(text, self, checkable=True)
            action.setShortcut(QKeySequence(key))
            action.setToolTip(tip)
            action.setChecked(tool == self.state.tool)
            action.triggered.connect(lambda checked=False, t=tool: self.state.set_tool(t))
            group.addAction(action)
            bar.addAction(action)
            self.tool_actions[tool] = action
        self.state.tools.events.tool.connect(lambda t: self.tool_actions[t].setChecked(True))
        # the window presets (CT presets 1–8, automatic, custom ones) from the tool bar too
        self.presets_button = QToolButton(self)
        self.presets_button.setObjectName("presets_button")
        self.presets_button.setText("Presets")
        self.presets_button.setToolTip("Window/level presets (keys 1–8), automatic window, "
                                       "your saved presets")
        self.presets_button.setMenu(self.image_menu)
        self.presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.insertWidget(self.tool_actions["distance"], self.presets_button)
        bar.insertSeparator(self.tool_actions["brush"])
        self.clear_measurements_action = QAction("Clear", self)
        self.clear_measurements_action.setToolTip("Remove every measurement")
        self.clear_measurements_action.triggered.connect(self.state.clear_measurements)
        bar.addAction(self.clear_measurements_action)
        bar.addSeparator()
        bar.addAction(self.layout_action)
        bar.addAction(self.cine_action)
        self.cine_fps = QSpinBox(self)
        self.cine_fps.setObjectName("cine_fps")
        self.cine_fps.setRange(1, 60)
        self.cine_fps.setValue(10)
        self.cine_fps.setSuffix(" fps")
        self.cine_fps.setToolTip("Cine frame rate")
        self.cine_fps.valueChanged.connect(self._on_cine_fps_changed)
        bar.addWidget(self.cine_fps)
        bar.addSeparator()
        self.open_labels_action = QAction("Open &Label Map…", self)
        self.open_labels_action.setToolTip("Show a label map (NIfTI, NRRD, MHA) on this series")
        self.open_labels_action.triggered.connect(self.choose_label_map)
        file_menu.insertAction(self.save_png_action, self.open_labels_action)
        bar.addAction(self.open_labels_action)
        bar.addWidget(QLabel(" Opacity ", self))
        self.label_opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.label_opacity.setObjectName("label_opacity")
        self.label_opacity.setRange(0, 100)
        self.label_opacity.setValue(int(round(self.state.label_opacity * 100)))
        self.label_opacity.setMaximumWidth(120)
        self.label_opacity.setToolTip("Opacity of the label-map overlay")
        self.label_opacity.valueChanged.connect(
            lambda v: self.state.set_label_opacity(v / 100.0))
        bar.addWidget(self.label_opacity)
