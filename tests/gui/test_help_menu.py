"""Help ▸ Keyboard and Mouse (F1) is generated from the bound keys; Help ▸ User Guide."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QTextDocument
from PySide6.QtTest import QTest
from realparts import REPO

from medview.gui.help_menu import MOUSE, shortcut_overview_html, user_guide_path
from medview.gui.shortcuts import VIEWER_KEYS


def test_f1_shows_every_bound_key_and_follows_a_changed_shortcut(window, qtbot):
    QTest.keyClick(window, Qt.Key.Key_F1)
    dialog = window.help_dialog
    assert dialog is not None and dialog.isVisible()
    shown = " ".join(dialog.browser.toPlainText().split())  # HTML collapses spaces
    actions = window.configurable_actions()
    bound = {" ".join(a.text().replace("&", "").rstrip("…").split()): a.shortcut() for a in
             actions.values() if not a.shortcut().isEmpty()}
    assert len(bound) > 15
    for label, key in bound.items():
        assert label in shown, label
        assert key.toString(QKeySequence.SequenceFormat.NativeText) in shown, label
    for what in set(VIEWER_KEYS.values()):
        assert what in shown
    for gesture, what in MOUSE:
        assert gesture in shown and what.split(" (")[0] in shown
    assert "Ctrl+Z Undo" in shown  # window-wide actions outside the menus too
    assert "Ctrl+Y, Ctrl+Y" not in shown
    # rebinding a key changes the overview: it is generated, never copied
    actions["action_help_keys"].setShortcut(QKeySequence("Ctrl+F1"))
    assert "Ctrl+F1" in shortcut_overview_html(window)
    reset = window.reset_action
    reset.setShortcut(QKeySequence("Shift+R"))
    html = shortcut_overview_html(window)
    assert "Shift+R" in html


def test_the_user_guide_opens_with_its_screenshots(window):
    path = user_guide_path()
    assert path == REPO / "docs" / "user-guide.md"
    dialog = window.show_user_guide()
    assert dialog is not None and dialog.isVisible()
    doc = dialog.browser.document()
    text = dialog.browser.toPlainText()
    assert "medview" in text and "Keyboard" in text
    assert "](" not in text and "#" not in text.splitlines()[0]  # Markdown rendered
    images = [name for name in path.read_text().split("](")[1:] if ".png" in name[:80]]
    assert images
    first = images[0].split(")")[0]
    image = doc.resource(QTextDocument.ResourceType.ImageResource, first)
    assert image is not None and not image.isNull()


@pytest.fixture
def window(app, qtbot, tmp_path):
    from medview.gui.main_window import MainWindow

    w = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_the_guides_pictures_exist_and_are_small():
    import re

    path = REPO / "docs" / "user-guide.md"
    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", path.read_text())
    assert 5 <= len(names) <= 14
    total = 0
    for name in names:
        picture = path.parent / name
        assert picture.is_file(), name
        assert picture.suffix == ".png" and picture.stat().st_size <= 160_000, name
        total += picture.stat().st_size
    assert total <= 1_500_000  # the guide ships in the installer
