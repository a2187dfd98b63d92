"""A 4D series opens phase by phase: only the phase looked at is read, within the cache's cap.

The bytes the test process reads (``rchar`` of /proc/self/io: every read() call, page cache
or not) are counted around each step: opening a phase reads about that phase's pixels, not
the series'; a phase kept in the volume cache comes back without reading; the cache's cap
bounds how many phases stay decoded. What the user sees is checked on the grabbed view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import medview
from medview.gui.main_window import MainWindow
from phantoms import write_ct_series

TIMEOUT_MS = 60_000
PHASES, SLICES, ROWS, COLS = 6, 20, 256, 256
UID = "1.2.826.0.1.3680043.8.498.4218.1"
PHASE_BYTES = SLICES * ROWS * COLS * 2  # int16 in the volume, uint16 stored


@pytest.fixture(scope="module")
def cine_dir(tmp_path_factory) -> Path:
    """One series, PHASES stacks at the same SLICES positions; phase p is p·60 HU brighter."""
    root = tmp_path_factory.mktemp("cine")
    ramp = np.linspace(-150, 150, COLS, dtype=np.float32)[None, None, :]
    for p in range(PHASES):
        hu = np.broadcast_to(ramp + 60 * p - 150, (SLICES, ROWS, COLS)).astype(np.int16)
        write_ct_series(root / f"p{p}", hu, series_uid=UID,
                        study_uid="1.2.826.0.1.3680043.8.498.4218.2",
                        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.4218.3",
                        patient_id="CINE", series_number=7, seed=p + 1,
                        file_names=f"P{p}_%04d.dcm")
        for i, path in enumerate(sorted((root / f"p{p}").glob("*.dcm"))):
            # the phantom writer derives instance UIDs from the series: one per phase here,
            # and the time point a scanner writes
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = \
                f"1.2.826.0.1.3680043.8.498.4218.10.{p + 1}.{i + 1}"
            ds.TemporalPositionIdentifier = p + 1
            ds.InstanceNumber = p * SLICES + i + 1
            ds.save_as(path, enforce_file_format=True)
    return root


def _rchar() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def _open(qtbot, window: MainWindow, action) -> tuple[object, int, object]:
    """(volume shown, bytes read meanwhile, task or None) of ``action()``."""
    before = _rchar()
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        task = action()
    return blocker.args[0], _rchar() - before, task


def test_a_4d_series_opens_phase_by_phase_within_the_cache_cap(qtbot, window, cine_dir):
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(cine_dir)
    (uid,) = blocker.args[0].series_uids
    assert uid == UID
    window.volume_cache.set_cap(int(2.5 * PHASE_BYTES))  # the user's budget: two phases
    reference = [medview.load(cine_dir, stack=k).array for k in range(PHASES)]
    assert len({int(r[0, 0, -1]) for r in reference}) == PHASES  # the phases differ

    first, read, task = _open(qtbot, window, lambda: window.open_series(uid))
    assert task is not None and first.shape == (SLICES, ROWS, COLS)
    np.testing.assert_array_equal(first.array, reference[0])
    # one phase read, not the six of the series (headers come from the catalog)
    assert PHASE_BYTES <= read < 1.5 * PHASE_BYTES + 2**20, read
    assert window.phases.n_stacks == PHASES and window.phases.next_action.isEnabled()
    shown0 = window.viewer.grab().toImage()

    seen = {0: first}
    for k in (1, 2, 3):  # "]" three times
        vol, read, task = _open(qtbot, window, window.phases.next_action.trigger)
        np.testing.assert_array_equal(vol.array, reference[k])
        assert PHASE_BYTES <= read < 1.5 * PHASE_BYTES + 2**20, (k, read)
        assert window.state.volume is vol and window.phases.current == (uid, k)
        seen[k] = vol
        assert window.volume_cache.nbytes <= window.volume_cache.cap_bytes
    # the cap holds two phases: the oldest went first, the last two stay decoded
    assert window.volume_cache.keys() == [(uid, 2), (uid, 3)]
    assert window.volume_cache.evicted[:2] == [uid, (uid, 1)]
    shown3 = window.viewer.grab().toImage()
    assert shown3 != shown0  # what the user sees changed with the phase

    # back one phase ("["): in the cache, shown at once, nothing read
    vol, read, task = _open(qtbot, window, window.phases.previous_action.trigger)
    assert task is None and vol is seen[2] and read < 0.1 * PHASE_BYTES
    # back to phase 0: evicted, read again (one phase)
    vol, read, task = _open(qtbot, window, lambda: window.open_series(uid, 0))
    assert task is not None and PHASE_BYTES <= read < 1.5 * PHASE_BYTES + 2**20
    np.testing.assert_array_equal(vol.array, reference[0])
    # the middle slice of phase 0 is on screen: the ramp's left and right ends differ
    image = window.viewer.displayed_image()
    np.testing.assert_array_equal(image, reference[0][SLICES // 2])
    assert window.viewer.grab().toImage() == shown0


def test_unsaved_labels_are_asked_about_before_another_phase(qtbot, window, cine_dir,
                                                              tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_RECOVERY_DIR", str(tmp_path / "recovery"))
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS) as blocker:
        window.import_folder(cine_dir)
    (uid,) = blocker.args[0].series_uids
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(uid)
    state = window.state
    state.new_label_map("labels")
    state.set_tool("brush")
    state.set_paint_label(1)
    g = state.geometry("axial")
    state.begin_edit("brush")
    assert state.paint("axial", (g.width / 2, g.height / 2)) > 0
    state.end_edit()
    asked = []
    window.unsaved.ask = lambda what, action: asked.append(action) or "cancel"
    assert window.phases.next_action.isEnabled()
    window.phases.next_action.trigger()
    # cancelled: the phase, the volume and the painted labels stay
    assert asked == ["showing another phase"]
    assert window.phases.current == (uid, 0) and window._load_task is None
    assert state.labels is not None and int(state.labels.array.max()) == 1
    window.unsaved.ask = lambda what, action: asked.append(action) or "discard"
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS) as blocker:
        window.phases.next_action.trigger()
    assert window.phases.current == (uid, 1) and state.labels is None
    assert blocker.args[0] is state.volume
