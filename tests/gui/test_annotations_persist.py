"""Annotations that persist, in the window: every kind drawn with the mouse on a real CT,
saved with the study (Ctrl+S), the window closed, a new window on the same catalog opens the
series and draws the same annotations (checked in the pixels); key images marked with K and
jumped to; a report made with highdicom directly is shown; the documents go out with the
series (Export, send, share)."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from sr_helpers import foreign_report
from viewer_helpers import grab_rgb, lps_to_widget

from medview.app import library
from medview.core.annotations import ellipse_outline
from medview.gui.main_window import MainWindow
from medview.gui.view_layers import MEASURE_COLOUR

CT_3SLICE = "dcmqi_seg/data/segmentations/ct-3slice"


@pytest.fixture
def study(data_dir, tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(data_dir / CT_3SLICE, folder)
    return folder


def _open_window(qtbot, catalog, study=None) -> MainWindow:
    w = MainWindow(catalog_path=catalog)
    qtbot.addWidget(w)
    w.resize(1100, 900)
    w.show()
    qtbot.waitExposed(w)
    if study is not None:
        with qtbot.waitSignal(w.import_finished, timeout=60_000):
            w.import_folder(study)
    (uid,) = [s.series_uid for p in library.list_patients(w.catalog)
              for st in p.studies for s in st.series if s.modality == "CT"]
    with qtbot.waitSignal(w.series_opened, timeout=60_000):
        w.open_series(uid)
    return w


def _close(w: MainWindow) -> None:
    assert w.tasks.shutdown(timeout_ms=10_000)
    w.close()


def _at(view, x, y) -> QPoint:
    return view.viewport_pos_of_pixel(x, y)


def _drag(view, points) -> None:
    vp = view.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
    for a, b in itertools.pairwise(points):
        for i in range(1, 5):
            QTest.mouseMove(vp, a + (b - a) * i / 4)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       points[-1])


def _draw_every_kind(w: MainWindow, qtbot) -> None:
    view = w.viewer
    w.tool_actions["distance"].trigger()
    _drag(view, [_at(view, 60, 80), _at(view, 220, 110)])
    w.tool_actions["ellipse"].trigger()
    _drag(view, [_at(view, 200, 250), _at(view, 300, 320)])
    w.tool_actions["rectangle"].trigger()
    _drag(view, [_at(view, 330, 330), _at(view, 430, 400)])
    w.tool_actions["polygon"].trigger()
    _drag(view, [_at(view, 80, 300), _at(view, 160, 300), _at(view, 150, 390),
                 _at(view, 90, 380)])
    w.tool_actions["arrow"].trigger()
    _drag(view, [_at(view, 420, 90), _at(view, 360, 170)])
    w.tool_actions["angle"].trigger()
    _drag(view, [_at(view, 100, 440), _at(view, 180, 470)])  # the first arm, to the vertex
    QTest.mouseMove(view.viewport(), _at(view, 240, 420))  # the second arm follows
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _at(view, 260, 420))
    w.tool_actions["text"].trigger()
    view.annotation_tools.ask = lambda parent, current: "look here"
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _at(view, 380, 200))
    w.tool_actions["window"].trigger()


def _segments(ann) -> list:
    p = ann.points
    if ann.kind == "ellipse":
        o = ellipse_outline(p, 24)
        return list(zip(o, np.roll(o, -1, axis=0), strict=True))
    if ann.kind in ("rectangle", "polygon"):
        return list(zip(p, np.roll(p, -1, axis=0), strict=True))
    if ann.kind == "text":
        return []
    return list(itertools.pairwise(p))


def _outline_drawn(view, ann, after, before) -> float:
    """The fraction of points along ``ann``'s outline where the view drew the measuring
    colour (within 2 widget pixels) that was not there without the annotations."""
    colour = np.array(MEASURE_COLOUR.getRgb()[:3], float)
    close_after = np.abs(after.astype(float) - colour).max(axis=-1) <= 40
    close_before = np.abs(before.astype(float) - colour).max(axis=-1) <= 40
    hits = total = 0
    h, w = close_after.shape
    for a, b in _segments(ann):
        (x0, y0), (x1, y1) = lps_to_widget(view, a), lps_to_widget(view, b)
        for t in np.linspace(0.1, 0.9, 5):
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            j0, j1 = max(0, int(y - 2)), min(h, int(y + 2) + 1)
            i0, i1 = max(0, int(x - 2)), min(w, int(x + 2) + 1)
            total += 1
            hits += bool(close_after[j0:j1, i0:i1].any()
                         and not close_before[j0:j1, i0:i1].all())
    return hits / total if total else 1.0


def test_every_kind_drawn_saved_and_shown_again_after_a_restart(app, qtbot, tmp_path, study):
    catalog = tmp_path / "catalog.sqlite"
    w = _open_window(qtbot, catalog, study)
    state = w.state
    z = state.slice_index
    _draw_every_kind(w, qtbot)
    drawn = state.annotations()
    assert sorted(a.kind for a in drawn) == sorted(
        ["distance", "ellipse", "rectangle", "polygon", "arrow", "angle", "text"])
    by_kind = {a.kind: a for a in drawn}
    # the values shown are the values saved, in their units
    texts = w.viewer.measurement_texts
    assert by_kind["text"].label == "look here"
    assert f"{by_kind['distance'].value('length').value:.1f} mm" in texts.values()
    assert f"{by_kind['angle'].value('angle').value:.1f}°" in texts.values()
    ellipse_text = next(t for t in texts.values() if t.startswith("mean")
                        and f"area {by_kind['ellipse'].value('area').value:.1f} mm²" in t)
    assert " HU " in ellipse_text and by_kind["ellipse"].value("mean").unit == "[hnsf'U]"
    # a key image on this slice (K), then saved with the study (Ctrl+S)
    qtbot.keyClick(w.viewer, Qt.Key.Key_K)
    assert state.key_slices == (z,)
    assert "Key image" in w.viewer.overlays["bottom_left"].text()
    assert set(w.unsaved.work.kinds) == {"measurements", "key_images"}
    qtbot.keyClick(w.viewer, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.unsaved.work, timeout=30_000)  # saved in the background
    uid = state.volume.metadata["SeriesInstanceUID"]
    docs = w.catalog.documents(uid)
    assert sorted(d.modality for d in docs) == ["KO", "SR"]
    for d in docs:
        assert_valid_dicom(d.path)
    _close(w)

    w2 = _open_window(qtbot, catalog)  # a new window, a new catalog session
    state2 = w2.state
    assert sorted(state2.annotations(), key=lambda a: a.uid) == sorted(drawn,
                                                                       key=lambda a: a.uid)
    assert not w2.unsaved.work  # as saved
    view = w2.viewer
    assert state2.slice_index == z
    assert sorted(view.measurement_texts.values()) == sorted(texts.values())
    qtbot.wait(50)
    after = grab_rgb(view)
    state2.set_annotations([])  # the same view without them
    before = grab_rgb(view)
    for ann in drawn:
        assert _outline_drawn(view, ann, after, before) >= 0.8, ann.kind
    # the check sees a shape that is not where it must be: the distance 25 mm lower
    lower = by_kind["distance"].points + np.array([0.0, 25.0, 0.0])
    moved = replace(by_kind["distance"], points_mm=lower)
    assert _outline_drawn(view, moved, after, before) < 0.5
    # the key image: jump to it from another slice
    assert state2.key_slices == (z,)
    state2.set_slice(0 if z else 2)
    assert "Key image" not in view.overlays["bottom_left"].text()
    qtbot.keyClick(view, Qt.Key.Key_Period)
    assert state2.slice_index == z
    assert "Key image" in view.overlays["bottom_left"].text()
    qtbot.keyClick(view, Qt.Key.Key_Comma)  # the only one: the previous is itself
    assert state2.slice_index == z
    _close(w2)


def _foreign_report(volume, path):
    """A measurement report as another tool writes it (highdicom directly): a triangle on the
    middle slice."""
    z = volume.shape[0] // 2
    return foreign_report(volume, path, ((150, 150), (300, 160), (260, 320)), z), z


def test_a_report_made_with_highdicom_is_shown_and_goes_out_with_the_series(
        app, qtbot, tmp_path, study):
    import medview

    volume = medview.load(study)
    outline, z = _foreign_report(volume, study / "their_report.dcm")
    w = _open_window(qtbot, tmp_path / "catalog.sqlite", study)  # imported with the study
    state = w.state
    (ann,) = state.annotations()
    assert ann.kind == "polygon" and ann.label == "their ROI"
    assert np.allclose(ann.points, outline, atol=1e-3)
    assert state.slice_index == z
    view = w.viewer
    (text,) = view.measurement_texts.values()
    assert text.startswith("their ROI\nmean")
    after = grab_rgb(view)
    state.set_annotations([])
    before = grab_rgb(view)
    assert _outline_drawn(view, ann, after, before) >= 0.8
    # the report goes out with the series: Export offers it, send and share take it
    report = study / "their_report.dcm"
    names = [item.name for item in w.exportables()]
    assert "Annotations (DICOM SR): their_report.dcm" in names
    item = next(i for i in w.exportables() if i.name.endswith("their_report.dcm"))
    with qtbot.waitSignal(w.exported, timeout=30_000) as exported:
        w.export(item, "dicom", tmp_path / "out.dcm")
    (copied,) = exported.args[0]
    assert copied.read_bytes() == report.read_bytes()
    (_, send_files), *_ = w.send_sources()
    assert report in send_files
    share = dict(w.share_sources())
    assert report in share["The open series"]
    from medview.dicom.catalog.collect import collect_files

    assert report in collect_files([volume.metadata["SeriesInstanceUID"]], w.catalog)
    _close(w)
