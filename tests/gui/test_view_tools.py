"""Orientation letters, invert, saving the view as PNG and the browser search (issue 4)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from viewer_helpers import make_viewer

from medview.core.volume import Volume
from medview.gui.overlays import direction_letters, edge_texts
from medview.gui.slice_viewer import INVERTED_LUT, SliceViewer

TIMEOUT_MS = 60_000


def _viewer(qtbot, volume: Volume | None, size=(640, 560)) -> SliceViewer:
    return make_viewer(qtbot, volume, size)


def _edges(viewer: SliceViewer) -> dict[str, str]:
    return {edge: label.text() for edge, label in viewer.edge_labels.items()}


def _gray(image: QImage) -> np.ndarray:
    """A QImage as a (h, w) uint8 grey array."""
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    array = np.frombuffer(ptr, dtype=np.uint8, count=image.bytesPerLine() * image.height())
    return array.reshape(image.height(), image.bytesPerLine())[:, : image.width()].copy()


# -- orientation letters --------------------------------------------------------------------
def test_direction_letters_dominant_and_oblique():
    assert direction_letters((1, 0, 0)) == "L"
    assert direction_letters((-1, 0, 0)) == "R"
    assert direction_letters((0, 1, 0)) == "P"
    assert direction_letters((0, -1, 0)) == "A"
    assert direction_letters((0, 0, 1)) == "S"
    assert direction_letters((0, 0, -1)) == "I"
    s = np.sqrt(0.5)
    assert direction_letters((-s, -s, 0)) == "RA"
    assert direction_letters((0.2, 0.96, 0)) == "P"  # 12°: still straight
    assert direction_letters((0.1, -0.5, -0.86)) == "IA"


def test_sagittal_demo_shows_anterior_left_superior_top(app, qtbot, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    # x runs to +P, y to -S (rows go down the head): a sagittal view seen from the left
    assert _edges(viewer) == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    w, h = viewer.width(), viewer.height()
    geo = {edge: label.geometry() for edge, label in viewer.edge_labels.items()}
    assert geo["left"].left() < w / 4 and abs(geo["left"].center().y() - h / 2) < 20
    assert geo["right"].right() > 3 * w / 4 and abs(geo["right"].center().y() - h / 2) < 20
    assert geo["top"].top() < h / 4 and abs(geo["top"].center().x() - w / 2) < 20
    assert geo["bottom"].bottom() > 3 * h / 4 and abs(geo["bottom"].center().x() - w / 2) < 20
    assert all(label.isVisible() for label in viewer.edge_labels.values())


def test_axial_ct_shows_right_on_the_left(app, qtbot, ct_volume):
    viewer = _viewer(qtbot, ct_volume)
    assert _edges(viewer) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_flipped_and_oblique_synthetic_volumes(app, qtbot):
    array = np.zeros((3, 8, 8), dtype=np.int16)
    flipped = Volume(array, direction=np.diag([-1.0, -1.0, 1.0]))
    viewer = _viewer(qtbot, flipped)
    assert _edges(viewer) == {"left": "L", "right": "R", "top": "P", "bottom": "A"}
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    oblique = Volume(array, direction=np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]))
    viewer.state.set_volume(oblique)
    assert _edges(viewer) == {"left": "RA", "right": "LP", "top": "AL", "bottom": "PR"}
    viewer.state.set_volume(None)
    assert _edges(viewer) == dict.fromkeys(("left", "right", "top", "bottom"), "")
    assert edge_texts(viewer.state)["left"] == ""


# -- invert ---------------------------------------------------------------------------------
def test_invert_swaps_black_and_white_on_screen(app, qtbot, ct_volume):
    viewer = _viewer(qtbot, ct_volume)
    state = viewer.state
    k = state.slice_index
    image = ct_volume.array[k]
    y, x = np.unravel_index(np.argmax(image), image.shape)  # bone: white in the window
    pos = viewer.viewport_pos_of_pixel(x, y)
    before = _gray(viewer.viewport().grab().toImage())[pos.y(), pos.x()]
    assert viewer.image_item.lut is None
    state.toggle_invert()
    assert state.inverted
    assert np.array_equal(viewer.image_item.lut, INVERTED_LUT)
    assert tuple(viewer.image_item.levels) == pytest.approx(state.window_levels)
    after = _gray(viewer.viewport().grab().toImage())[pos.y(), pos.x()]
    assert before > 200 and after < 55
    state.step_slice(1)  # the next slice stays inverted
    assert np.array_equal(viewer.image_item.lut, INVERTED_LUT)
    state.toggle_invert()
    assert viewer.image_item.lut is None
    state.toggle_invert()
    state.set_volume(ct_volume)  # a newly opened volume is shown normally
    assert not state.inverted and viewer.image_item.lut is None


def test_key_i_and_menu_action_invert_in_the_window(qtbot, window, demo_dir):
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(demo_dir, open_first=True)
    viewer = window.viewer
    assert window.invert_action.shortcut().toString() == "I"
    assert window.invert_action in window.menuBar().actions()[1].menu().actions()
    qtbot.keyClick(viewer, Qt.Key.Key_I)
    assert window.state.inverted and window.invert_action.isChecked()
    assert np.array_equal(viewer.image_item.lut, INVERTED_LUT)
    window.invert_action.trigger()
    assert not window.state.inverted and viewer.image_item.lut is None


# -- save as PNG ----------------------------------------------------------------------------
def test_save_view_png_writes_the_view_with_overlays(app, qtbot, tmp_path, demo_volume):
    viewer = _viewer(qtbot, demo_volume)
    path = tmp_path / "view.png"
    path.write_bytes(b"old")  # replaced whole
    assert viewer.save_view_png(path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.png"]  # no temp file left
    image = QImage(str(path))
    assert not image.isNull()
    assert (image.width(), image.height()) == (viewer.width(), viewer.height())
    gray = _gray(image)
    assert gray.std() > 10 and len(np.unique(gray)) > 50
    # the overlays are in the picture: the patient name at top left, a letter on each edge
    labels = [viewer.overlays["top_left"], *viewer.edge_labels.values()]
    for label in labels:
        label.hide()
    bare = _gray(viewer.grab().toImage())
    for label in labels:
        rect = label.geometry()
        region = np.s_[rect.top():rect.bottom() + 1, rect.left():rect.right() + 1]
        diff = np.abs(gray[region].astype(int) - bare[region].astype(int))
        assert diff.max() > 100, label.objectName()


def test_save_view_png_from_the_window(qtbot, window, tmp_path, demo_dir):
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.import_folder(demo_dir, open_first=True)
    assert window.save_png_action in window.menuBar().actions()[0].menu().actions()
    path = tmp_path / "out" / "shot.png"
    path.parent.mkdir()
    assert window.save_view_png(path) == path
    image = QImage(str(path))
    assert (image.width(), image.height()) == (window.viewer.width(), window.viewer.height())
    assert _gray(image).std() > 10
    # an unwritable place is a message, not an exception
    assert window.save_view_png(tmp_path / "missing" / "x.png") is None
    assert window.last_error is not None and window.last_error.title == "Saving the view"


# -- browser search -------------------------------------------------------------------------
def test_search_box_filters_the_tree(qtbot, window, demo_dir, ct_dir, demo_volume, ct_volume):
    for folder in (demo_dir, ct_dir):
        with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS):
            window.import_folder(folder)
    mr = demo_volume.metadata["SeriesInstanceUID"]
    ct = ct_volume.metadata["SeriesInstanceUID"]
    browser = window.browser
    assert sorted(browser.visible_series_uids()) == sorted([mr, ct])
    search = window.browser_search
    assert search.isVisible()
    qtbot.keyClicks(search, "lymPHOMA")  # patient name, any case
    assert browser.filter_text() == "lymphoma"
    assert browser.visible_series_uids() == [ct]
    mr_item = browser.item_for_series(mr)
    assert mr_item.isHidden() and mr_item.parent().parent().isHidden()
    ct_item = browser.item_for_series(ct)
    assert not ct_item.parent().isHidden() and not ct_item.parent().parent().isHidden()
    for text, expected in [
        ("crlab", [mr]),            # patient ID
        ("2022-04-07", [mr]),       # date as shown
        ("20220407", [mr]),         # date as DICOM writes it
        ("mr", [mr]),               # modality
        ("CT", [ct]),
        ("T1_FL2D", [mr]),          # series description
        ("lymphoma ct0", [ct]),     # every word must match
        ("lymphoma mr", []),
        ("no such thing", []),
        ("", [mr, ct]),
    ]:
        search.setText(text)
        assert sorted(browser.visible_series_uids()) == sorted(expected), text
    search.setText("hfs")
    window.refresh_browser()  # a refresh (after an import) keeps the filter
    assert browser.visible_series_uids() == [mr]
    top = [browser.topLevelItem(i) for i in range(browser.topLevelItemCount())]
    assert sum(not item.isHidden() for item in top) == 1
