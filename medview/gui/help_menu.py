"""Help menu: the keyboard and mouse overview (F1) and the user guide.

The overview is generated when it is opened, from the window's actions as they are bound
now (after Settings ▸ Keyboard Shortcuts…), the keys the views handle themselves
(:data:`medview.gui.shortcuts.VIEWER_KEYS`) and the mouse conventions of the views: it
cannot drift from what the keys do. The user guide (``docs/user-guide.md``, with the
screenshots of ``scripts/screenshots.py``) is shown in the window, Markdown rendered by Qt.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from medview.gui.shortcuts import VIEWER_KEYS, action_label

__all__ = ["MOUSE", "HelpDialog", "install_help_menu", "shortcut_overview_html",
           "user_guide_path"]

#: what the mouse does in a slice view (gui/view_mouse.py implements these)
MOUSE: tuple[tuple[str, str], ...] = (
    ("Wheel", "next / previous slice"),
    ("Left click", "move the crosshair there (the other views follow)"),
    ("Left drag", "the active tool: window/level (right widens the window, up lowers the "
                  "level), a measurement, or the brush"),
    ("Left drag on a crosshair axis (2×2)", "turn the two other planes (oblique MPR; "
                                            "Shift+R resets)"),
    ("Right drag", "zoom"),
    ("Middle drag", "pan"),
    ("Double-click", "show this view alone / back to the 2×2 grid"),
    ("Drop folders or files", "import them into the catalog"),
)

GUIDE_ENV = "MEDVIEW_USER_GUIDE"


def user_guide_path() -> Path | None:
    """``docs/user-guide.md``: ``$MEDVIEW_USER_GUIDE``, a bundle's, or the source tree's."""
    candidates = []
    if os.environ.get(GUIDE_ENV):
        candidates.append(Path(os.environ[GUIDE_ENV]))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "docs" / "user-guide.md")
    candidates.append(Path(__file__).resolve().parents[2] / "docs" / "user-guide.md")
    candidates.append(Path(sys.prefix) / "share" / "medview" / "docs" / "user-guide.md")
    return next((c for c in candidates if c.is_file()), None)


def _key_text(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.NativeText)


def _keys(action: QAction) -> str:
    texts = [_key_text(s) for s in action.shortcuts() if not s.isEmpty()]
    return ", ".join(dict.fromkeys(texts))  # once each (Redo has Ctrl+Y twice on Linux)


def _menu_of(window, action: QAction) -> str:
    for top in window.menuBar().actions():
        menu = top.menu()
        if menu is not None and action in menu.actions():
            return top.text().replace("&", "")
    return "Tool bar"


def shortcut_overview_html(window) -> str:
    """The keyboard and mouse overview of ``window`` as HTML: every action with a key (as
    bound now), the views' own keys, the mouse."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for action in window.configurable_actions().values():
        keys = _keys(action)
        if keys:
            rows.setdefault(_menu_of(window, action), []).append((keys, action_label(action)))
    for action in window.actions():  # window-wide actions outside the menus (undo/redo)
        keys = _keys(action)
        if keys and action.text():
            rows.setdefault("Editing", []).append((keys, action_label(action)))
    views: dict[str, list[str]] = {}
    for key, what in VIEWER_KEYS.items():
        views.setdefault(what, []).append(_key_text(QKeySequence(key)))

    def table(title: str, pairs) -> str:
        body = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in pairs)
        return f"<h3>{html.escape(title)}</h3><table cellspacing='2'>{body}</table>"

    parts = ["<h2>Keyboard and mouse</h2>",
             "<p>Keys can be changed in Settings ▸ Keyboard Shortcuts…; this list shows "
             "them as they are now.</p>",
             table("Mouse in a view", MOUSE),
             table("Keys in a view", [(", ".join(k), what) for what, k in views.items()])]
    for menu, pairs in rows.items():
        parts.append(table(menu, list(dict.fromkeys(pairs))))  # in the menu's order
    return "".join(parts)


class HelpDialog(QDialog):
    """A non-modal window showing HTML or Markdown (the overview, the user guide)."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 720)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("help_browser")
        self.browser.setOpenExternalLinks(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)


def install_help_menu(window) -> None:
    """Add Help ▸ Keyboard and Mouse (F1) and Help ▸ User Guide to ``window``."""
    menu = window.menuBar().addMenu("&Help")
    window.help_menu = menu
    window.help_dialog = None

    def show_overview() -> HelpDialog:
        dialog = _replace_dialog(window, "Keyboard and mouse")
        dialog.browser.setHtml(shortcut_overview_html(window))
        return dialog

    def show_guide() -> HelpDialog | None:
        path = user_guide_path()
        if path is None:
            window._show_message("User guide not found",
                                 "docs/user-guide.md is not part of this installation; set "
                                 f"{GUIDE_ENV} to its path.")
            return None
        dialog = _replace_dialog(window, "medview user guide")
        # images are found relative to the guide
        dialog.browser.setSearchPaths([str(path.parent)])
        dialog.browser.document().setBaseUrl(QUrl.fromLocalFile(str(path.parent) + "/"))
        dialog.browser.setMarkdown(path.read_text(encoding="utf-8"))
        return dialog

    window.keys_help_action = QAction("&Keyboard and Mouse", window)
    window.keys_help_action.setObjectName("action_help_keys")
    window.keys_help_action.setShortcut(QKeySequence("F1"))
    window.keys_help_action.setToolTip("Every key and mouse action, as bound now (F1)")
    window.keys_help_action.triggered.connect(show_overview)
    menu.addAction(window.keys_help_action)
    window.guide_action = QAction("&User Guide", window)
    window.guide_action.setObjectName("action_help_guide")
    window.guide_action.triggered.connect(show_guide)
    menu.addAction(window.guide_action)
    window.show_keys_help = show_overview
    window.show_user_guide = show_guide


def _replace_dialog(window, title: str) -> HelpDialog:
    if window.help_dialog is not None:
        window.help_dialog.close()
        window.help_dialog.deleteLater()
    dialog = HelpDialog(title, window)
    dialog.open()  # not exec(): no nested event loop
    window.help_dialog = dialog
    return dialog
