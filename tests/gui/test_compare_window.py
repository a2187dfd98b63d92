"""The comparison window from the main window ("Compare with…" in the browser's menu), on
the real decubitus MR (two studies of one patient), with its layout rules and their dialog."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QTableWidgetItem

from medview.app.hanging import BUILTIN_RULES, load_rules, rules_path
from medview.gui.compare_view import LINK_TEXTS
from medview.gui.hanging_dialog import HangingDialog
from medview.gui.main_window import MainWindow

TIMEOUT_MS = 60_000
DECUBITUS = "dcm_qa_decubitus/In"


@pytest.fixture
def window(app, qtbot, tmp_path, monkeypatch, data_dir):
    from realparts import require

    require((data_dir / DECUBITUS).is_dir(), f"the decubitus MR at {data_dir / DECUBITUS}")
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    win = MainWindow(catalog_path=tmp_path / "catalog.sqlite",
                     settings_path=tmp_path / "settings.ini")
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.import_finished, timeout=TIMEOUT_MS):
        win.import_folder(data_dir / DECUBITUS)
    yield win
    compare = getattr(win, "compare_window", None)
    if compare is not None:
        compare.close()
    assert win.thumbnails.shutdown(timeout_ms=10_000)
    assert win.tasks.shutdown(timeout_ms=10_000)


def _uids(win) -> tuple[str, str]:
    by_path = {str(win.catalog.instances(u)[0].path): u for u in win.browser.series_uids()}
    return (next(u for p, u in by_path.items() if "/HFS/" in p),
            next(u for p, u in by_path.items() if "/HFDL/" in p))


def _menu(win, uid):
    rect = win.browser.visualItemRect(win.browser.item_for_series(uid))
    win.browser.customContextMenuRequested.emit(rect.center())
    return win.menu_action("Compare with")


def test_compare_with_hangs_the_series_and_its_prior_by_the_rules(window, qtbot):
    hfs, hfdl = _uids(window)
    _menu(window, hfs).trigger()  # nothing open in the main view: the rules decide
    compare = window.compare_window
    assert compare.isVisible() and compare.rule.name == "MR brain"
    assert compare.view.layout_name == "2x2"
    panes = compare.comparison.panes
    qtbot.waitUntil(lambda: panes[0].volume is not None and panes[1].volume is not None,
                    timeout=TIMEOUT_MS)
    assert (panes[0].series_uid, panes[1].series_uid) == (hfs, hfdl)
    assert panes[2].volume is None and panes[3].volume is None  # no T2, no FLAIR
    assert compare.view.panes[2].title.text() == "Drop a series here"
    # the patient's two studies are listed, this one marked
    top = [compare.priors.topLevelItem(k).text(0)
           for k in range(compare.priors.topLevelItemCount())]
    assert len(top) == 2 and sum("(this study)" in t for t in top) == 1
    # every column whole in sight: the dates are not cut to "20…" (nor scrolled away)
    tree, metrics = compare.priors, compare.priors.fontMetrics()
    qtbot.waitUntil(lambda: tree.isVisible() and tree.viewport().width() > 0)
    items = [tree.topLevelItem(k) for k in range(tree.topLevelItemCount())]
    items += [i.child(c) for i in items for c in range(i.childCount())]
    # the list asks for its contents' width (up to a third of the screen)
    want = sum(tree.sizeHintForColumn(c) for c in range(tree.columnCount()))
    assert tree.width() >= min(want, tree.screen().availableGeometry().width() // 3)
    for column in (1, 2):  # (a long study name may give way)
        widest = max(metrics.horizontalAdvance(i.text(column)) for i in items)
        assert widest > 0 and tree.columnWidth(column) >= widest, (column, widest)
        right = tree.header().sectionViewportPosition(column) + tree.columnWidth(column)
        assert tree.header().sectionViewportPosition(column) >= 0 and \
            right <= tree.viewport().width(), (column, right, tree.viewport().width())
    # another frame of reference: not linked until registered, and the header says so
    header = compare.view.panes[1].link_button
    assert header.text() == LINK_TEXTS["off"]
    compare.view.register_requested.emit(1)  # the header's "Register with the reference"
    qtbot.waitUntil(lambda: panes[1].link.mode == "registration", timeout=TIMEOUT_MS)
    assert header.text() == LINK_TEXTS["registration"]
    panes[0].state.step_slice(-3)
    assert compare.comparison.distance_mm(0, 1) <= 3.0  # within half a voxel diagonal


def test_compare_with_puts_the_series_beside_the_open_one(window, qtbot):
    hfs, hfdl = _uids(window)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(hfs)
    _menu(window, hfdl).trigger()
    compare = window.compare_window
    assert compare.view.layout_name == "1x2" and compare.rule is None
    panes = compare.comparison.panes
    qtbot.waitUntil(lambda: panes[1].volume is not None, timeout=TIMEOUT_MS)
    assert (panes[0].series_uid, panes[1].series_uid) == (hfs, hfdl)


def test_the_rules_dialog_edits_saves_and_refuses_a_wrong_row(app, qtbot, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    dialog = HangingDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(BUILTIN_RULES)
    dialog.add_row()
    row = dialog.table.rowCount() - 1
    dialog.table.setItem(row, 0, QTableWidgetItem("PET/CT"))
    dialog.table.setItem(row, 1, QTableWidgetItem("PT"))
    dialog.table.setItem(row, 5, QTableWidgetItem("current, nowhere"))
    assert not dialog.save()
    assert f"row {row + 1}" in dialog.message.text() and "nowhere" in dialog.message.text()
    assert not rules_path().exists()  # nothing written
    dialog.table.setItem(row, 5, QTableWidgetItem("current, prior"))
    dialog.table.cellWidget(row, 4).setCurrentText("2x1")
    dialog.table.setCurrentCell(row, 0)
    dialog.move_row(-1)  # one up: tried before the generic MR rule
    assert dialog.save()
    saved = load_rules()
    assert saved[-2].name == "PET/CT" and saved[-2].layout == "2x1"
    assert saved[-2].slots == ("current", "prior")
    assert json.loads(rules_path().read_text())["rules"][-1]["name"] == "MR"
