"""The main window on a real catalog: import, browse, open, read values, presets, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

import medview
from medview.app import library, series_loading
from medview.app.windowing import auto_window
from medview.gui.main_window import MainWindow
from medview.gui.series_browser import KIND_ROLE

TIMEOUT_MS = 60_000


def _open(qtbot, window: MainWindow, folder) -> medview.Volume:
    """Import ``folder`` and open its first series, as ``medview FOLDER`` does."""
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(folder, open_first=True)
    return blocker.args[0]


def _row_texts(item) -> list[str]:
    return [item.text(c) for c in range(item.columnCount())]


def test_new_window_is_empty_and_ready(window):
    assert window.browser.series_uids() == []
    assert window.state.volume is None
    assert window.viewer.hint.isVisible()
    assert window.browser_dock.isVisible()
    assert window.dockWidgetArea(window.browser_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert window.import_action.shortcut().toString() == "Ctrl+O"


def test_import_demo_lists_and_opens_it(qtbot, window, demo_dir, demo_volume):
    volume = _open(qtbot, window, demo_dir)
    uid = demo_volume.metadata["SeriesInstanceUID"]
    assert window.browser.series_uids() == [uid]
    assert volume.metadata["SeriesInstanceUID"] == uid
    assert np.array_equal(volume.array, demo_volume.array)
    # the viewer shows the middle slice of what was loaded
    assert window.viewer.displayed_slice == 17
    assert np.array_equal(window.viewer.displayed_image(), demo_volume.array[17])
    # Patient → Study → Series, with name, ID, date, modality, description and image count
    series_item = window.browser.item_for_series(uid)
    study_item = series_item.parent()
    patient_item = study_item.parent()
    assert patient_item.data(0, KIND_ROLE) == "patient"
    assert _row_texts(patient_item)[:2] == ["HFS", "crlab"]
    assert _row_texts(study_item)[2:] == ["2022-04-07", "MR", "35"]
    assert _row_texts(series_item) == ["#3 t1_fl2d_sag", "", "2022-04-07", "MR", "35"]
    assert window.browser.selected_series_uid() == uid
    assert "HFS" in window.windowTitle()
    # overlays
    assert window.viewer.overlays["top_left"].text() == "HFS\nID crlab"
    assert "Slice 18/35" in window.viewer.overlays["bottom_left"].text()


def test_double_click_in_the_browser_opens_a_series(qtbot, window, ct_dir, ct_volume):
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(ct_dir)
    assert window.state.volume is None
    # CITATION.txt beside the slices is not DICOM: reported, not fatal
    assert [os.path.basename(p) for p, _ in blocker.args[0].errors] == ["CITATION.txt"]
    assert "1 file(s) could not be read" in window.statusBar().currentMessage()
    uid = ct_volume.metadata["SeriesInstanceUID"]
    assert window.browser.series_uids() == [uid]
    item = window.browser.item_for_series(uid)
    rect = window.browser.visualItemRect(item)
    viewport = window.browser.viewport()
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
        QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args[0].metadata["SeriesInstanceUID"] == uid
    assert np.array_equal(window.viewer.displayed_image(),
                          ct_volume.array[ct_volume.shape[0] // 2])


def test_scrolling_in_the_window_shows_the_right_slices(qtbot, window, demo_dir, demo_volume):
    _open(qtbot, window, demo_dir)
    viewer = window.viewer
    for key, expected in [(Qt.Key.Key_Down, 18), (Qt.Key.Key_Down, 19), (Qt.Key.Key_Up, 18),
                          (Qt.Key.Key_End, 34), (Qt.Key.Key_Home, 0)]:
        qtbot.keyClick(viewer, key)
        assert viewer.displayed_slice == expected
        assert np.array_equal(viewer.displayed_image(), demo_volume.array[expected])


def test_ct_preset_keys_and_reset(qtbot, window, ct_dir):
    _open(qtbot, window, ct_dir)
    viewer = window.viewer
    assert window.state.window == (40.0, 400.0)  # the series' own window
    for key, expected in [(Qt.Key.Key_4, (-600.0, 1500.0)), (Qt.Key.Key_1, (40.0, 80.0)),
                          (Qt.Key.Key_2, (75.0, 200.0)), (Qt.Key.Key_3, (40.0, 40.0)),
                          (Qt.Key.Key_5, (50.0, 350.0)), (Qt.Key.Key_6, (50.0, 400.0)),
                          (Qt.Key.Key_7, (30.0, 150.0)), (Qt.Key.Key_8, (400.0, 1800.0))]:
        qtbot.keyClick(viewer, key)
        assert window.state.window == expected
        low, high = viewer.image_item.levels
        assert (low, high) == (expected[0] - expected[1] / 2, expected[0] + expected[1] / 2)
    assert "W 1800  L 400" in viewer.overlays["bottom_right"].text()
    qtbot.keyClick(viewer, Qt.Key.Key_R)
    assert window.state.window == (40.0, 400.0)


def test_preset_keys_on_mr_give_the_automatic_window(qtbot, window, demo_dir, demo_volume):
    _open(qtbot, window, demo_dir)
    window.state.set_window(10, 20)
    qtbot.keyClick(window.viewer, Qt.Key.Key_4)
    assert window.state.window == pytest.approx(auto_window(demo_volume.array))


def test_status_bar_shows_the_value_under_the_cursor(qtbot, window, ct_dir, ct_volume):
    _open(qtbot, window, ct_dir)
    viewer = window.viewer
    k = window.state.slice_index
    for x, y in [(256, 256), (30, 470), (400, 100)]:
        QTest.mouseMove(viewer.viewport(), viewer.viewport_pos_of_pixel(x, y))
        value = int(ct_volume.array[k, y, x])
        lps = ct_volume.index_to_lps((x, y, k))
        text = window.cursor_label.text()
        assert f"x {x}  y {y}  z {k}" in text
        assert f"value {value} HU" in text
        assert f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm" in text


def test_window_level_drag_in_the_window(qtbot, window, ct_dir):
    _open(qtbot, window, ct_dir)
    vp = window.viewer.viewport()
    start = vp.rect().center()
    c0, w0 = window.state.window
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dx, dy in [(10, -5), (40, -20), (80, -40)]:
        QTest.mouseMove(vp, start + type(start)(dx, dy))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start + type(start)(80, -40))
    c1, w1 = window.state.window
    assert w1 > w0  # dragged right: wider
    assert c1 < c0  # dragged up: lower level


def test_import_of_a_missing_folder_shows_an_error(qtbot, window, tmp_path):
    missing = tmp_path / "no-such-folder"
    with qtbot.waitSignal(window.import_failed, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(missing)
    error = blocker.args[0]
    assert "no such file or folder" in error.message
    assert window.error_box is not None and window.error_box.isVisible()
    assert "no such file or folder" in window.error_box.text()
    assert "FileNotFoundError" in window.error_box.detailedText()
    assert "failed" in window.statusBar().currentMessage()
    assert window.import_action.isEnabled()  # ready for the next import


def test_import_of_a_folder_without_dicom_says_so(qtbot, window, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an image")
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(folder, open_first=True)
    assert blocker.args[0].series_uids == []
    assert window.error_box is not None and window.error_box.isVisible()
    assert "No DICOM image series" in window.error_box.text()
    assert window.state.volume is None


def test_opening_an_unknown_series_shows_an_error(qtbot, window):
    with qtbot.waitSignal(window.series_failed, timeout=TIMEOUT_MS) as blocker:
        window.open_series("1.2.3.4.5.6.7")
    assert "1.2.3.4.5.6.7" in blocker.args[0].message
    assert window.error_box.isVisible()
    assert window.state.volume is None


def test_cancel_stops_a_load_and_hides_the_progress(qtbot, window, monkeypatch):
    started = threading.Event()

    def slow_load(catalog, series_uid, *, progress, on_first=None):
        started.set()
        for i in range(10_000):
            progress.update(i / 10_000, "reading")
            progress.check()
            threading.Event().wait(0.005)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(series_loading, "load_series_progressively", slow_load)
    task = window.open_series("1.2.3")
    assert started.wait(10)
    qtbot.waitUntil(window.cancel_button.isVisible, timeout=5_000)
    with qtbot.waitSignal(task.signals.done, timeout=TIMEOUT_MS):
        QTest.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage() == "Loading cancelled."
    assert not window.progress_bar.isVisible()
    assert window.error_box is None


def test_a_second_open_supersedes_the_first(qtbot, window, demo_dir, ct_dir, ct_volume):
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS):
        window.import_folder(demo_dir)
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS):
        window.import_folder(ct_dir)
    assert len(window.browser.series_uids()) == 2
    demo_uid, ct_uid = (window.browser.series_uids()[i] for i in (0, 1))
    if demo_uid == ct_volume.metadata["SeriesInstanceUID"]:
        demo_uid, ct_uid = ct_uid, demo_uid
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(demo_uid)
        window.open_series(ct_uid)
    qtbot.waitUntil(lambda: not window.tasks.running, timeout=TIMEOUT_MS)
    assert blocker.args[0].metadata["SeriesInstanceUID"] == ct_uid
    assert window.state.volume.metadata["SeriesInstanceUID"] == ct_uid


@pytest.mark.parametrize("args", [["--demo"], ["{ct}"]])
def test_medview_command_opens_the_window_and_quits(tmp_path, ct_dir, args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MEDVIEW_GUI_EXIT_AFTER_MS="5000",
               MEDVIEW_DB=str(tmp_path / "catalog.sqlite"))
    argv = [a.format(ct=ct_dir) for a in args]
    code = "import sys; from medview.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "opened series" in proc.stderr  # the first series was shown before the quit
    with library.open_catalog(tmp_path / "catalog.sqlite") as cat:
        names = [p.name for p in library.list_patients(cat)]
    assert names == (["HFS"] if args == ["--demo"] else ["Lymphoma"])


def test_a_catalog_that_cannot_be_opened_is_reported_not_fatal(app, qtbot, tmp_path, demo_dir):
    not_a_database = tmp_path / "catalog.sqlite"
    not_a_database.write_bytes(b"this is not SQLite" * 100)
    win = MainWindow(catalog_path=not_a_database)
    qtbot.addWidget(win)
    win.show()
    assert win.catalog is None
    assert win.error_box is not None and win.error_box.isVisible()
    assert win.last_error.title == "Opening the catalog"
    assert win.import_folder(demo_dir) is None
    assert "catalog could not be opened" in win.error_box.text()
    assert win.open_series("1.2.3") is None
