"""Series side by side on screen (medview.gui.compare_view, compare_window, hanging_dialog).

The decubitus MR: the same head supine (HFS, reference) and decubitus (HFDL) in different
frames of reference, linked by a real rigid registration. After scrolling pane 1 with the
keyboard, pane 2 must show — on its screen pixels — the slice of its own series at the same
(registered) patient position: every judged widget pixel is the grey of that slice's voxel
under it (and not of the neighbouring slice). Zoom and pan follow in millimetres; the link
is shown in each pane's header and switched there.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from viewer_helpers import expected_layer, grab_rgb, lps_to_widget, under_text

import medview
from medview.app.compare import Comparison
from medview.gui.compare_view import LINK_TEXTS, CompareView
from medview.gui.series_browser import SERIES_MIME, series_mime

HFS = "dcm_qa_decubitus/In/HFS"
HFDL = "dcm_qa_decubitus/In/HFDL"


@pytest.fixture(scope="module")
def pair(data_dir):
    from realparts import require

    require((data_dir / HFS).is_dir(), f"the decubitus MR at {data_dir / HFS}")
    fixed, moving = medview.load(data_dir / HFS), medview.load(data_dir / HFDL)
    from medview.pipeline.executors import LocalExecutor, run_step_on

    out = run_step_on(LocalExecutor(), "fuse.register_rigid",
                      {"volume": fixed, "moving": moving}, {"seed": 1})
    return fixed, moving, np.asarray(out["transform"].rows[0]["matrix"])


@pytest.fixture
def view(app, qtbot, pair):
    fixed, moving, matrix = pair
    comparison = Comparison(2)
    view = CompareView(comparison)
    qtbot.addWidget(view)
    view.resize(1000, 520)
    view.show()
    qtbot.waitExposed(view)
    comparison.show(0, fixed)
    comparison.show(1, moving)
    comparison.set_registration(1, matrix)
    for k in (0, 1):
        view.viewer(k).set_crosshair_visible(False)
    return view


def _grey_layer(state, plane: str, index: int) -> np.ndarray:
    """What the view must show of slice ``index`` of ``plane``: the windowed grey, RGBA."""
    g = state.geometry(plane)
    image = g.image(state.volume.array, index).astype(float)
    low, high = state.window_levels
    grey = np.clip((image - low) / (high - low), 0.0, 1.0) * 255.0
    layer = np.empty((*image.shape, 4))
    layer[..., :3] = np.rint(grey)[..., None]
    layer[..., 3] = 1.0
    return layer


def _mismatch(viewer, layer, shot, tol=3) -> tuple[int, int]:
    rgba, sure = expected_layer(viewer, layer)
    sure &= ~under_text(viewer)
    wrong = sure & (np.abs(shot.astype(float) - rgba[..., :3]).max(axis=-1) > tol)
    return int(wrong.sum()), int(sure.sum())


def test_scrolling_pane_one_shows_the_same_place_in_pane_two(view, qtbot, pair):
    _, moving, matrix = pair
    comparison = view.comparison
    ref, other = comparison.panes
    v0, v1 = view.viewer(0), view.viewer(1)
    assert view.panes[1].link_button.text() == LINK_TEXTS["registration"]
    ref.state.set_cursor(128, 128, 12)
    v0.setFocus()
    for _ in range(5):  # the reader scrolls pane 1 with the keyboard
        qtbot.keyClick(v0, Qt.Key.Key_Down)
    assert ref.state.slice_index == 17
    p = ref.state.cursor_lps()
    want = (matrix @ np.append(p, 1.0))[:3]
    assert np.linalg.norm(other.state.cursor_lps() - want) <= 0.5 * np.linalg.norm(
        moving.spacing) + 1e-6
    k = other.state.slice_index
    assert v1.displayed_slice == k

    shot = grab_rgb(v1)
    wrong, judged = _mismatch(v1, _grey_layer(other.state, v1.plane, k), shot)
    assert judged > 20000 and wrong <= judged * 0.002, (wrong, judged)
    # the neighbouring slice is not what is shown (the check can tell slices apart)
    near = k + 1 if k + 1 < moving.shape[0] else k - 1
    wrong_near, _ = _mismatch(v1, _grey_layer(other.state, v1.plane, near), shot)
    assert wrong_near > 20 * max(wrong, 50)
    # the landmark: the registered position is drawn where pane 2's voxel there is
    x, y = lps_to_widget(v1, want)
    ijk = np.rint(moving.lps_to_index(want)).astype(int)
    value = float(moving.array[k, ijk[1], ijk[0]])
    low, high = other.state.window_levels
    grey = np.clip((value - low) / (high - low), 0, 1) * 255
    assert abs(int(shot[int(y), int(x), 0]) - grey) <= 3


def test_zoom_and_pan_follow_in_millimetres(view, qtbot):
    comparison = view.comparison
    v0, v1 = view.viewer(0), view.viewer(1)
    comparison.panes[0].state.set_cursor(128, 128, 17)
    box = v0.view_box
    centre = box.viewRect().center()
    box.scaleBy(s=(0.5, 0.5), center=centre)
    box.translateBy(t=(15.0, -10.0))
    box.sigRangeChangedManually.emit(box.state["mouseEnabled"])  # as a mouse drag does
    a, b = view.view_centre_lps(0), view.view_centre_lps(1)
    # centres on the same place (in pane 2's slice plane: within half a slice)
    mapped = comparison.map_lps(0, 1, a)
    assert np.linalg.norm(b - mapped) <= 0.5 * np.linalg.norm(v1.state.volume.spacing) + 0.5
    assert v1.view_box.viewPixelSize()[0] == pytest.approx(box.viewPixelSize()[0], rel=0.02)


def test_the_link_is_shown_and_switched_per_pane(view, qtbot):
    comparison = view.comparison
    ref, other = comparison.panes
    button = view.panes[1].link_button
    assert view.panes[0].link_button.text() == "reference"
    view.panes[1]._fill_menu()
    texts = [a.text() for a in view.panes[1].link_menu.actions() if a.text()]
    assert "By registration" in texts and any(t.startswith("Link here") for t in texts)
    off = next(a for a in view.panes[1].link_menu.actions() if a.text() == "Not linked")
    view.mode_requested.connect(comparison.set_mode)
    off.trigger()
    assert other.link.mode == "off" and button.text() == LINK_TEXTS["off"]
    before = other.state.cursor
    ref.state.step_slice(2)
    assert other.state.cursor == before
    with pytest.raises(ValueError, match="different frames"):
        comparison.set_mode(1, "position")
    comparison.set_mode(1, "registration")
    assert button.text() == LINK_TEXTS["registration"] and other.state.cursor != before


def test_a_series_dropped_on_a_pane_is_asked_for(view, qtbot):
    received = []
    view.series_dropped.connect(lambda i, uid: received.append((i, uid)))
    mime = series_mime("1.2.826.0.1.3680043.2.1125.1")
    assert bytes(mime.data(SERIES_MIME)) == b"1.2.826.0.1.3680043.2.1125.1"
    pane = view.panes[1]
    drop = QDropEvent(QPointF(pane.width() / 2, pane.height() / 2),
                      Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    pane.dropEvent(drop)
    assert received == [(1, "1.2.826.0.1.3680043.2.1125.1")]
    other = QMimeData()
    other.setText("not a series")
    pane.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, other,
                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert received == [(1, "1.2.826.0.1.3680043.2.1125.1")]


def test_the_browser_drags_a_series(app, qtbot):
    from medview.app.library import PatientEntry, SeriesEntry, StudyEntry
    from medview.gui.series_browser import SeriesBrowser

    browser = SeriesBrowser()
    qtbot.addWidget(browser)
    study = StudyEntry("1.2.3", "20200101", "Head", "")
    study.series.append(SeriesEntry("1.2.3.4", "1.2.3", 2, "T1", "MR", "20200101", 35))
    browser.set_patients([PatientEntry("P1", "DOE^J", "", [study])])
    item = browser.item_for_series("1.2.3.4")
    assert bytes(browser.mimeData([item]).data(SERIES_MIME)) == b"1.2.3.4"


def test_layouts_keep_the_panes_that_stay(view, qtbot):
    comparison = view.comparison
    first = view.panes[1]
    view.set_layout("2x2")
    assert len(view.panes) == len(comparison.panes) == 4 and view.panes[1] is first
    assert [p.volume is not None for p in comparison.panes] == [True, True, False, False]
    qtbot.waitUntil(lambda: view.panes[3].isVisible())
    assert view.panes[3].title.text() == "Drop a series here"
    view.set_layout("1x1")
    assert len(view.panes) == len(comparison.panes) == 1
    comparison.panes[0].state.step_slice(1)  # the dropped panes follow nothing any more
    view.set_layout("1x2")
    assert comparison.panes[1].volume is None and view.panes[1].title.text() == \
        "Drop a series here"
    with pytest.raises(ValueError, match="layout"):
        view.set_layout("3x3")


def test_each_pane_shows_its_own_view_and_a_coronal_scroll_lands_on_the_same_place(
        view, qtbot, pair):
    """The decubitus series are acquired sagittal: their coronal views are reformatted
    (4.8 mm slices shown as pixel columns). Scrolling pane 1's coronal view moves pane 2's
    coronal view to the slice of its series at the same registered position."""
    _, moving, matrix = pair
    comparison = view.comparison
    ref, other = comparison.panes
    assert [p.view_name for p in view.panes] == ["sagittal", "sagittal"]  # acquired plane
    assert [p.view_button.text() for p in view.panes] == ["Sagittal", "Sagittal"]
    received = []
    view.view_changed.connect(lambda i, name: received.append((i, name)))
    for pane in view.panes:
        pane.set_view("coronal")
    assert received == [(0, "coronal"), (1, "coronal")]
    v0, v1 = view.viewer(0), view.viewer(1)
    assert v0.plane == v1.plane == "coronal" and v1.isVisible()
    assert not view.viewer(1, "sagittal").isVisible()
    assert view.panes[1].view_button.text() == "Coronal"
    for v in (v0, v1):
        v.set_crosshair_visible(False)
    ref.state.set_cursor(128, 100, 17)
    before = ref.state.plane_slice("coronal")
    v0.setFocus()
    for _ in range(6):  # the reader scrolls pane 1's coronal view with the keyboard
        qtbot.keyClick(v0, Qt.Key.Key_Down)
    assert ref.state.plane_slice("coronal") != before
    p = ref.state.cursor_lps()
    want = (matrix @ np.append(p, 1.0))[:3]
    g = other.state.geometry("coronal")
    k = other.state.plane_slice("coronal")
    # pane 2's coronal plane passes within half a voxel of the registered position
    ijk = moving.lps_to_index(want)
    assert abs(ijk[g.normal] - k) <= 0.5 + 1e-6
    assert v1.displayed_slice == k

    shot = grab_rgb(v1)
    wrong, judged = _mismatch(v1, _grey_layer(other.state, "coronal", k), shot)
    assert judged > 20000 and wrong <= judged * 0.002, (wrong, judged)
    # the neighbouring coronal slice (1 mm away) is not what is shown
    near = k + 1 if k + 1 < g.n_slices else k - 1
    wrong_near, _ = _mismatch(v1, _grey_layer(other.state, "coronal", near), shot)
    assert wrong_near > 2 * wrong + 100, (wrong_near, wrong)
    # the landmark: the registered position is drawn where pane 2's voxel there is
    x, y = lps_to_widget(v1, want)
    at = [int(round(float(c))) for c in ijk]
    at[g.normal] = k
    value = float(moving.array[at[2], at[1], at[0]])
    low, high = other.state.window_levels
    grey = np.clip((value - low) / (high - low), 0, 1) * 255
    assert abs(int(shot[int(y), int(x), 0]) - grey) <= 3


def test_a_pane_shows_the_mpr_of_its_series_and_pans_follow_per_plane(view, qtbot):
    comparison = view.comparison
    view.panes[0].set_view("mpr")
    view.panes[1].set_view("mpr")
    assert view.panes[1].view_name == "mpr" and view.panes[1].view_button.text() == "MPR 2×2"
    qtbot.waitUntil(lambda: all(view.viewer(1, p).isVisible()
                                for p in ("axial", "coronal", "sagittal")))
    comparison.panes[0].state.set_cursor(128, 128, 17)
    box = view.viewer(0, "axial").view_box
    box.scaleBy(s=(0.5, 0.5), center=box.viewRect().center())
    box.sigRangeChangedManually.emit(box.state["mouseEnabled"])
    a, b = view.view_centre_lps(0, "axial"), view.view_centre_lps(1, "axial")
    mapped = comparison.map_lps(0, 1, a)
    spacing = np.linalg.norm(comparison.panes[1].state.volume.spacing)
    assert np.linalg.norm(b - mapped) <= 0.5 * spacing + 0.5
    assert view.viewer(1, "axial").view_box.viewPixelSize()[0] == pytest.approx(
        box.viewPixelSize()[0], rel=0.02)
    # the same pane's other planes keep their own zoom
    assert view.viewer(1, "coronal").view_box.viewPixelSize()[0] != pytest.approx(
        box.viewPixelSize()[0], rel=0.02)
    # a series dropped on the pane keeps the pane's view
    comparison.show(1, comparison.panes[1].state.volume)
    assert view.panes[1].view_name == "mpr"
    with pytest.raises(ValueError, match="view"):
        view.panes[1].set_view("oblique")
