"""The window's controls for thick slabs, oblique MPR and reference lines.

- Image ▸ Slab: Off / MIP / MinIP / Average (also a combo box in the tool bar, beside a
  thickness spin box in mm); Image ▸ Next Slab Mode (Ctrl+M) cycles through them, Thicker
  Slab (Ctrl+]) and Thinner Slab (Ctrl+[) step the thickness (1, 2, 3, 5, 10, 15, 20, 30, 50,
  100 mm).
- View ▸ Reference Lines (Shift+L): where the other views' planes and the study's localizer
  cut each view. The localizer is looked up in the catalog when a series has opened.
- View ▸ Reset Oblique Planes (Shift+R): back to the acquired planes after a crosshair drag.

The keys avoid DESIGN.md's conventions and the window's other shortcuts (digits, A, R, I, M,
W, D, E, B, P, X, F, Space, [ and ]); all are configurable (Settings ▸ Keyboard
Shortcuts). Every control writes to the state's models (``state.slab``, ``state.mpr``) and
follows their events; none keeps a value of its own.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QToolBar

from medview.app.localizer import find_localizer
from medview.app.slab_model import SLAB_MODES, THICKNESS_RANGE_MM

__all__ = ["MODE_TEXTS", "install_view_tools"]

log = logging.getLogger(__name__)

MODE_TEXTS = {"off": "No slab", "mip": "MIP", "minip": "MinIP", "average": "Average"}


def _menu(window, title: str):
    return next(a.menu() for a in window.menuBar().actions() if a.text() == title)


def install_view_tools(window) -> None:
    """Add the slab, reference-line and oblique-reset controls to main window ``window``."""
    state = window.state
    slab, mpr = state.slab, state.mpr

    image_menu = _menu(window, "&Image")
    image_menu.addSeparator()
    slab_menu = image_menu.addMenu("Thick &Slab")
    group = QActionGroup(window)
    window.slab_actions = {}
    for mode in SLAB_MODES:
        action = QAction(MODE_TEXTS[mode], window, checkable=True)
        action.setObjectName(f"slab_{mode}")
        action.setChecked(mode == slab.mode)
        action.triggered.connect(lambda checked=False, m=mode: slab.set_mode(m))
        group.addAction(action)
        slab_menu.addAction(action)
        window.slab_actions[mode] = action
    cycle = QAction("Next Slab Mode (Off, MIP, MinIP, Average)", window)
    cycle.setShortcut(QKeySequence("Ctrl+M"))
    cycle.triggered.connect(slab.cycle_mode)
    thicker = QAction("Thicker Slab", window)
    thicker.setShortcut(QKeySequence("Ctrl+]"))
    thicker.triggered.connect(lambda: slab.step_thickness(1))
    thinner = QAction("Thinner Slab", window)
    thinner.setShortcut(QKeySequence("Ctrl+["))
    thinner.triggered.connect(lambda: slab.step_thickness(-1))
    for action in (cycle, thicker, thinner):
        image_menu.addAction(action)
    window.slab_cycle_action, window.slab_thicker_action = cycle, thicker
    window.slab_thinner_action = thinner

    bar = window.findChild(QToolBar, "tools_toolbar")
    combo = QComboBox(window)
    combo.setObjectName("slab_mode")
    for mode in SLAB_MODES:
        combo.addItem(MODE_TEXTS[mode], mode)
    combo.setToolTip("Thick slab of every view: maximum, minimum or mean intensity "
                     "(Ctrl+M cycles)")
    spin = QDoubleSpinBox(window)
    spin.setObjectName("slab_thickness")
    spin.setRange(*THICKNESS_RANGE_MM)
    spin.setDecimals(1)
    spin.setSingleStep(1.0)
    spin.setSuffix(" mm")
    spin.setValue(slab.thickness_mm)
    spin.setKeyboardTracking(False)
    spin.setToolTip("Slab thickness (Ctrl+] thicker, Ctrl+[ thinner)")
    combo.currentIndexChanged.connect(lambda i: slab.set_mode(combo.itemData(i)))
    spin.valueChanged.connect(slab.set_thickness)

    def on_mode(mode, *_):
        window.slab_actions[mode].setChecked(True)
        if combo.currentData() != mode:
            combo.setCurrentIndex(SLAB_MODES.index(mode))
        spin.setEnabled(mode != "off")

    def on_thickness(value, *_):
        if abs(spin.value() - value) > 1e-9:
            spin.setValue(value)

    slab.model.events.mode.connect(on_mode)
    slab.model.events.thickness_mm.connect(on_thickness)
    spin.setEnabled(slab.mode != "off")
    window.slab_mode_box, window.slab_thickness_box = combo, spin
    if bar is not None:
        bar.addSeparator()
        bar.addWidget(QLabel(" Slab ", window))
        bar.addWidget(combo)
        bar.addWidget(spin)

    view_menu = _menu(window, "&View")
    lines = QAction("Reference &Lines", window, checkable=True)
    lines.setObjectName("reference_lines_action")
    lines.setShortcut(QKeySequence("Shift+L"))
    lines.setToolTip("Where the other views' planes (and the study's localizer) cut each "
                     "view (Shift+L)")
    lines.toggled.connect(mpr.set_reference_lines)
    mpr.model.events.reference_lines.connect(
        lambda on, *_: lines.isChecked() != on and lines.setChecked(on))
    reset = QAction("Reset &Oblique Planes", window)
    reset.setObjectName("reset_oblique_action")
    reset.setShortcut(QKeySequence("Shift+R"))
    reset.setToolTip("Back to the acquired planes after turning the crosshair (Shift+R)")
    reset.triggered.connect(mpr.reset)
    actions = view_menu.actions()
    before = actions[2] if len(actions) > 2 else None  # after the layout and cine
    view_menu.insertAction(before, lines)
    view_menu.insertAction(before, reset)
    window.reference_lines_action, window.reset_oblique_action = lines, reset

    def on_series_opened(volume) -> None:
        # a catalog query by study UID: a few milliseconds, on the GUI thread
        try:
            mpr.set_localizer(find_localizer(window.catalog, volume))
        except Exception:  # error boundary: a localizer is a nicety, never an error
            log.exception("looking up the study's localizer failed")
            mpr.set_localizer(None)

    window.series_opened.connect(on_series_opened)
