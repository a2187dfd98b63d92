"""Label editing by mouse and keyboard, and the scribble classifier (the model: tests/app)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from step_checks import crop
from viewer_helpers import dock_session

from medview.app.state import ViewerState
from medview.gui.main_window import MainWindow


@pytest.fixture(scope="module")
def ct_crop(ct_volume):
    """12 slices of 256² around the body's middle: seconds, not minutes, to classify."""
    nz = ct_volume.shape[0]
    return crop(ct_volume, slice(nz // 2 - 6, nz // 2 + 6), slice(128, 384), slice(128, 384))



def test_brush_by_mouse_on_the_view_and_ctrl_z(app, qtbot, tmp_path, ct_crop):
    window = MainWindow(catalog_path=tmp_path / "c.sqlite")
    qtbot.addWidget(window)
    window.resize(1200, 900)
    window.show()
    qtbot.waitExposed(window)
    state = window.state
    state.set_volume(ct_crop)
    state.set_tool("brush")
    assert window.segment_dock.isVisible()
    state.set_brush_mm(2.0)
    view = window.viewer
    vp = view.viewport()
    start, end = view.viewport_pos_of_pixel(60, 128), view.viewport_pos_of_pixel(180, 128)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 9):
        QTest.mouseMove(vp, start + (end - start) * i / 8)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    labels = state.labels.array
    k = state.slice_index
    row = labels[k, 128]
    assert row[70:170].all()  # a continuous line under the mouse path
    assert labels[k, 100:110].sum() == 0 and labels[k - 1].sum() == 0
    assert view.label_item.isVisible()
    window.segment_panel.undo_action.trigger()  # Ctrl+Z
    assert not labels.any()
    window.segment_panel.redo_action.trigger()
    assert row[70:170].all()
    # renaming the segment through the list
    item = window.segment_panel.segments.item(0)
    item.setText("Aorta")
    assert state.labels.segments[0].name == "Aorta"


def test_scribble_classifier_train_correct_retrain_save_apply(app, qtbot, tmp_path, ct_crop):
    state = ViewerState()
    from medview.gui.segment_panel import SegmentPanel
    from medview.gui.tasks import TaskRunner

    runner = TaskRunner()
    session = dock_session(runner)
    panel = SegmentPanel(state, session)
    qtbot.addWidget(panel)
    state.set_volume(ct_crop)
    state.set_edit_target("scribbles")
    state.new_label_map()
    from scipy import ndimage

    hu = ct_crop.array
    # judged away from edges (3 voxels in-plane), where a pixel classifier can be sure
    inner = np.zeros((1, 7, 7), bool)
    inner[0, 3, :] = inner[0, :, 3] = True
    air = ndimage.binary_erosion(hu < -500, inner, iterations=3)
    tissue = ndimage.binary_erosion((hu > -100) & (hu < 150), inner, iterations=3)
    bone = ndimage.binary_erosion(hu > 300, inner, iterations=1)
    # scribbles: short strokes inside air and soft tissue on two slices, through the state's
    # brush (the mouse path is tested above)
    for k in (3, 8):
        state.set_slice(k)
        for mask, label in ((air, 1), (tissue, 2)):
            rows, cols = np.nonzero(mask[k])
            pick = np.linspace(0, rows.size - 1, 12).astype(int)
            state.set_paint_label(label)
            for r, c in zip(rows[pick], cols[pick], strict=True):
                state.paint("axial", (c + 0.5, r + 0.5))
    scribbles = state.scribbles.array
    assert set(np.unique(scribbles)) == {0, 1, 2}
    with qtbot.waitSignal(panel.trained, timeout=120_000) as blocker:
        panel.train()
    model = blocker.args[0]
    result = state.labels.array
    assert result.shape == hu.shape
    assert (result[air] == 1).mean() > 0.95
    assert (result[tissue] == 2).mean() > 0.90

    # correct: bone was learnt as tissue or air; scribble it as a third class and retrain
    assert not np.any(result == 3)
    state.set_paint_label(3)
    k = 6
    state.set_slice(k)
    rows, cols = np.nonzero(bone[k])
    assert rows.size > 20
    for r, c in zip(rows[:: max(rows.size // 15, 1)], cols[:: max(rows.size // 15, 1)],
                    strict=True):
        state.paint("axial", (c + 0.5, r + 0.5))
    with qtbot.waitSignal(panel.trained, timeout=120_000):
        panel.train()
    result = state.labels.array
    assert (result[bone] == 3).mean() > 0.6
    assert (result[air] == 1).mean() > 0.95

    path = panel.save_model(tmp_path / "clf.mvclf")
    assert path.is_file() and (tmp_path / "clf.mvclf.sha256").is_file()
    expected = result.copy()
    state.set_labels(None)
    with qtbot.waitSignal(panel.trained, timeout=120_000):
        panel.apply_model(path)
    assert np.array_equal(state.labels.array, expected)
    assert model is not panel.model  # the loaded one
    assert session.close()


def test_training_without_two_labels_says_what_to_do(app, qtbot, ct_crop):
    from medview.gui.segment_panel import SegmentPanel
    from medview.gui.tasks import TaskRunner

    state = ViewerState()
    runner = TaskRunner()
    session = dock_session(runner)
    panel = SegmentPanel(state, session)
    qtbot.addWidget(panel)
    state.set_volume(ct_crop)
    state.set_edit_target("scribbles")
    state.paint("axial", (10.5, 10.5))
    assert panel.train() is None
    assert "two labels" in panel.status.text()
    assert session.close()


def test_an_old_pickle_model_is_converted_only_after_the_user_confirms(app, qtbot, tmp_path,
                                                                        ct_crop):
    import pickle

    from model_payloads import legacy_file, memmap_payload
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from medview.core.labelmap import LabelMap
    from medview.core.segmentation.classifier import PixelClassifier, train_classifier
    from medview.gui.segment_panel import SegmentPanel
    from medview.gui.tasks import TaskRunner

    scr = np.zeros(ct_crop.shape, np.uint8)
    scr[3][ct_crop.array[3] < -500] = 1
    scr[3][(ct_crop.array[3] > -100) & (ct_crop.array[3] < 150)] = 2
    model = train_classifier(ct_crop, LabelMap.like(ct_crop, scr), n_trees=4, max_depth=6)
    state, runner = ViewerState(), TaskRunner()
    session = dock_session(runner)
    panel = SegmentPanel(state, session)
    qtbot.addWidget(panel)
    state.set_volume(ct_crop)
    shown = []

    def answer(button):
        def click():
            box = QApplication.activeModalWidget()
            assert isinstance(box, QMessageBox)
            shown.append((box.text(), box.grab().toImage()))
            box.button(button).click()
        QTimer.singleShot(0, click)

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.mvclf"
    legacy_file(evil, memmap_payload(marker), model.to_bytes())
    answer(QMessageBox.StandardButton.No)
    assert panel.apply_model(evil) is None
    assert "could run code" in panel.status.text() and state.labels is None
    assert not marker.exists() and "run any code" in shown[0][0]
    image = shown[0][1]
    assert image.width() > 100 and image.height() > 50  # the dialog was really on screen

    old = tmp_path / "old.mvclf"
    legacy_file(old, pickle.dumps(model.estimator, protocol=5), model.to_bytes())
    answer(QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(panel.trained, timeout=120_000):
        panel.apply_model(old)
    assert np.array_equal(state.labels.array, model.predict(ct_crop).array)
    assert PixelClassifier.load(old).kind == "random_forest"  # now in the safe format
    assert session.close()
