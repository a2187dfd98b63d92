"""Reference lines on screen (issue 17): where the other views' planes and the study's
localizer cut each view, drawn at the positions :func:`reference_line` computes.

Real data: the Philips head-phantom study (gantry-tilted axial CT ``S2010`` and its sagittal
localizer ``S1000`` in one frame of reference), imported into a real catalog; the localizer is
found there. The views are grabbed and the widget pixels along each computed segment must be
the line's colour, and not with the lines switched off.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from realparts import require
from viewer_helpers import grab_rgb, under_text

import medview
from medview.app.localizer import find_localizer
from medview.app.planes import PLANES
from medview.app.state import ViewerState
from medview.gui.reference_lines_item import REFERENCE_COLOURS
from medview.gui.view_grid import ViewGrid

STUDY = "dcm_qa_ct/In/Philips/S21610"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def study(data_dir, tmp_path_factory):
    from medview.dicom.catalog.db import Catalog

    require((data_dir / STUDY).is_dir(), f"the Philips study at {data_dir / STUDY}")
    catalog = Catalog(tmp_path_factory.mktemp("cat") / "catalog.sqlite")
    catalog.index(data_dir / STUDY)
    volume = medview.load(data_dir / STUDY / "S2010")
    localizer = find_localizer(catalog, volume)
    catalog.close()
    assert localizer is not None
    return volume, localizer


@pytest.fixture
def grid(app, qtbot, study):
    volume, localizer = study
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(1000, 1000)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(volume)
    grid.set_layout("2x2")
    state.set_cursor(200, 300, 20)
    state.mpr.set_localizer(localizer)
    qtbot.waitUntil(lambda: all(v.isVisible() and v.width() > 400 for v in grid.views.values()))
    for view in grid.views.values():
        view.set_crosshair_visible(False)
    return grid


def _widget(view, u: float, v: float) -> np.ndarray:
    """Widget position of display point (u, v) of what the view shows."""
    scene = view.view_box.mapViewToScene(view.oblique.display_to_view(u, v))
    p = view.viewportTransform().map(scene)
    o = view.viewport().mapTo(view, QPoint(0, 0))
    return np.array([p.x() + o.x(), p.y() + o.y()])


def _segment_px(view, line) -> tuple[np.ndarray, np.ndarray]:
    a, b = _widget(view, *line.start), _widget(view, *line.end)
    t = np.linspace(0.05, 0.95, 60)[:, None]
    return a + t * (b - a), np.stack([a, b])


def _distance(p: np.ndarray, seg: np.ndarray) -> np.ndarray:
    a, b = seg
    d = b - a
    s = np.clip(((p - a) @ d) / (d @ d), 0, 1)
    return np.linalg.norm(p - (a + s[:, None] * d), axis=1)


def _check_lines(grid, names_for) -> int:
    """Every view: pixels along each computed segment (away from the other lines and the
    texts) show its colour with the lines on, never with them off. Returns pixels judged."""
    state = grid.state
    judged = 0
    for plane, view in grid.views.items():
        state.mpr.set_reference_lines(False)
        off = grab_rgb(view).astype(int)
        state.mpr.set_reference_lines(True)
        on = grab_rgb(view).astype(int)
        lines = dict(state.mpr.reference_lines(plane))
        assert set(lines) == names_for(plane), plane
        assert set(view.reference_lines.lines) == set(lines)
        covered = under_text(view)
        segments = {n: _segment_px(view, line) for n, line in lines.items()}
        for name, (points, _seg) in segments.items():
            colour = np.array(REFERENCE_COLOURS[name].getRgb()[:3])
            keep = np.ones(len(points), bool)
            for other, (_, oseg) in segments.items():
                if other != name:
                    keep &= _distance(points, oseg) > 6
            n = 0
            for x, y in points[keep]:
                i, j = int(np.floor(x)), int(np.floor(y))
                if not (2 <= i < view.width() - 2 and 2 <= j < view.height() - 2):
                    continue
                if covered[j - 2:j + 3, i - 2:i + 3].any():
                    continue
                near_on = on[j - 1:j + 2, i - 1:i + 2].reshape(-1, 3)
                near_off = off[j - 1:j + 2, i - 1:i + 2].reshape(-1, 3)
                assert (np.abs(near_on - colour).max(axis=1) <= 2).any(), (plane, name, x, y)
                assert not (np.abs(near_off - colour).max(axis=1) <= 2).any(), (plane, name)
                n += 1
            assert n >= 20, (plane, name, n)
            judged += n
    return judged


def test_lines_of_the_other_views_and_the_localizer(grid):
    # the sagittal localizer cuts the axial and coronal views; it is parallel to the
    # sagittal view, which has no line of it
    judged = _check_lines(grid, lambda p: (set(PLANES) - {p})
                          | ({"localizer"} if p != "sagittal" else set()))
    assert judged > 200


def test_the_lines_follow_the_crosshair_and_the_rotation(grid):
    state = grid.state
    state.mpr.set_reference_lines(True)
    axial = grid.views["axial"]
    before = dict(state.mpr.reference_lines("axial"))["coronal"]
    state.set_cursor(200, 250, 20)  # 50 rows up: the coronal plane's line moves
    after = dict(state.mpr.reference_lines("axial"))["coronal"]
    assert abs(after.start[1] - before.start[1]) == pytest.approx(50, abs=1e-6)
    drawn = axial.reference_lines.items["coronal"].line()
    a = axial.oblique.display_to_view(*after.start)
    assert abs(drawn.p1().y() - a.y()) < 1e-9
    state.mpr.rotate_in_view("axial", np.radians(35))
    # turned 35° about the axial normal, the sagittal view is no longer parallel to the
    # sagittal localizer: every view has a line of it now
    judged = _check_lines(grid, lambda p: (set(PLANES) - {p}) | {"localizer"})
    assert judged > 100


def test_the_window_finds_the_localizer_and_toggles_the_lines(window, qtbot, data_dir):
    require((data_dir / STUDY).is_dir(), f"the Philips study at {data_dir / STUDY}")
    with qtbot.waitSignal(window.import_finished, timeout=TIMEOUT_MS):
        window.import_folder(data_dir / STUDY)
    first = {s.uid: window.catalog.instances(s.uid)[0] for s in window.catalog.series()}
    uid = next(u for u, h in first.items() if "/S2010/" in h.path)
    with qtbot.waitSignal(window.series_opened, timeout=TIMEOUT_MS):
        window.open_series(uid)
    localizer = window.state.mpr.model.localizer
    assert localizer is not None
    scout = next(h for h in first.values() if "/S1000/" in h.path)
    assert "LOCALIZER" in scout.image_type
    np.testing.assert_allclose(localizer.plane.origin, scout.image_position)
    assert (localizer.plane.rows, localizer.plane.columns) == (scout.rows, scout.columns)
    action = window.reference_lines_action
    assert not action.isChecked()
    action.trigger()
    assert window.state.mpr.model.reference_lines
    assert window.views["axial"].reference_lines.items["localizer"].isVisible()
    window.state.mpr.set_reference_lines(False)
    assert not action.isChecked()


def test_a_picture_without_overlays_has_no_lines(grid, tmp_path):
    from PySide6.QtGui import QImage

    grid.state.mpr.set_reference_lines(True)
    magenta = np.array(REFERENCE_COLOURS["localizer"].getRgb()[:3])

    def count(path) -> int:
        image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
        h, w, stride = image.height(), image.width(), image.bytesPerLine()
        rows = np.frombuffer(image.constBits(), np.uint8, count=h * stride).reshape(h, stride)
        rgb = rows[:, : w * 3].reshape(h, w, 3).astype(int)
        return int((np.abs(rgb - magenta).max(axis=-1) <= 2).sum())

    assert count(grid.save_png(tmp_path / "with.png")) > 100
    assert count(grid.save_png(tmp_path / "without.png", overlays=False)) == 0
    assert grid.views["axial"].reference_lines.items["localizer"].isVisible()  # back after
