"""What the screen shows: every layer is drawn on the screen pixels of its voxels (issue 12).

Real series (a CT and a decubitus sagittal MR), each of the axial, coronal and sagittal views,
alone and in the 2×2 grid, fitted and zoomed + panned: the view is grabbed (QWidget.grab)
without and with a layer, and each widget pixel must show the layer's colour over what was
there before where the layer's voxels are, and be unchanged everywhere else. Where a voxel is
on screen comes from the plane geometry the measurements use (display point → view mm →
ViewBox → viewport, :mod:`viewer_helpers`), and which voxel a displayed pixel is from the
coordinate functions of :mod:`medview.app.planes` (not from the slicing that draws it).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF
from viewer_helpers import (
    assert_layer_drawn,
    dock_session,
    grab_rgb,
    lps_to_widget,
    under_text,
)

from medview.app.measurements import Measurement
from medview.app.planes import PLANES
from medview.app.state import ViewerState
from medview.core.fusion.blend import colormap_lut
from medview.core.labelmap import LabelMap, Segment
from medview.gui.slice_viewer import CROSSHAIR_COLOUR
from medview.gui.view_grid import LAYOUTS, ViewGrid
from medview.gui.view_layers import MEASURE_COLOUR

#: series under ../shared/data and the voxel (x, y, z) the tests centre on
SERIES = {"ct": ("kits_dupe_positions", (300, 236, 107)),  # z 107: an acquired slice
          "mr": ("dcm_qa_decubitus/In/HFDL", (120, 150, 18))}
ZOOMS = ("fit", "zoomed")
CONFIGS = [(layout, zoom, plane) for layout in LAYOUTS for zoom in ZOOMS for plane in PLANES]
SEGMENTS = (Segment(1, "Lesion", (40, 230, 60)), Segment(2, "Cyst", (235, 60, 210)))


@pytest.fixture(scope="module", params=sorted(SERIES))
def series(request, data_dir):
    from realparts import require

    import medview

    folder, centre = SERIES[request.param]
    require((data_dir / folder).is_dir(), f"real series at {data_dir / folder}")
    return medview.load(data_dir / folder), centre


@pytest.fixture
def grid(app, qtbot, series):
    volume, centre = series
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(720, 720)
    grid.show()
    qtbot.waitExposed(grid)
    state.set_volume(volume)
    state.set_cursor(*centre)
    return grid


# -- showing a configuration, grabbing a view ----------------------------------------------
def show(grid: ViewGrid, qtbot, layout: str, zoom: str, plane: str):
    """Lay ``grid`` out, fit ``plane``'s view or zoom it ×2.5 about the crosshair and pan it;
    crosshairs off (the layer tests look under them). Returns the view."""
    grid.set_layout(layout)
    if layout == "single":
        grid.set_active_plane(plane)
    view = grid.views[plane]
    size = (grid.width(), grid.height()) if layout == "single" else (grid.width() // 2,)
    qtbot.waitUntil(lambda: view.isVisible() and abs(view.width() - size[0]) <= 2)
    grid.state.reset_view(plane)
    if zoom == "zoomed":
        g = view.geometry_
        u, v = g.index_to_display(grid.state.cursor)
        pw, ph = g.pixel_mm
        view.view_box.scaleBy(s=(0.4, 0.4), center=QPointF(u * pw, v * ph))
        shown = view.view_box.viewRect()
        view.view_box.translateBy(t=(0.12 * shown.width(), -0.1 * shown.height()))
    for each in grid.views.values():
        each.set_crosshair_visible(False)
    return view


def grab_view(grid: ViewGrid, view) -> np.ndarray:
    """The part of the whole grid's grab that ``view`` covers."""
    picture = grab_rgb(grid)
    p = view.mapTo(grid, QPoint(0, 0))
    return picture[p.y():p.y() + view.height(), p.x():p.x() + view.width()]


def voxels_of_display(view) -> np.ndarray:
    """``[row, column] → (x, y, z)`` voxel index of each displayed pixel, from the plane's
    coordinate functions (display point → continuous index), rounded."""
    g, k = view.geometry_, view.state.plane_slice(view.plane)
    o = g.display_to_index(0.5, 0.5, k)
    du, dv = g.display_to_index(1.5, 0.5, k) - o, g.display_to_index(0.5, 1.5, k) - o
    r, c = np.mgrid[0:g.height, 0:g.width]
    return np.rint(o + c[..., None] * du + r[..., None] * dv).astype(np.intp)


def at_voxels(array: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return array[ijk[..., 2], ijk[..., 1], ijk[..., 0]]


def label_layer(view, labels: np.ndarray, segments, opacity: float) -> np.ndarray:
    """The RGBA a label map must put on each displayed pixel of ``view``."""
    values = at_voxels(labels, voxels_of_display(view))
    layer = np.zeros((*values.shape, 4))
    for s in segments:
        layer[values == s.number] = (*s.color, opacity)
    return layer


def check_each_view(grid, qtbot, show_layer, hide_layer, expected) -> None:
    """For every configuration: grab, show the layer, grab, hide it; compare with
    ``expected(view)`` (RGBA per displayed pixel); report every configuration that fails."""
    problems = []
    for layout, zoom, plane in CONFIGS:
        view = show(grid, qtbot, layout, zoom, plane)
        before = grab_view(grid, view)
        show_layer()
        after = grab_view(grid, view)
        hide_layer()
        problems += assert_layer_drawn(before, after, view, expected(view),
                                       what=f"{plane} view, {layout}, {zoom}", min_pixels=6)
    assert not problems, "\n".join(problems)


def two_boxes(volume, centre) -> np.ndarray:
    """Labels 1 (a box ~15 mm across around ``centre``) and 2 (a smaller box beside it, to
    one side only, so a flipped or transposed view cannot pass)."""
    labels = np.zeros(volume.shape[:3], np.uint8)
    half = [max(1, round(7.0 / s)) for s in volume.spacing]
    x, y, z = centre
    labels[z - half[2]:z + half[2] + 1, y - half[1]:y + half[1] + 1,
           x - half[0]:x + half[0] + 1] = 1
    x2, y2 = x + 2 * half[0] + 2, y + half[1] // 2
    labels[z - half[2]:z + 1, y2 - half[1]:y2 + 1, x2 - half[0]:x2 + 1] = 2
    return labels


# -- label maps ----------------------------------------------------------------------------
def test_label_map_is_drawn_on_its_voxels(grid, qtbot, series):
    state = grid.state
    lm = LabelMap.like(state.volume, two_boxes(state.volume, state.cursor), SEGMENTS)
    check_each_view(grid, qtbot, lambda: state.set_labels(lm), lambda: state.set_labels(None),
                    lambda view: label_layer(view, lm.array, SEGMENTS, state.label_opacity))


def test_scribbles_painted_in_each_view_are_drawn_on_their_voxels(grid, qtbot):
    state = grid.state
    state.set_edit_target("scribbles")
    state.set_brush_mm(7.0)
    for plane in PLANES:  # a stroke of each label in each view, to one side of the centre
        g = state.geometry(plane)
        u, v = g.index_to_display(state.cursor)
        pw, ph = g.pixel_mm
        for label, (x_mm, y_mm) in ((1, (-10.0, -8.0)), (2, (9.0, 8.5))):
            state.set_paint_label(label)
            state.begin_edit("brush")
            start = (u + x_mm / pw, v + y_mm / ph)
            assert state.paint(plane, start, (start[0] + 4.0 / pw, start[1] + 1.0 / ph)) > 0
            state.end_edit()
    scribbles = state.scribbles
    assert set(np.unique(scribbles.array)) == {0, 1, 2}
    state.set_scribbles(None)
    check_each_view(grid, qtbot, lambda: state.set_scribbles(scribbles),
                    lambda: state.set_scribbles(None),
                    lambda view: label_layer(view, scribbles.array, scribbles.segments,
                                             view.SCRIBBLE_OPACITY))


def test_chain_results_label_map_and_rgb_overlay_are_drawn_on_their_voxels(grid, qtbot):
    state = grid.state
    layers = state.layers  # the one record of what is shown
    lm = LabelMap.like(state.volume, two_boxes(state.volume, state.cursor), SEGMENTS)
    rgb = np.zeros((*state.volume.shape[:3], 3), np.uint8)  # black: darkens the rest
    for s in SEGMENTS:
        rgb[lm.array == s.number] = s.color
    labels_layer, rgb_layer = layers.add_results(
        {"lesions": lm, "blend": state.volume.with_array(rgb, PhotometricInterpretation="RGB")})
    check_each_view(grid, qtbot, lambda: layers.show(labels_layer),
                    lambda: layers.hide(labels_layer),
                    lambda view: label_layer(view, lm.array, SEGMENTS, state.label_opacity))

    def rgb_expected(view):
        layer = np.empty((view.geometry_.height, view.geometry_.width, 4))
        layer[..., :3] = at_voxels(rgb, voxels_of_display(view))
        layer[..., 3] = state.overlay_opacity
        return layer

    check_each_view(grid, qtbot, lambda: layers.show(rgb_layer), lambda: layers.hide(rgb_layer),
                    rgb_expected)


def test_chain_panels_live_preview_is_drawn_on_its_slice_of_the_acquired_plane_only(grid,
                                                                                   qtbot):
    from medview.gui.chain_panel import ChainPanel
    from medview.gui.tasks import TaskRunner

    state = grid.state
    layers = state.layers
    tasks = TaskRunner()
    session = dock_session(tasks)
    panel = ChainPanel(state, layers, session)
    qtbot.addWidget(panel)
    panel.add_step("segment.threshold")
    z = state.cursor[2]
    panel.form.fields["low"].setValue(float(np.percentile(state.volume.array[z], 85)))
    panel.form.fields["high"].setValue(float(state.volume.array[z].max()))
    with qtbot.waitSignal(panel.preview_ready, timeout=60_000):
        panel.preview_check.setChecked(True)
    preview = state.preview
    assert preview.kind == "labels" and preview.z == z and preview.image.any()

    def expected(view):
        if not view.geometry_.native:  # the preview is a slice of the acquired plane
            return np.zeros((view.geometry_.height, view.geometry_.width, 4))
        only_z = np.zeros(state.volume.shape[:3], preview.image.dtype)
        only_z[z] = preview.image
        return label_layer(view, only_z, preview.segments, state.label_opacity)

    state.set_preview_visible(False)  # "Show original": grabbed without, then with it
    check_each_view(grid, qtbot, lambda: state.set_preview_visible(True),
                    lambda: state.set_preview_visible(False), expected)
    panel.preview_check.setChecked(False)
    assert session.close(timeout=30)


# -- fusion --------------------------------------------------------------------------------
def write_moving_series(folder, base, centre_lps):
    """An axial CT-like series (−1000 everywhere, +1000 in a cube) on its own grid — other
    spacing, other origin, covering only part of ``base`` — in ``base``'s frame of reference.
    Returns the cube's and the coverage's LPS boxes and the moving spacing."""
    from phantoms import write_ct_series

    spacing = np.array([1.6, 1.4, 3.0])
    low = centre_lps + np.array([-45.0, -50.0, -40.0])
    high = centre_lps + np.array([110.0, 95.0, 75.0])
    shape_xyz = np.floor((high - low) / spacing).astype(int) + 1
    hu = np.full(shape_xyz[::-1], -1000, np.int16)
    centres = [low[a] + spacing[a] * np.arange(shape_xyz[a]) for a in range(3)]
    cube_lo = centre_lps + np.array([-7.3, -8.2, -9.5])
    cube_hi = centre_lps + np.array([9.1, 6.7, 11.3])
    inside = [(c >= cube_lo[a]) & (c <= cube_hi[a]) for a, c in enumerate(centres)]
    hu[np.ix_(inside[2], inside[1], inside[0])] = 1000
    meta = base.metadata
    write_ct_series(folder, hu, spacing_xyz=tuple(spacing), origin_lps=tuple(low),
                    patient_id=str(meta.get("PatientID") or "P"),
                    study_uid=meta.get("StudyInstanceUID"),
                    frame_of_reference_uid=meta.get("FrameOfReferenceUID"),
                    series_description="moving cube", series_number=77)
    cube_centres = [(c[m].min(), c[m].max()) for c, m in zip(centres, inside, strict=True)]
    coverage = (low - spacing / 2, low + (shape_xyz - 1) * spacing + spacing / 2)
    return np.array(cube_centres), coverage, spacing


def test_fused_cube_lands_on_its_patient_position_and_nothing_outside(grid, qtbot, tmp_path):
    from medview.app import library
    from medview.core.fusion.blend import blend_colour
    from medview.gui.fusion_panel import FusionPanel
    from medview.gui.tasks import TaskRunner

    state = grid.state
    base = state.volume
    centre_lps = state.cursor_lps()
    cube, coverage, spacing = write_moving_series(tmp_path / "moving", base, centre_lps)
    catalog = library.open_catalog(tmp_path / "catalog.sqlite")
    [uid] = library.import_paths(catalog, [tmp_path / "moving"]).series_uids
    tasks = TaskRunner()
    session = dock_session(tasks, catalog.path)
    panel = FusionPanel(state, session)
    qtbot.addWidget(panel)
    panel.refresh_series()
    panel.series.setCurrentIndex(panel.series.findData(uid))
    errors = []
    panel.failed.connect(errors.append)
    assert panel.fuse_selected() is not None
    qtbot.waitUntil(lambda: state.fusion is not None or bool(errors), timeout=60_000)
    assert not errors, errors[0].message
    fused = state.fusion
    window, colormap, opacity = (-1000.0, 1000.0), "viridis", 0.6
    state.set_fusion_colormap(colormap)
    state.set_fusion_opacity(opacity)
    state.set_fusion(None)  # each configuration is grabbed without, then with it
    top = colormap_lut(colormap)[-1]

    def expected(view):
        lps = base.index_to_lps(voxels_of_display(view).astype(float))
        in_cube = np.all((lps >= cube[:, 0] - 1e-3) & (lps <= cube[:, 1] + 1e-3), axis=-1)
        near = np.all((lps > cube[:, 0] - spacing) & (lps < cube[:, 1] + spacing), axis=-1)
        layer = np.zeros((*lps.shape[:2], 4))
        layer[in_cube] = (*top, opacity)
        layer[near & ~in_cube, 3] = np.nan  # interpolated edge: either may be right
        return layer

    check_each_view(grid, qtbot, lambda: state.set_fusion(fused, window=window),
                    lambda: state.set_fusion(None), expected)

    outside = np.isnan(fused.array)
    assert 0.2 < outside.mean() < 0.99  # the moving series covers part of the base only
    # the exported Secondary Capture (blended as File ▸ Export blends it) is the grey base
    # image alone outside the moving series' coverage
    blended = blend_colour(base, fused, window_center=state.window_center,
                           window_width=state.window_width, colormap=colormap,
                           moving_min=window[0], moving_max=window[1], opacity=opacity).array
    low, width = state.window_center - state.window_width / 2, state.window_width
    some = np.s_[::3, ::4, ::4]  # every 48th voxel is plenty, and spares gigabytes
    nan = outside[some]
    grey = np.rint(np.clip((base.array[some][nan] - low) / width, 0, 1) * 255)
    assert np.abs(blended[some][nan].astype(float) - grey[:, None]).max() <= 1
    ijk = np.argwhere(nan)[:, ::-1] * (4, 4, 3)
    lps = base.index_to_lps(ijk.astype(float))
    inside_coverage = np.all((lps > coverage[0] + 1e-3) & (lps < coverage[1] - 1e-3), axis=-1)
    assert not inside_coverage.any()  # NaN only where the moving series has no data
    assert session.close(timeout=10)


# -- crosshair and measurements ------------------------------------------------------------
def changed_pixels(before, after, threshold: int = 8) -> np.ndarray:
    return np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > threshold


def distance_to_segments(shape, segments) -> np.ndarray:
    """Distance (widget pixels) of each pixel centre to the nearest of ``segments``."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(float) + 0.5
    best = np.full(shape, np.inf)
    for (x0, y0), (x1, y1) in segments:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        best = np.minimum(best, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return best


def test_crosshair_is_drawn_through_the_cursors_patient_position(grid, qtbot):
    state = grid.state
    target = state.cursor_lps() + np.array([3.2, -4.1, 5.3])
    state.set_cursor_lps(target)
    lps = state.cursor_lps()  # the voxel centre nearest to the target
    colour = np.array(CROSSHAIR_COLOUR.getRgb()[:3], float)
    alpha = CROSSHAIR_COLOUR.alphaF()
    problems = []
    for layout, zoom, plane in CONFIGS:
        view = show(grid, qtbot, layout, zoom, plane)
        before = grab_view(grid, view)
        view.set_crosshair_visible(True)
        after = grab_view(grid, view)
        view.set_crosshair_visible(False)
        what = f"{plane} view, {layout}, {zoom}"
        x, y = lps_to_widget(view, lps)
        free = ~under_text(view)
        changed = changed_pixels(before, after) & free
        ys, xs = np.mgrid[0:changed.shape[0], 0:changed.shape[1]].astype(float) + 0.5
        on_v, on_h = (np.abs(xs - x) <= 1.0) & free, (np.abs(ys - y) <= 1.0) & free
        stray = changed & ~(on_v | on_h)
        if stray.any():
            j, i = np.argwhere(stray)[0]
            problems.append(f"{what}: {int(stray.sum())} pixels changed off the crosshair at "
                            f"x={x:.1f}, y={y:.1f}, e.g. ({i}, {j})")
        # the lines run the whole view (but under the texts drawn over them: rows/columns
        # where a text's edge comes within 2 px of the line are not judged)
        from scipy.ndimage import binary_dilation

        clear = ~binary_dilation(~free, iterations=2)
        near_v = (np.abs(xs - x) <= 1.0) & ~clear
        near_h = (np.abs(ys - y) <= 1.0) & ~clear
        rows = on_v.any(axis=1) & ~near_v.any(axis=1)
        cols = on_h.any(axis=0) & ~near_h.any(axis=0)
        for hit, name in (((changed & on_v).any(axis=1)[rows], "vertical"),
                          ((changed & on_h).any(axis=0)[cols], "horizontal")):
            if hit.mean() < 0.98:
                problems.append(f"{what}: the {name} line is drawn along only "
                                f"{hit.mean():.0%} of the view")
        line = changed & on_v & ~on_h
        want = alpha * colour + (1 - alpha) * before[line].astype(float)
        wrong = np.abs(after[line] - want).max(axis=-1) > 3
        if wrong.any():
            k = np.argmax(wrong)
            problems.append(f"{what}: {int(wrong.sum())} of {int(line.sum())} pixels of the "
                            f"vertical line are not in the crosshair colour, e.g. "
                            f"{after[line][k].tolist()} for {np.rint(want[k]).tolist()} at "
                            f"{np.argwhere(line)[k][::-1].tolist()}")
    assert not problems, "\n".join(problems)


def text_boxes(grid, view) -> list[QRectF]:
    """Widget rectangles of the measurement labels (text over the drawing), 3 px wider."""
    import pyqtgraph as pg

    boxes = []
    for item in view._measure_items:
        if isinstance(item, pg.TextItem):
            rect = view.viewportTransform().mapRect(item.sceneBoundingRect())
            boxes.append(rect.adjusted(-3, -3, 3, 3))
    return boxes


def test_distance_and_roi_are_drawn_between_their_patient_positions(grid, qtbot):
    state = grid.state
    volume = state.volume
    colour = np.array(MEASURE_COLOUR.getRgb()[:3], float)
    problems = []
    for layout, zoom, plane in CONFIGS:
        view = show(grid, qtbot, layout, zoom, plane)
        g = view.geometry_
        right, down = g.screen_axes(volume.direction)
        c = state.cursor_lps()
        shapes = {"distance": (c - 14 * right - 9 * down, c + 12 * right + 10 * down),
                  "rectangle": (c - 10 * right - 8 * down, c + 13 * right + 11 * down)}
        for kind, (p0, p1) in shapes.items():
            d0, d1 = (g.index_to_display(volume.lps_to_index(p)) for p in (p0, p1))
            before = grab_view(grid, view)
            m = state.add_measurement(Measurement(kind, plane, state.plane_slice(plane), d0, d1))
            after = grab_view(grid, view)
            text = view.measurement_texts[m.id]
            boxes = text_boxes(grid, view)
            state.remove_measurement(m)
            what = f"{kind} in the {plane} view, {layout}, {zoom}"
            if kind == "distance":
                assert text == f"{np.linalg.norm(p1 - p0):.1f} mm", what
            (x0, y0), (x1, y1) = lps_to_widget(view, p0), lps_to_widget(view, p1)
            if kind == "distance":
                segments = [((x0, y0), (x1, y1))]
            else:
                corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                segments = list(zip(corners, corners[1:] + corners[:1], strict=True))
            problems += _outline_problems(before, after, segments, boxes, under_text(view),
                                          colour, what)
    assert not problems, "\n".join(problems)


def _outline_problems(before, after, segments, boxes, covered, colour, what) -> list[str]:
    """The drawing follows ``segments`` (within 2 px), reaches their ends, and nothing
    else changed (outside the text ``boxes`` and the ``covered`` pixels)."""
    changed = changed_pixels(before, after)
    free = ~covered
    for box in boxes:
        free[max(0, int(box.top())):max(0, int(box.bottom()) + 1),
             max(0, int(box.left())):max(0, int(box.right()) + 1)] = False
    dist = distance_to_segments(changed.shape, segments)
    problems = []
    stray = changed & free & (dist > 2.0)
    if stray.any():
        j, i = np.argwhere(stray)[0]
        problems.append(f"{what}: {int(stray.sum())} pixels drawn off the outline, e.g. "
                        f"({i}, {j}) at {dist[j, i]:.1f} px from it")
    close = np.abs(after.astype(float) - colour).max(axis=-1) <= 40
    h, w = changed.shape
    for (x0, y0), (x1, y1) in segments:
        for t in np.linspace(0.0, 1.0, 9):  # both ends and seven points between
            x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            j0, j1 = max(0, int(y - 1.5)), min(h, int(y + 1.5) + 1)
            i0, i1 = max(0, int(x - 1.5)), min(w, int(x + 1.5) + 1)
            if not free[j0:j1, i0:i1].all():
                continue
            if not close[j0:j1, i0:i1].any():
                problems.append(f"{what}: nothing in the measurement colour at ({x:.1f}, "
                                f"{y:.1f}) on the outline")
                break
    return problems
