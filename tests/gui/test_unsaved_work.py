"""No lost work: what is unsaved, Save / Discard / Cancel before it is dropped, autosave and
the offer to restore after a crash."""

from __future__ import annotations

import numpy as np
import pytest
from petct_helpers import window_on_ct, write_pet_ct
from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

import medview
from medview.app import library
from medview.app.measurements import Measurement
from medview.app.recovery import RecoveryError, RecoveryStore
from medview.core.labelmap import LabelMap
from medview.gui.main_window import MainWindow

SHAPE, SPACING = (6, 40, 40), (2.0, 2.0, 3.0)


@pytest.fixture(autouse=True)
def recovery_folder(tmp_path, monkeypatch):
    folder = tmp_path / "recovery"
    monkeypatch.setenv("MEDVIEW_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_pet_ct(tmp_path_factory.mktemp("petct"), shape=SHAPE, spacing=SPACING,
                        patient_id="U1", study_uid="1.2.826.0.1.3680043.8.498.41")


@pytest.fixture
def window(app, qtbot, tmp_path, study):
    return window_on_ct(qtbot, tmp_path, study, size=(900, 700))


def _uid(window, modality):
    return next(s.series_uid for p in library.list_patients(window.catalog)
                for st in p.studies for s in st.series if s.modality == modality)


def _paint(state, label=1, where=(0.5, 0.5)):
    state.set_tool("brush")
    state.set_paint_label(label)
    g = state.geometry("axial")
    state.begin_edit("brush")
    n = state.paint("axial", (g.width * where[0], g.height * where[1]))
    state.end_edit()
    assert n > 0
    return n


def _answer_box(button, seen: list):
    """Click ``button`` of the modal message box once it is up (the real QMessageBox)."""
    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)


# -- Save / Discard / Cancel ----------------------------------------------------------------
def test_opening_another_series_asks_cancel_keeps_discard_opens(window, qtbot):
    _paint(window.state)
    labels = window.state.labels
    ct_uid, pet_uid = _uid(window, "CT"), _uid(window, "PT")
    seen: list = []
    _answer_box(QMessageBox.StandardButton.Cancel, seen)
    assert window.open_series_asking(pet_uid) is None
    assert "label map" in seen[0] and "opening another series" in seen[0]
    assert window.state.volume.metadata["SeriesInstanceUID"] == ct_uid
    assert window.state.labels is labels
    _answer_box(QMessageBox.StandardButton.Discard, seen)
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        window.open_series_asking(pet_uid)
    assert window.state.volume.metadata["SeriesInstanceUID"] == pet_uid
    assert window.state.labels is None and not window.unsaved.work
    # nothing unsaved now: no question
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        window.open_series_asking(ct_uid)
    assert len(seen) == 2


def test_save_writes_the_label_map_and_measurements_then_opens(window, qtbot, tmp_path):
    n = _paint(window.state, label=3)
    g = window.state.geometry("axial")
    window.state.add_measurement(Measurement("distance", "axial", window.state.slice_index,
                                             (2, 2), (g.width - 2, g.height - 2)))
    out = tmp_path / "saved"
    out.mkdir()
    asked = []

    def choose(kind, suggested, filters):
        asked.append((kind, filters))
        return str(out / ("labels.nrrd" if kind == "labels" else "measurements.csv"))

    window.unsaved.choose_path = choose
    seen: list = []
    _answer_box(QMessageBox.StandardButton.Save, seen)
    with qtbot.waitSignal(window.series_opened, timeout=60_000):
        assert window.open_series_asking(_uid(window, "PT")) is not None
    # the label map where the reader chose; the measurement with the study (DICOM SR)
    assert [k for k, _ in asked] == ["labels"]
    assert "NIfTI" in asked[0][1]
    back = medview.formats.volume_io.read_volume(out / "labels.nrrd")
    assert int((back.array == 3).sum()) == n
    assert (out / "labels.segments.json").is_file()
    from medview.dicom.documents.store import load_annotations

    (saved,) = load_annotations(window.catalog, _uid(window, "CT")).annotations
    assert saved.kind == "distance" and saved.value("length").value > 0


def test_a_cancelled_save_keeps_the_series(window):
    _paint(window.state)
    window.unsaved.choose_path = lambda kind, suggested, filters: None
    _answer_box(QMessageBox.StandardButton.Save, [])
    assert window.open_series_asking(_uid(window, "PT")) is None
    assert window.state.labels is not None and window.unsaved.work.kinds == ["labels"]


def test_closing_the_window_asks_and_cancel_keeps_it_open(window, qtbot):
    _paint(window.state)
    seen: list = []
    _answer_box(QMessageBox.StandardButton.Cancel, seen)
    # the title bar's close button: the window system sends a close event to the native
    # window, which Qt delivers to the widget as a spontaneous one
    QApplication.sendEvent(window.windowHandle(), QCloseEvent())
    assert seen and "closing medview" in seen[0]
    assert window.isVisible()
    _answer_box(QMessageBox.StandardButton.Discard, seen)
    assert window.request_close()  # File ▸ Quit
    assert "quitting" in seen[1]
    assert not window.isVisible()


def test_an_export_marks_the_work_saved(window, qtbot, tmp_path):
    _paint(window.state)
    item = next(i for i in window.exportables() if i.name == "Label map")
    with qtbot.waitSignal(window.exported, timeout=60_000):
        window.export(item, "nifti", tmp_path / "l.nii.gz")
    assert not window.unsaved.work
    # an opened label map is saved work too
    _paint(window.state, label=2)
    assert window.unsaved.work.kinds == ["labels"]
    assert window.open_label_map(tmp_path / "l.nii.gz")
    assert not window.unsaved.work


# -- autosave and recovery ------------------------------------------------------------------
def test_autosave_then_restore_after_a_crash_onto_the_right_series(window, qtbot, tmp_path,
                                                                   recovery_folder):
    ct_uid = window.state.volume.metadata["SeriesInstanceUID"]
    window.state.new_label_map("labels")
    window.state.update_segment(1, name="Lesion", color=(10, 200, 30))
    _paint(window.state)
    window.state.set_edit_target("scribbles")
    _paint(window.state, label=2, where=(0.2, 0.2))  # beside the label: both visible
    window.unsaved.timer.setInterval(30)
    with qtbot.waitSignal(window.unsaved.autosaved, timeout=10_000) as blocker:
        pass
    assert {p.name.split(".")[1] for p in blocker.args[0]} == {"labels", "scribbles"}
    assert all(p.parent == recovery_folder for p in blocker.args[0])
    labels = window.state.labels.array.copy()
    # unchanged work is not written again
    assert window.unsaved.autosave() == []
    window.unsaved.timer.stop()

    # "the crash": the next start finds the files while another series is shown
    other = MainWindow(catalog_path=window.catalog_path)
    qtbot.addWidget(other)
    other.resize(900, 700)
    other.show()
    with qtbot.waitSignal(other.series_opened, timeout=60_000):
        other.open_series(_uid(other, "PT"))
    offered = []
    other.unsaved.ask_restore = lambda entries: offered.append(entries) or "restore"
    with qtbot.waitSignal(other.unsaved.restored, timeout=60_000):
        assert other.unsaved.offer_recovery() == "restore"
    assert len(offered[0]) == 2 and "CT" in offered[0][0].describe()
    assert other.state.volume.metadata["SeriesInstanceUID"] == ct_uid
    np.testing.assert_array_equal(other.state.labels.array, labels)
    assert other.state.labels.segments[0].name == "Lesion"
    assert other.state.labels.segments[0].color == (10, 200, 30)
    assert other.state.scribbles is not None and (other.state.scribbles.array == 2).any()
    assert other.unsaved.work.kinds == ["labels", "scribbles"]  # restored, still unsaved

    # a discard (here: before opening another series) removes them
    _answer_box(QMessageBox.StandardButton.Discard, [])
    with qtbot.waitSignal(other.series_opened, timeout=60_000):
        other.open_series_asking(_uid(other, "PT"))
    assert list(recovery_folder.glob("*.npz")) == []


def _autosave(window, qtbot):
    with qtbot.waitSignal(window.unsaved.autosaved, timeout=10_000) as blocker:
        assert window.unsaved.autosave()
    return blocker.args[0]


def test_a_clean_exit_removes_the_autosave_and_later_keeps_it(window, qtbot, recovery_folder):
    _paint(window.state)
    written = _autosave(window, qtbot)
    assert len(written) == 1 and written[0].is_file()
    # another start, answered "later": kept
    other = MainWindow(catalog_path=window.catalog_path)
    qtbot.addWidget(other)
    other.unsaved.ask_restore = lambda entries: "later"
    assert other.unsaved.offer_recovery() == "later"
    assert written[0].is_file()
    other.close()
    assert written[0].is_file()  # not that session's file
    window.unsaved.discard()  # the reader discards: the file goes
    assert not written[0].is_file()
    _paint(window.state, label=2)
    written = _autosave(window, qtbot)
    assert written[0].is_file()
    window.close()  # a clean exit
    assert not written[0].is_file()
    assert list(recovery_folder.glob("*")) == []  # no temporary file left either


def test_restore_of_a_series_not_in_the_catalog_says_so_and_keeps_the_file(
        app, qtbot, tmp_path, recovery_folder, ct_volume):
    store = RecoveryStore(recovery_folder)
    lm = LabelMap.like(ct_volume, np.ones(ct_volume.shape, np.uint8))
    path = store.save("1.2.3.999", "labels", lm, description="elsewhere")
    w = MainWindow(catalog_path=tmp_path / "empty.sqlite")
    qtbot.addWidget(w)
    w.unsaved.ask_restore = lambda entries: "restore"
    assert w.unsaved.offer_recovery() == "restore"
    assert "not in the catalog" in w.error_box.text() and "1.2.3.999" in w.error_box.text()
    assert path.is_file()


def test_recovery_files_are_checked_before_they_are_inflated(tmp_path, ct_volume):
    store = RecoveryStore(tmp_path)
    arr = np.zeros(ct_volume.shape, np.uint8)
    arr[3, 100:120, 200:230] = 4
    path = store.save("1.2.3", "labels", LabelMap.like(ct_volume, arr))
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # patient data: the user's only
    (entry,) = store.entries()
    np.testing.assert_array_equal(store.load(entry, ct_volume).array, arr)
    small = medview.Volume(np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 1.0))
    with pytest.raises(RecoveryError, match="grid"):
        store.load(entry, small)
    # a file that claims a small grid but inflates to more is refused, not inflated whole
    bomb = store.save("1.2.4", "labels", LabelMap.like(ct_volume, np.zeros_like(arr)))
    with np.load(bomb) as z:
        header = str(z["header"]).replace(
            str(list(arr.shape)), str([1, 1, 8])).replace(
            str(list(arr.shape)).replace(" ", ""), "[1,1,8]")
        packed = z["labels"]
    np.savez(bomb, header=np.array(header), labels=packed)
    (entry,) = [e for e in store.entries() if e.series_uid == "1.2.4"]
    with pytest.raises(RecoveryError):
        store.load(entry, medview.Volume(np.zeros((1, 1, 8), np.int16), (1.0, 1.0, 1.0)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert {e.series_uid for e in store.entries()} == {"1.2.3", "1.2.4"}
