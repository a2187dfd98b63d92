"""Files read past a problem are in the catalog, and the window says so (not only the log)."""

from __future__ import annotations

import struct

import pydicom
from PySide6.QtWidgets import QTreeWidgetItemIterator

TIMEOUT_MS = 30_000


def _pe_preamble() -> bytes:
    # a DOS stub pointing at a PE signature inside the preamble: the polyglot of CVE-2019-11687
    head = bytearray(128)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    return bytes(head)


def _rows(panel) -> list[list[str]]:
    out, it = [], QTreeWidgetItemIterator(panel.tree)
    while it.value():
        item = it.value()
        out.append([item.text(c) for c in range(3)])
        it += 1
    return out


def test_an_import_with_warnings_names_them_in_the_status_bar_and_the_panel(
        qtbot, window, data_dir, tmp_path):
    src = sorted((data_dir / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice").iterdir())
    folder = tmp_path / "in"
    folder.mkdir()
    for k, f in enumerate(src):
        ds = pydicom.dcmread(f)
        if k == 1:
            ds.preamble = _pe_preamble()
        ds.save_as(folder / f.name)
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(folder)
    report = blocker.args[0].report
    assert report.warning_count == 1 and not report.errors
    assert "1 file(s) imported with a warning" in window.statusBar().currentMessage()
    panel = window.failed_panel
    (row,) = _rows(panel)
    assert row[0] == src[1].name and row[1].startswith("imported, with a warning:")
    assert "executable" in row[1].lower() or "preamble" in row[1].lower()
    assert panel.count() == 0  # not counted as failed: the file is in the catalog
    assert "read past a problem" in panel.summary.text()
    # a clean import afterwards clears the list
    clean = tmp_path / "clean"
    clean.mkdir()
    for f in src:
        pydicom.dcmread(f).save_as(clean / f.name)
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS):
        window.import_folder(clean)
    assert _rows(panel) == [] and "imported with a warning" not in \
        window.statusBar().currentMessage()


def test_closing_the_window_closes_its_open_dialogs(qtbot, window, data_dir):
    """A window-modal dialog left open (share, backup, export …) must not outlive the window:
    it would keep blocking input to everything else."""
    from PySide6.QtWidgets import QApplication, QDialog

    folder = data_dir / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice"
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(folder, open_first=True)
    dialogs = [window.open_share_dialog(), window.open_backup_dialog()]
    assert all(d is not None and d.isVisible() for d in dialogs)
    assert QApplication.activeModalWidget() is not None
    window.close()
    assert not any(d.isVisible() for d in dialogs)
    assert not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, QDialog) and w.isVisible()]
