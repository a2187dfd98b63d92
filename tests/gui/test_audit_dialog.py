"""Help ▸ Audit Log… shows the one disclosure log, newest first, filterable, read-only; a torn
line does not break it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractItemView

from medview.audit import audit_path, record
from medview.gui.audit_dialog import COLUMNS


@pytest.fixture
def audit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    record(action="offload", series=[("1.2.826.0.1.100", 4 << 20)],
           destination="cluster https://gpu.example:8443", detail={"job": "abc123"})
    # a line cut off by a crash mid-write, then more entries after it
    with open(audit_path(), "a") as f:
        f.write('{"action": "send", "time": "2026-12-05T09:00:00+0000", "ser')
        f.write("\n")
    record(action="send", series=[("1.2.826.0.1.200", 1536), ("1.2.826.0.1.201", 512)],
           destination="orthanc 127.0.0.1:4242")
    record(action="share", series=["1.2.826.0.1.300"], destination="/media/usb/share.zip",
           profile="basic+retain-dates")
    with open(audit_path(), "a") as f:
        f.write('{"time": "2026-12-05T10:00:00+0000", "action": "bac')  # torn last line
    return tmp_path


@pytest.fixture
def window(qtbot, tmp_path, audit_home):
    from medview.gui.main_window import MainWindow

    w = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def grey(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(),
                                                             image.bytesPerLine())
    return arr[:, : image.width()].copy()


def test_the_audit_log_dialog_shows_every_entry_newest_first(window, qtbot):
    help_menu = window.help_menu
    assert window.audit_action in help_menu.actions()
    window.audit_action.trigger()
    dialog = window.audit_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 4, timeout=10_000)
    rows = dialog.shown_rows()
    assert [r[2] for r in rows] == ["share", "send", "send", "offload"]  # newest first
    share, send2, send1, offload = rows
    assert share[3] == "1.2.826.0.1.300" and share[4] == "/media/usb/share.zip"
    assert share[5] == "basic+retain-dates" and share[6] == "0 B"
    assert send1[3] == "1.2.826.0.1.200" and send1[6] == "1.5 KiB"
    assert send2[3] == "1.2.826.0.1.201" and send2[6] == "512 B"
    assert offload[4].startswith("cluster") and offload[5] == "(none)"
    assert offload[6] == "4.0 MiB"
    assert all(r[1] for r in rows)  # the OS user
    assert "4 disclosure(s)" in dialog.status.text()
    header = [dialog.model.headerData(i, Qt.Orientation.Horizontal)
              for i in range(len(COLUMNS))]
    assert header == ["Time", "User", "Action", "Series", "Destination", "Profile", "Bytes"]
    # read-only
    table = dialog.table
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert not (dialog.model.item(0, 3).flags() & Qt.ItemFlag.ItemIsEditable)

    # what the user sees: the rows are painted in the table
    first_row = table.visualRect(dialog.proxy.index(0, 3))
    assert first_row.height() > 5
    shown = grey(table.viewport().grab().toImage())
    strip = shown[first_row.top():first_row.bottom(), first_row.left():first_row.right()]
    assert strip.min() < 120 and strip.max() > 200  # dark text on a light cell

    # the filter box keeps the matching rows, in any column
    qtbot.keyClicks(dialog.filter, "ORTHANC")
    assert [r[2] for r in dialog.shown_rows()] == ["send", "send"]
    assert "2 of 4" in dialog.status.text()
    dialog.filter.clear()
    qtbot.keyClicks(dialog.filter, "no such thing")
    assert dialog.shown_rows() == []
    empty = grey(table.viewport().grab().toImage())
    cell = empty[first_row.top():first_row.bottom(), first_row.left():first_row.right()]
    assert cell.max() - cell.min() < 20  # no text painted any more
    dialog.filter.clear()
    assert len(dialog.shown_rows()) == 4

    # a new disclosure appears on Refresh
    record(action="backup", series=[("1.2.826.0.1.400", 10)], destination="archive")
    dialog.refresh_button.click()
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 5, timeout=10_000)
    assert dialog.shown_rows()[0][2] == "backup"
    picture = dialog.grab()
    assert picture.width() > 400 and picture.height() > 200


def test_an_empty_log_says_so(qtbot, tmp_path, monkeypatch):
    from medview.gui.audit_dialog import AuditDialog

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "nothing"))
    dialog = AuditDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "No disclosures" in dialog.status.text(), timeout=10_000)
    assert dialog.model.rowCount() == 0
