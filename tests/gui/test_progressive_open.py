"""Never frozen, never blank: a series shows its middle slice first and fills in while the
event loop keeps answering; reopening is instant from the volume cache; cancel and broken
files leave what was read on screen."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtTest import QTest

import medview
from medview.app.windowing import auto_window, default_window
from medview.gui.main_window import MainWindow
from phantoms import write_ct_series

TIMEOUT_MS = 120_000
#: the issue's limit on the longest stall of the event loop while a 300-slice series loads
MAX_STALL_MS = 100.0


@pytest.fixture(scope="module")
def ct300_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ct300")
    write_ct_series(folder, shape=(300, 512, 512))
    return folder


@pytest.fixture(scope="module")
def ct300_volume(ct300_dir) -> medview.Volume:
    return medview.load(ct300_dir)


def _import(qtbot, window: MainWindow, folder) -> str:
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(folder)
    (uid,) = blocker.args[0].series_uids
    return uid


class StallMeter:
    """A 10 ms QTimer on the GUI thread that records the longest gap between its ticks."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.ticks = 0
        self.longest_ms = 0.0

    def start(self) -> None:
        self.ticks, self.longest_ms = 0, 0.0
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        gap = self.clock.nsecsElapsed() / 1e6
        self.clock.restart()
        self.longest_ms = max(self.longest_ms, gap)
        self.ticks += 1

    def stop(self) -> float:
        """Stop; the longest gap, including the one since the last tick (in ms)."""
        self.timer.stop()
        return max(self.longest_ms, self.clock.nsecsElapsed() / 1e6)


@pytest.mark.parametrize("layout", ["single", "2x2"])
def test_the_event_loop_keeps_answering_while_a_300_slice_series_loads(qtbot, window,
                                                                        ct300_dir, layout):
    """The longest gap between the ticks of a 10 ms timer while the series loads < 100 ms.

    This machine is shared: another process can take the CPU from the GUI thread for longer
    than that whatever medview does. So the load is measured up to three times (the cache
    emptied each time) and the best one counts; a GUI thread that medview blocks fails all
    three.
    """
    window.view_grid.set_layout(layout)  # 2×2: the reformats redraw as slices arrive
    uid = _import(qtbot, window, ct300_dir)
    qtbot.wait(200)  # let the import's last redraws settle: measure the load only
    meter = StallMeter()
    seen = []
    window.first_image_shown.connect(lambda v: seen.append(window.state.n_loaded))
    stalls = []
    for _ in range(3):
        window.volume_cache.clear()
        meter.start()
        with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
            assert window.open_series(uid) is not None  # loaded, not from the cache
        stalls.append(meter.stop())
        # the load ran while the timer did: the first image came before the volume was full
        assert 1 <= seen[-1] < 300
        assert meter.ticks >= 5
        if stalls[-1] < MAX_STALL_MS:
            break
    assert min(stalls) < MAX_STALL_MS, f"the event loop stalled for {stalls} ms"


def test_the_middle_slice_shows_first_and_the_rest_fills_in(qtbot, window, ct300_dir,
                                                           ct300_volume):
    uid = _import(qtbot, window, ct300_dir)
    viewer, state = window.viewer, window.state
    at_first = {}
    emits = []

    def on_first(volume):
        at_first.update(
            n_loaded=state.n_loaded, slice=viewer.displayed_slice,
            image=viewer.displayed_image().copy(), overlay=viewer.overlays["bottom_left"].text(),
            label=window.progress_label.text(), window=state.window)
        state.data_changed.connect(lambda: emits.append((time.monotonic(), state.n_loaded,
                                                         threading.current_thread())))

    window.first_image_shown.connect(on_first)
    start = time.monotonic()
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(uid)
    elapsed = time.monotonic() - start
    # the first picture: the middle slice, exact, while most slices were still unread
    assert at_first["slice"] == 150 and at_first["n_loaded"] < 300
    np.testing.assert_array_equal(at_first["image"], ct300_volume.array[150])
    assert f"Loading {at_first['n_loaded']}/300" in at_first["overlay"]
    assert at_first["label"].startswith("Loading ")
    assert at_first["window"] == default_window(ct300_volume)  # CT: no pixels needed
    # then updates on the GUI thread, counting up, at a bounded rate (≤ 20 Hz + the last)
    assert emits and all(t is threading.main_thread() for _, _, t in emits)
    counts = [n for _, n, _ in emits]
    assert counts == sorted(counts) and counts[-1] == 300
    assert len(emits) <= elapsed / 0.05 + 3
    # complete: the same volume object, now equal to medview.load, no loading text
    volume = blocker.args[0]
    assert volume is state.volume
    np.testing.assert_array_equal(volume.array, ct300_volume.array)
    assert state.loaded_mask is None and not state.is_loading
    assert "Loading" not in viewer.overlays["bottom_left"].text()
    assert uid in window.volume_cache


@pytest.mark.parametrize("touch", [False, True])
def test_the_window_of_the_first_slice_is_refined_unless_the_user_changed_it(
        qtbot, window, demo_dir, demo_volume, touch):
    uid = _import(qtbot, window, demo_dir)
    at_first = []

    def on_first(volume):
        at_first.append(window.state.window)
        if touch:
            window.state.set_window(100.0, 50.0)

    window.first_image_shown.connect(on_first)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(uid)
    k = demo_volume.shape[0] // 2
    assert at_first == [pytest.approx(auto_window(demo_volume.array[k]))]  # MR: 1–99 %
    final = auto_window(demo_volume.array)
    assert final != pytest.approx(at_first[0])
    assert window.state.window == ((100.0, 50.0) if touch else pytest.approx(final))
    window.state.reset()  # R: back to the window of the whole volume
    assert window.state.window == pytest.approx(final)


def test_asking_again_for_the_series_loading_lets_it_go_on(qtbot, window, ct300_dir):
    uid = _import(qtbot, window, ct300_dir)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        task = window.open_series(uid)
        assert window.open_series(uid) is task and not task.progress.cancelled
    assert window.volume_cache.keys() == [uid]


def test_scrolling_while_loading_shows_each_slice_once_it_arrives(qtbot, window, ct300_dir,
                                                                  ct300_volume):
    uid = _import(qtbot, window, ct300_dir)
    viewer = window.viewer
    with qtbot.waitSignal(window.first_image_shown, timeout=TIMEOUT_MS):
        window.open_series(uid)
    qtbot.keyClick(viewer, Qt.Key.Key_End)  # the last slice: read last
    assert viewer.displayed_slice == 299
    qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS).wait()
    qtbot.waitUntil(lambda: not window.tasks.running, timeout=TIMEOUT_MS)
    np.testing.assert_array_equal(viewer.displayed_image(), ct300_volume.array[299])


def test_reopening_a_series_comes_from_the_cache_and_the_oldest_goes_first(
        qtbot, window, demo_dir, ct_dir):
    demo_uid = _import(qtbot, window, demo_dir)
    ct_uid = _import(qtbot, window, ct_dir)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        assert window.open_series(demo_uid) is not None  # loaded by a task
    demo = blocker.args[0]
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(ct_uid)
    ct = blocker.args[0]
    assert window.volume_cache.keys() == [demo_uid, ct_uid]
    with qtbot.waitSignal(window.series_opened, timeout=1_000) as blocker:
        assert window.open_series(demo_uid) is None  # no task: shown at once
    assert blocker.args[0] is demo and window.state.volume is demo
    assert window.viewer.displayed_slice == demo.shape[0] // 2
    # a cap that holds only one of them: opening the CT again evicts the demo
    window.volume_cache.set_cap(max(demo.nbytes, ct.nbytes))
    assert window.volume_cache.keys() == [demo_uid]
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        assert window.open_series(ct_uid) is not None
    assert window.volume_cache.keys() == [ct_uid]
    assert window.volume_cache.nbytes == ct.nbytes <= window.volume_cache.cap_bytes
    # larger than the cap: shown, not cached
    window.volume_cache.set_cap(ct.nbytes // 2)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(demo_uid)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        assert window.open_series(ct_uid) is not None
    assert window.state.volume is blocker.args[0] and ct_uid not in window.volume_cache


def test_cancel_keeps_what_was_read_and_caches_nothing(qtbot, window, ct300_dir, ct300_volume):
    uid = _import(qtbot, window, ct300_dir)
    shown = []

    def cancel_at_first_image(volume):
        shown.append(window.state.n_loaded)
        QTest.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)

    window.first_image_shown.connect(cancel_at_first_image)
    task = window.open_series(uid)
    with qtbot.waitSignal(task.signals.done, timeout=TIMEOUT_MS):
        pass
    assert shown and window.statusBar().currentMessage() == "Loading cancelled."
    assert uid not in window.volume_cache and len(window.volume_cache) == 0
    state = window.state
    assert state.volume is not None and not state.is_loading
    n = state.n_loaded
    assert 1 <= n < 300
    assert f"Incomplete {n}/300" in window.viewer.overlays["bottom_left"].text()
    loaded = np.flatnonzero(state.loaded_mask)
    np.testing.assert_array_equal(state.volume.array[loaded], ct300_volume.array[loaded])
    np.testing.assert_array_equal(window.viewer.displayed_image(), ct300_volume.array[150])
    # opening it again loads it again, completely
    window.first_image_shown.disconnect(cancel_at_first_image)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        assert window.open_series(uid) is not None
    np.testing.assert_array_equal(blocker.args[0].array, ct300_volume.array)
    assert uid in window.volume_cache


def test_a_file_broken_after_import_is_reported_and_the_rest_shown(qtbot, window, tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(40, 64, 64), seed=7)
    want = medview.load(folder)
    uid = _import(qtbot, window, folder)
    files = sorted(folder.glob("*.dcm"))
    broken = files[3]  # far from the middle: read after the first image is shown
    broken.write_bytes(broken.read_bytes()[:-1000])
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(uid)
    volume = blocker.args[0]
    assert window.state.volume is volume
    box = window.error_box
    assert box is not None and box.isVisible()
    assert "1 slice(s)" in box.text() and broken.name in box.detailedText()
    bad = [k for k in range(40) if not np.array_equal(volume.array[k], want.array[k])]
    assert len(bad) == 1
    # a stand-in interpolated from its neighbours (issue 13), marked as made up
    k = bad[0]
    mid = (want.array[k - 1].astype(np.float32) + want.array[k + 1]) / 2
    assert np.abs(volume.array[k] - mid).max() <= 1.0
    assert [z for z, _ in volume.metadata["made_up_slices"]] == [k]
    assert uid not in window.volume_cache


def test_a_broken_first_slice_is_a_stand_in_not_a_failure(qtbot, window, tmp_path):
    from medview.dicom.series.progressive import open_progressive

    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(20, 32, 32), seed=9)
    want = medview.load(folder)
    uid = _import(qtbot, window, folder)
    middle = Path(open_progressive(folder).plan.stack.slices[10].header.path)
    middle.write_bytes(middle.read_bytes()[:-500])
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(uid)
    volume = blocker.args[0]
    keep = np.arange(20) != 10
    np.testing.assert_array_equal(volume.array[keep], want.array[keep])
    ((z, reason),) = volume.metadata["made_up_slices"]
    assert z == 10 and middle.name in reason and "truncated" in reason
    assert window.error_box is not None and window.error_box.isVisible()
    assert middle.name in window.error_box.detailedText()
    assert uid not in window.volume_cache


def test_the_cache_cap_comes_from_the_setting_unless_the_variable_is_set(
        app, qtbot, tmp_path, monkeypatch):
    settings = tmp_path / "settings.ini"
    monkeypatch.delenv("MEDVIEW_CACHE_MB", raising=False)

    def new_window():
        win = MainWindow(catalog_path=tmp_path / "catalog.sqlite", settings_path=settings)
        qtbot.addWidget(win)
        return win

    first = new_window()
    dialog = first.open_cache_dialog()  # Settings ▸ Memory for Open Series…
    assert dialog.intValue() == first.volume_cache.cap_bytes // 2**20
    dialog.setIntValue(48)
    dialog.accept()
    assert first.volume_cache.cap_bytes == 48 * 2**20
    first.close()
    assert new_window().volume_cache.cap_bytes == 48 * 2**20  # remembered
    monkeypatch.setenv("MEDVIEW_CACHE_MB", "16")
    assert new_window().volume_cache.cap_bytes == 16 * 2**20  # the variable wins
    monkeypatch.setenv("MEDVIEW_CACHE_MB", "plenty")  # a bad value: logged, not fatal
    win = new_window()
    assert win.volume_cache.cap_bytes > 0 and win.volume_cache.cap_bytes != 16 * 2**20
    with pytest.raises(ValueError, match="mb"):
        win.set_cache_cap_mb(-1)


def test_a_slice_beyond_int16_widens_the_volume_and_the_view_stays(qtbot, window, tmp_path):
    from phantoms import ct_phantom_volume

    hu = ct_phantom_volume((16, 24, 24), (1.0, 1.0, 2.0), 1).astype(np.int32)
    hu[1, 5, 5] = 40_000  # far from the middle: found after the first image is shown
    write_ct_series(tmp_path / "ct", hu, stored="uint16", spacing_xyz=(1.0, 1.0, 2.0))
    want = medview.load(tmp_path / "ct")
    uid = _import(qtbot, window, tmp_path / "ct")
    state = window.state
    seen = []

    def on_first(volume):
        seen.append(volume.array.dtype)
        state.set_slice(1)  # the user scrolls and windows while it loads
        state.set_window(300.0, 1000.0)

    window.first_image_shown.connect(on_first)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.open_series(uid)
    assert seen == [np.dtype(np.int16)]
    volume = blocker.args[0]
    assert state.volume is volume and volume.array.dtype == np.int32
    np.testing.assert_array_equal(volume.array, want.array)
    assert state.slice_index == 1 and state.window == (300.0, 1000.0)  # the view stayed
    assert state.loaded_mask is None
    np.testing.assert_array_equal(window.viewer.displayed_image(), want.array[1])
    state.reset()  # R: the window of the complete volume
    assert state.window == default_window(want)
