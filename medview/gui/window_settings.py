"""What the main window remembers between runs (QSettings): geometry and dock layout, the last
import folder, custom window presets and keyboard shortcuts; the Settings menu's memory for
open series and remote endpoints.

A mixin of :class:`~medview.gui.main_window.MainWindow`. The settings live where Qt keeps
an application's settings (``medview/medview``), or in the ini file given to the window or
named by ``$MEDVIEW_SETTINGS`` (tests use a temporary one, never the user's).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QToolBar, QWidgetAction

from medview.gui.shortcuts import ShortcutsDialog

__all__ = ["CustomPreset", "SettingsMixin", "open_settings", "parse_presets"]

log = logging.getLogger(__name__)

SETTINGS_ENV = "MEDVIEW_SETTINGS"
_GEOMETRY, _STATE = "window/geometry", "window/state"
_LAST_FOLDER, _PRESETS, _SHORTCUTS = "import/last_folder", "presets/custom", "shortcuts/"


def open_settings(path: str | os.PathLike | None = None) -> QSettings:
    """The ini file ``path``, else ``$MEDVIEW_SETTINGS``, else the user's medview settings."""
    path = path or os.environ.get(SETTINGS_ENV) or None
    if path:
        return QSettings(os.fspath(path), QSettings.Format.IniFormat)
    return QSettings("medview", "medview")


@dataclass(frozen=True)
class CustomPreset:
    """A window the user saved: name, center and width in the volume's units."""

    name: str
    center: float
    width: float

    def to_dict(self) -> dict:
        return {"name": self.name, "center": self.center, "width": self.width}


def parse_presets(text: str | None) -> list[CustomPreset]:
    """Custom presets from their stored JSON; bad entries are skipped (and logged)."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except (TypeError, ValueError):
        log.warning("the stored custom presets are not JSON; ignored")
        return []
    out: list[CustomPreset] = []
    for item in items if isinstance(items, list) else []:
        try:
            preset = CustomPreset(str(item["name"]), float(item["center"]), float(item["width"]))
        except (KeyError, TypeError, ValueError):
            log.warning("custom preset %r is incomplete; ignored", item)
            continue
        if preset.name and math.isfinite(preset.center) and math.isfinite(preset.width) \
                and preset.width > 0:
            out.append(preset)
    return out


def _slug(text: str) -> str:
    text = text.replace("&", "").split("  (")[0].rstrip("…").strip().lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


class SettingsMixin:
    """Mixed into MainWindow (before QMainWindow)."""

    #: the custom presets changed (the list after the change)
    presets_changed = Signal(object)

    def _init_settings(self, settings_path: str | os.PathLike | None) -> None:
        self.settings = open_settings(settings_path)
        self.custom_presets: list[CustomPreset] = parse_presets(
            self.settings.value(_PRESETS, "", type=str))
        self._custom_preset_actions: list[QAction] = []
        self.default_shortcuts: dict[str, str] = {}
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.preset_name_dialog: QInputDialog | None = None
        self.geometry_restored = False

    def settings_value(self, key: str, default: str = "") -> str:
        return str(self.settings.value(key, default, type=str))

    def set_settings_value(self, key: str, value: str) -> None:
        self.settings.setValue(key, value)

    # -- menus -------------------------------------------------------------------------
    def _menu(self, title: str) -> QMenu:
        for action in self.menuBar().actions():
            if action.menu() is not None and action.text().replace("&", "") == title:
                return action.menu()
        return self.menuBar().addMenu(f"&{title}")

    def _build_settings_actions(self) -> None:
        image_menu = self._menu("Image")
        image_menu.addSeparator()
        self._presets_separator = image_menu.addSeparator()
        self.save_preset_action = QAction("Save Current Window as &Preset…", self)
        self.save_preset_action.setObjectName("action_save_window_preset")
        self.save_preset_action.triggered.connect(self.choose_preset_name)
        image_menu.addAction(self.save_preset_action)
        self.remove_preset_menu = image_menu.addMenu("Remove Custom Preset")
        self.remove_preset_menu.setObjectName("remove_preset_menu")

        settings_menu = self._menu("Settings")
        self.shortcuts_action = QAction("&Keyboard Shortcuts…", self)
        self.shortcuts_action.setObjectName("action_keyboard_shortcuts")
        self.shortcuts_action.triggered.connect(self.open_shortcuts_dialog)
        settings_menu.addAction(self.shortcuts_action)
        self._rebuild_preset_actions()

    # -- restore and save --------------------------------------------------------------
    def _restore_settings(self) -> None:
        """Window geometry and docks, then the shortcuts (after every action exists)."""
        geometry = self.settings.value(_GEOMETRY)
        if geometry is not None:
            self.geometry_restored = bool(self.restoreGeometry(geometry))
        state = self.settings.value(_STATE)
        if state is not None:
            self.restoreState(state)
        actions = self.configurable_actions()
        self.default_shortcuts = {
            i: a.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
            for i, a in actions.items()}
        for action_id, action in actions.items():
            stored = self.settings.value(_SHORTCUTS + action_id)
            if stored is not None:
                action.setShortcut(QKeySequence(str(stored)))

    def _save_settings(self) -> None:
        self.settings.setValue(_GEOMETRY, self.saveGeometry())
        self.settings.setValue(_STATE, self.saveState())
        self.settings.sync()

    # -- last folder -------------------------------------------------------------------
    def last_import_folder(self) -> str:
        """The folder of the last import (where the folder dialog starts), or ""."""
        return self.settings_value(_LAST_FOLDER, "")

    def _remember_import_folder(self, path: str | os.PathLike) -> None:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        self.settings.setValue(_LAST_FOLDER, str(folder))

    # -- custom presets ----------------------------------------------------------------
    def choose_preset_name(self) -> QInputDialog:
        """Image ▸ Save Current Window as Preset…: ask a name, then save (non-blocking)."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Save window preset")
        center, width = self.state.window
        dialog.setLabelText(f"Name of the preset W {width:g} / L {center:g}:")
        dialog.textValueSelected.connect(self.save_window_preset)
        dialog.open()
        self.preset_name_dialog = dialog
        return dialog

    def save_window_preset(self, name: str) -> CustomPreset | None:
        """Store the current window as custom preset ``name`` (replacing one of that name)."""
        name = str(name).strip()
        if not name:
            return None
        center, width = self.state.window
        preset = CustomPreset(name, float(center), float(width))
        self.custom_presets = [p for p in self.custom_presets if p.name != name] + [preset]
        self._store_presets()
        self.statusBar().showMessage(
            f"Saved preset {name}: W {width:g} / L {center:g}", 4000)
        return preset

    def remove_window_preset(self, name: str) -> bool:
        before = len(self.custom_presets)
        self.custom_presets = [p for p in self.custom_presets if p.name != name]
        if len(self.custom_presets) == before:
            return False
        self._store_presets()
        return True

    def apply_custom_preset(self, name: str) -> bool:
        for preset in self.custom_presets:
            if preset.name == name:
                if self.state.volume is not None:
                    self.state.set_window(preset.center, preset.width)
                    self.statusBar().showMessage(
                        f"{name}: W {preset.width:g} / L {preset.center:g}", 2000)
                return True
        return False

    def _store_presets(self) -> None:
        self.settings.setValue(_PRESETS, json.dumps([p.to_dict() for p in self.custom_presets]))
        self.settings.sync()
        self._rebuild_preset_actions()
        self.presets_changed.emit(list(self.custom_presets))

    def _rebuild_preset_actions(self) -> None:
        image_menu = self._menu("Image")
        for action in self._custom_preset_actions:
            image_menu.removeAction(action)
            action.deleteLater()
        self._custom_preset_actions = []
        self.remove_preset_menu.clear()
        for preset in self.custom_presets:
            action = QAction(f"{preset.name}  (W {preset.width:g} / L {preset.center:g})", self)
            action.setObjectName("custom_preset")
            action.setToolTip("Custom preset")
            action.triggered.connect(
                lambda checked=False, n=preset.name: self.apply_custom_preset(n))
            image_menu.insertAction(self.save_preset_action, action)
            self._custom_preset_actions.append(action)
            self.remove_preset_menu.addAction(
                preset.name, lambda n=preset.name: self.remove_window_preset(n))
        self.remove_preset_menu.setEnabled(bool(self.custom_presets))

    def custom_preset_actions(self) -> list[QAction]:
        return list(self._custom_preset_actions)

    # -- shortcuts ---------------------------------------------------------------------
    def configurable_actions(self) -> dict[str, QAction]:
        """The actions of the menu bar and the tool bars by a stable id (custom presets and
        the entries of submenus excluded)."""
        groups: list[tuple[str, list[QAction]]] = []
        for top in self.menuBar().actions():
            if top.menu() is not None:
                groups.append((_slug(top.text()), top.menu().actions()))
        for bar in self.findChildren(QToolBar):
            groups.append((_slug(bar.windowTitle()) or "tools", bar.actions()))
        out: dict[str, QAction] = {}
        seen: set[int] = set()
        for prefix, actions in groups:
            for action in actions:
                if action.isSeparator() or action.menu() is not None or not action.text():
                    continue
                if action.objectName() == "custom_preset" or id(action) in seen:
                    continue
                if isinstance(action, QWidgetAction):
                    continue
                seen.add(id(action))
                if not action.objectName():
                    action.setObjectName(f"action_{prefix}_{_slug(action.text())}")
                out[action.objectName()] = action
        return out

    def open_shortcuts_dialog(self) -> ShortcutsDialog:
        """Settings ▸ Keyboard Shortcuts…: edit, OK applies and stores (non-blocking)."""
        if self.shortcuts_dialog is not None:
            self.shortcuts_dialog.close()
            self.shortcuts_dialog.deleteLater()
        dialog = ShortcutsDialog(self.configurable_actions(), self.default_shortcuts, self)
        dialog.accepted.connect(self._store_shortcuts)
        dialog.open()
        self.shortcuts_dialog = dialog
        return dialog

    def _store_shortcuts(self) -> None:
        for action_id, action in self.configurable_actions().items():
            sequence = action.shortcut().toString(QKeySequence.SequenceFormat.PortableText)
            if sequence == self.default_shortcuts.get(action_id, ""):
                self.settings.remove(_SHORTCUTS + action_id)
            else:
                self.settings.setValue(_SHORTCUTS + action_id, sequence)
        self.settings.sync()
        self.statusBar().showMessage("Keyboard shortcuts saved.", 4000)

    # -- Settings ▸ Memory for Open Series…, Remote Endpoints… (issues 6, 11) ---------
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

        dialog = EndpointsDialog(self.session, self)
        dialog.open()
        self.endpoints_dialog = dialog
        return dialog
