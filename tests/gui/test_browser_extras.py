"""The browser's extras on real data: thumbnails and their cache, the failed-files panel, the
series context menu (remove, tags, export), drag and drop, settings and shortcuts."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from medview.app.thumbnails import ThumbnailCache
from medview.app.windowing import auto_window
from medview.dicom.catalog.db import Catalog
from medview.formats.volume_io import read_volume
from medview.gui.main_window import MainWindow
from medview.gui.tag_browser import TagBrowserDialog, read_tag_tree
from medview.gui.thumbnail_loader import thumbnail_image

TIMEOUT_MS = 60_000


def _make_window(qtbot, tmp_path, *, resize: bool = True, **kwargs) -> MainWindow:
    win = MainWindow(catalog_path=tmp_path / "catalog.sqlite", **kwargs)
    qtbot.addWidget(win)
    if resize:
        win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


@pytest.fixture
def window(app, qtbot, tmp_path):
    win = _make_window(qtbot, tmp_path)
    yield win
    assert win.thumbnails.shutdown(timeout_ms=10_000)
    assert win.tasks.shutdown(timeout_ms=10_000)


def _import(qtbot, window, path):
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(path)
    return blocker.args[0]


def _wait_thumbnail(qtbot, window, uid) -> np.ndarray:
    got: dict[str, np.ndarray] = {}

    def ready(series_uid, array):
        got[series_uid] = array

    window.thumbnails.thumbnail_ready.connect(ready)
    qtbot.waitUntil(lambda: uid in got or window.browser.thumbnail(uid) is not None,
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.thumbnails.busy, timeout=TIMEOUT_MS)
    window.thumbnails.thumbnail_ready.disconnect(ready)
    return got.get(uid)


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _context_menu(window, uid):
    rect = window.browser.visualItemRect(window.browser.item_for_series(uid))
    window.browser.customContextMenuRequested.emit(rect.center())
    assert window.series_menu is not None and window.series_menu.isVisible()
    return window.series_menu


# ------------------------------------------------------------------------- thumbnails
def _windowed(image: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.clip((image.astype(np.float64) - (center - width / 2)) / width * 255.0, 0, 255)


def _assert_like(thumb: np.ndarray, expected: np.ndarray) -> None:
    """Same pixel statistics (area average of the windowed image, rounded to uint8)."""
    assert thumb.shape == expected.shape
    assert abs(thumb.mean() - expected.mean()) < 0.5
    assert abs(thumb.std() - expected.std()) < 0.5
    assert np.abs(thumb - expected).max() <= 1.0


def test_thumbnail_shows_the_windowed_middle_instance(qtbot, window, ct_dir, ct_volume,
                                                     monkeypatch):
    threads = []
    made_by = ThumbnailCache.thumbnail_for

    def recording(self, *args, **kwargs):  # the real method, noting the thread it runs on
        threads.append(threading.current_thread())
        return made_by(self, *args, **kwargs)

    monkeypatch.setattr(ThumbnailCache, "thumbnail_for", recording)
    _import(qtbot, window, ct_dir)
    uid = ct_volume.metadata["SeriesInstanceUID"]
    thumb = _wait_thumbnail(qtbot, window, uid)
    assert thumb is not None and thumb.dtype == np.uint8 and thumb.shape == (64, 64)
    # the middle of the 10 instances kept (one repeats a position), decoded by pydicom,
    # in the series' own window (40/400)
    files = ct_volume.metadata["source_files"]
    assert len(files) == 10
    ds = pydicom.dcmread(files[len(files) // 2])
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = _block_mean(_windowed(hu, float(ds.WindowCenter), float(ds.WindowWidth)), 8)
    _assert_like(thumb, expected)
    assert thumb.std() > 20  # a picture, not a blank
    assert threads and threading.main_thread() not in threads  # never on the GUI thread
    # the browser row shows exactly these pixels
    icon = window.browser.thumbnail(uid)
    shown = icon.pixmap(64, 64).toImage().convertToFormat(thumbnail_image(thumb).format())
    ptr = shown.constBits()
    rows = np.frombuffer(ptr, np.uint8).reshape(shown.height(), shown.bytesPerLine())
    assert np.array_equal(rows[:, :64], thumb)


def test_mr_thumbnail_uses_the_automatic_window(qtbot, window, demo_dir, demo_volume):
    _import(qtbot, window, demo_dir)
    (uid,) = window.browser.series_uids()
    thumb = _wait_thumbnail(qtbot, window, uid)
    middle = demo_volume.array[demo_volume.shape[0] // 2]
    center, width = auto_window(middle)  # MR: 1–99 % of the image
    _assert_like(thumb, _block_mean(_windowed(middle, center, width), 256 // 64))


def test_thumbnails_come_from_the_cache_until_a_file_changes(app, qtbot, tmp_path, demo_dir,
                                                            private_settings):
    demo = tmp_path / "demo"
    shutil.copytree(demo_dir, demo)
    first = _make_window(qtbot, tmp_path)
    _import(qtbot, first, demo)
    (uid,) = first.browser.series_uids()
    thumb = _wait_thumbnail(qtbot, first, uid)
    assert (first.thumbnails.made, first.thumbnails.cache_hits) == (1, 0)
    cached = list((private_settings / "cache" / "thumbnails").glob("*.npy"))
    assert len(cached) == 1
    first.close()

    second = _make_window(qtbot, tmp_path)  # the same catalog, listed at start
    again = _wait_thumbnail(qtbot, second, uid)
    assert (second.thumbnails.made, second.thumbnails.cache_hits) == (0, 1)
    assert np.array_equal(again, thumb)

    # a changed file gives the series a new key, so a new thumbnail
    changed = sorted(demo.iterdir())[0]
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    _import(qtbot, second, demo)
    _wait_thumbnail(qtbot, second, uid)
    assert second.thumbnails.made == 1
    assert len(list((private_settings / "cache" / "thumbnails").glob("*.npy"))) == 2
    second.close()


# ------------------------------------------------------------------------- failed files
def test_a_broken_file_is_listed_with_its_reason(qtbot, window, demo_dir, tmp_path):
    folder = tmp_path / "with_broken"
    shutil.copytree(demo_dir, folder)
    good = sorted(folder.glob("*.dcm"))[0]
    (folder / "broken.dcm").write_bytes(good.read_bytes()[:600])  # cut inside the header
    assert not window.failed_dock.isVisible()
    result = _import(qtbot, window, folder)
    assert [os.path.basename(p) for p, _ in result.errors] == ["broken.dcm"]
    listed = window.failed_panel.errors()
    assert [os.path.basename(p) for p, _ in listed] == ["broken.dcm"]
    assert listed[0][1] == result.errors[0][1] and listed[0][1]  # the catalog's reason
    item = window.failed_panel.tree.topLevelItem(0)
    assert item.text(0) == "broken.dcm" and item.text(1) == listed[0][1]
    assert window.failed_dock.windowTitle() == "Failed files (1)"
    assert "Show Failed Files" in window.statusBar().currentMessage()
    # the message's button opens the panel
    assert window.failed_button.isVisible()
    window.failed_button.click()
    assert window.failed_dock.isVisible()
    assert len(window.browser.series_uids()) == 1


# ------------------------------------------------------------------------- context menu
def test_remove_from_catalog_keeps_the_files(qtbot, window, demo_dir, ct_dir, ct_volume):
    _import(qtbot, window, demo_dir)
    _import(qtbot, window, ct_dir)
    files = {p: p.stat().st_mtime_ns for p in demo_dir.iterdir()}
    ct_uid = ct_volume.metadata["SeriesInstanceUID"]
    (demo_uid,) = [u for u in window.browser.series_uids() if u != ct_uid]

    menu = _context_menu(window, demo_uid)
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Open", "Compare with…", "Export…", "Show DICOM Tags…", "Remove from Catalog…"]
    window.menu_action("Remove from Catalog").trigger()
    box = window.confirm_box
    assert box.isVisible() and "files stay on disk" in box.informativeText()
    box.button(QMessageBox.StandardButton.No).click()  # changed my mind: nothing happens
    assert len(window.browser.series_uids()) == 2

    _context_menu(window, demo_uid)
    window.menu_action("Remove from Catalog").trigger()
    with qtbot.waitSignal(window.series_removed, timeout=5_000):
        window.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert window.browser.series_uids() == [ct_uid]
    assert window.browser.item_for_series(demo_uid) is None
    with Catalog(window.catalog_path) as cat:
        assert [s.uid for s in cat.series()] == [ct_uid]
        assert cat.instances(demo_uid) == []
        assert [p.patient_name for p in cat.patients()] == ["Lymphoma"]
        assert cat.counts()["studies"] == 1 and cat.counts()["patients"] == 1
    assert {p: p.stat().st_mtime_ns for p in demo_dir.iterdir()} == files
    # importing the folder again brings the series back
    assert _import(qtbot, window, demo_dir).series_uids == [demo_uid]


def test_context_menu_open(qtbot, window, demo_dir, demo_volume):
    _import(qtbot, window, demo_dir)
    (uid,) = window.browser.series_uids()
    _context_menu(window, uid)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.menu_action("Open").trigger()
    assert np.array_equal(blocker.args[0].array, demo_volume.array)


def test_tag_browser_shows_and_filters_the_real_elements(qtbot, window, demo_dir):
    _import(qtbot, window, demo_dir)
    (uid,) = window.browser.series_uids()
    _context_menu(window, uid)
    window.menu_action("Show DICOM Tags").trigger()
    dialog = window.tag_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.instance_spin.maximum() == 35
    assert dialog.instance_spin.value() == 18  # the middle instance first
    ds = pydicom.dcmread(dialog.file_label.text(), stop_before_pixels=True)
    assert int(ds.InstanceNumber) == 18
    rows = dialog.visible_rows()
    assert ("(0010,0010)", "PatientName", str(ds.PatientName)) in rows
    assert ("(0008,0018)", "SOPInstanceUID", ds.SOPInstanceUID) in rows
    n_all = len(rows)
    assert n_all > 60
    # a sequence is expandable: its items hold elements
    seq = [dialog.tree.topLevelItem(i) for i in range(dialog.tree.topLevelItemCount())
           if dialog.tree.topLevelItem(i).text(2) == "SQ"]
    assert seq and seq[0].childCount() >= 1 and seq[0].child(0).childCount() >= 1

    qtbot.keyClicks(dialog.search, "patientname")
    rows = dialog.visible_rows()
    assert 1 <= len(rows) < n_all
    assert ("(0010,0010)", "PatientName", str(ds.PatientName)) in rows
    assert all("patientname" in (t + k + v).lower().replace(" ", "") for t, k, v in rows)
    dialog.search.setText("0020,0013")  # by tag
    assert [k for _, k, _ in dialog.visible_rows()] == ["InstanceNumber"]

    # another instance: the spin box and the slider agree and the rows follow
    dialog.search.clear()
    dialog.instance_slider.setValue(3)
    assert dialog.instance_spin.value() == 3
    ds3 = pydicom.dcmread(dialog.file_label.text(), stop_before_pixels=True)
    assert int(ds3.InstanceNumber) == 3
    assert ("(0008,0018)", "SOPInstanceUID", ds3.SOPInstanceUID) in dialog.visible_rows()


def test_tag_browser_reports_a_broken_file(app, qtbot, demo_dir, tmp_path):
    good = sorted(demo_dir.glob("*.dcm"))[0]
    cut = tmp_path / "cut.dcm"  # a real file meta, then bytes that are no data set
    cut.write_bytes(good.read_bytes()[:400] + bytes(range(256)) * 16)
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    dialog = TagBrowserDialog([cut, text, tmp_path / "gone.dcm"], "broken")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.error_label.isVisible()
    assert str(cut) in dialog.error_label.text()
    assert "problems found" in dialog.error_label.text()
    assert dialog.visible_rows()  # what could be read is still listed
    dialog.instance_spin.setValue(2)
    assert "not a DICOM file" in dialog.error_label.text() and dialog.visible_rows() == []
    dialog.instance_spin.setValue(3)
    assert "does not exist" in dialog.error_label.text()
    tree = read_tag_tree(good, max_elements=10)
    assert tree.truncated and len(tree.nodes) == 10 and tree.error == ""


def test_export_writes_the_series_atomically(qtbot, window, demo_dir, demo_volume, tmp_path):
    _import(qtbot, window, demo_dir)
    (uid,) = window.browser.series_uids()
    out = tmp_path / "out"
    with qtbot.waitSignal(window.export_finished, timeout=TIMEOUT_MS) as blocker:
        window.export_series(uid, out / "t1.nii.gz")
    assert blocker.args[0] == out / "t1.nii.gz"
    back = read_volume(out / "t1.nii.gz")
    assert np.array_equal(back.array, demo_volume.array)
    assert np.allclose(back.origin, demo_volume.origin, atol=1e-3)
    with qtbot.waitSignal(window.export_failed, timeout=TIMEOUT_MS) as blocker:
        window.export_series(uid, out / "t1.nhdr")
    assert "atomically" in blocker.args[0].message
    assert sorted(p.name for p in out.iterdir()) == ["t1.nii.gz"]  # no temp file left


# ------------------------------------------------------------------------- drag and drop
def test_dropping_a_folder_imports_it(qtbot, window, demo_dir, demo_volume):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_dir))])
    # dropped on the image area, where a user drops: the window takes it
    target = window.viewer.viewport()
    pos = QPointF(target.rect().center())
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        QApplication.sendEvent(target, drop)
    assert drop.isAccepted()
    assert blocker.args[0].series_uids == [demo_volume.metadata["SeriesInstanceUID"]]
    assert window.browser.series_uids() == blocker.args[0].series_uids
    # a web link is not something to import
    web = QMimeData()
    web.setUrls([QUrl("https://example.org/a.dcm")])
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, web,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


# ------------------------------------------------------------------------- settings
def test_settings_persist_across_windows(app, qtbot, tmp_path, demo_dir):
    ini = tmp_path / "settings.ini"
    first = _make_window(qtbot, tmp_path, settings_path=ini)
    first.resize(761, 593)  # within the 800×800 offscreen screen (Qt clamps)
    with qtbot.waitSignal(first.series_opened, timeout=TIMEOUT_MS):
        first.import_folder(demo_dir, open_first=True)
    first.state.set_window(123.0, 456.0)
    dialog = first.choose_preset_name()  # Image ▸ Save Current Window as Preset…
    dialog.setTextValue("My soft tissue")
    dialog.accept()
    assert [p.name for p in first.custom_presets] == ["My soft tissue"]
    first.failed_dock.show()
    first.close()
    assert ini.is_file()

    second = _make_window(qtbot, tmp_path, settings_path=ini, resize=False)
    assert (second.width(), second.height()) == (761, 593)
    assert second.geometry_restored
    assert second.last_import_folder() == str(demo_dir)
    assert second.failed_dock.isVisible()
    (action,) = second.custom_preset_actions()
    assert action.text() == "My soft tissue  (W 456 / L 123)"
    image_menu = next(a.menu() for a in second.menuBar().actions() if a.text() == "&Image")
    assert action in image_menu.actions()
    with qtbot.waitSignal(second.series_opened, timeout=TIMEOUT_MS):
        second.open_series(second.browser.series_uids()[0])
    assert second.state.window != (123.0, 456.0)
    action.trigger()
    assert second.state.window == (123.0, 456.0)
    # removable, and the removal persists
    (remove,) = second.remove_preset_menu.actions()
    remove.trigger()
    assert second.custom_preset_actions() == [] and second.custom_presets == []
    second.close()
    third = _make_window(qtbot, tmp_path, settings_path=ini)
    assert third.custom_presets == [] and not third.remove_preset_menu.isEnabled()
    third.close()


# ------------------------------------------------------------------------- shortcuts
def test_a_shortcut_changed_in_the_dialog_triggers_its_action(app, qtbot, tmp_path, demo_dir):
    ini = tmp_path / "settings.ini"
    win = _make_window(qtbot, tmp_path, settings_path=ini)
    with qtbot.waitSignal(win.series_opened, timeout=TIMEOUT_MS):
        win.import_folder(demo_dir, open_first=True)
    dialog = win.open_shortcuts_dialog()
    reset_id = win.reset_action.objectName()
    editor = dialog.editors[reset_id]
    assert editor.keySequence().toString() == "R"
    editor.setFocus()
    qtbot.keyClick(editor, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)
    assert editor.keySequence().toString() == "Ctrl+J"
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert not dialog.isVisible()
    assert win.reset_action.shortcut().toString() == "Ctrl+J"

    win.state.set_window(10.0, 20.0)
    win.activateWindow()
    qtbot.keyClick(win.viewer, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier)
    assert win.state.window != (10.0, 20.0)  # reset to the series' window
    win.state.set_window(10.0, 20.0)
    qtbot.keyClick(win.viewer, Qt.Key.Key_R)  # the old key no longer resets
    assert win.state.window == (10.0, 20.0)

    # a conflict is refused with a message, and nothing changes
    dialog = win.open_shortcuts_dialog()
    export = dialog.editors[win.export_open_action.objectName()]
    export.setKeySequence(QKeySequence("Ctrl+O"))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible()
    assert dialog.message_box.isVisible() and "Ctrl+O" in dialog.message_box.text()
    assert "Import Folder" in dialog.message_box.text()
    assert win.export_open_action.shortcut().toString() == "Ctrl+E"
    # the views' own keys are refused too
    export.setKeySequence(QKeySequence("PgDown"))
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and "next slice" in dialog.message_box.text()
    assert win.export_open_action.shortcut().toString() == "Ctrl+E"
    dialog.reject()
    win.close()

    # stored and applied at the next start; reset to defaults brings R back
    again = _make_window(qtbot, tmp_path, settings_path=ini)
    assert again.reset_action.shortcut().toString() == "Ctrl+J"
    dialog = again.open_shortcuts_dialog()
    dialog.reset_button.click()
    assert dialog.editors[reset_id].keySequence().toString() == "R"
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert again.reset_action.shortcut().toString() == "R"
    again.close()
    assert Path(ini).read_text().count("Ctrl+J") == 0
