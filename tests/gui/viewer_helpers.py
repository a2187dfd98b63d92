"""A shown SliceViewer on a fresh ViewerState, for widget tests, and what a view shows on
screen: grabs, where a voxel is drawn, and whether an overlay was drawn there."""

from __future__ import annotations

import numpy as np

from medview.app.state import ViewerState
from medview.core.volume import Volume
from medview.gui.slice_viewer import SliceViewer


def make_viewer(qtbot, volume: Volume | None, size=(640, 640)) -> SliceViewer:
    """A SliceViewer of ``size`` pixels, exposed on screen, showing ``volume`` if given."""
    state = ViewerState()
    viewer = SliceViewer(state)
    qtbot.addWidget(viewer)
    viewer.resize(*size)
    viewer.show()
    qtbot.waitExposed(viewer)
    if volume is not None:
        state.set_volume(volume)
    return viewer


# -- what the screen shows: grabs and the voxel → screen-pixel mapping --------------------
# A view maps display point (u, v) (planes.py: pixel units of the displayed slice) to view
# millimetres (u·pw, v·ph), the ViewBox maps those to scene coordinates and the
# QGraphicsView's viewport transform maps the scene to widget pixels; widget pixel (i, j)
# covers [i, i+1) × [j, j+1). Measurements go through the same (u, v).


def grab_rgb(widget) -> np.ndarray:
    """``widget`` as it is drawn now: ``[row, column, RGB]`` uint8, one entry a widget pixel."""
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    assert (image.width(), image.height()) == (widget.width(), widget.height()), \
        "the grab has another size than the widget (a device pixel ratio other than 1?)"
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=h * stride).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


def display_to_widget(viewer: SliceViewer, u: float, v: float) -> tuple[float, float]:
    """Widget position (pixels, continuous) of display point ``(u, v)`` of ``viewer``."""
    from PySide6.QtCore import QPoint, QPointF

    pw, ph = viewer.geometry_.pixel_mm
    scene = viewer.view_box.mapViewToScene(QPointF(u * pw, v * ph))
    p = viewer.viewportTransform().map(scene)
    offset = viewer.viewport().mapTo(viewer, QPoint(0, 0))
    return p.x() + offset.x(), p.y() + offset.y()


def lps_to_widget(viewer: SliceViewer, lps) -> tuple[float, float]:
    """Widget position of patient position ``lps`` (mm), projected on ``viewer``'s plane."""
    ijk = viewer.state.volume.lps_to_index(np.asarray(lps, dtype=float))
    return display_to_widget(viewer, *viewer.geometry_.index_to_display(ijk))


def widget_to_display(viewer: SliceViewer, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Display points ``(u, v)`` of widget positions ``(x, y)`` (arrays): the inverse of
    :func:`display_to_widget`, an affine map (three points fix it)."""
    o, inv = _inverse_affine(viewer)
    dx, dy = np.asarray(x, float) - o[0], np.asarray(y, float) - o[1]
    return inv[0, 0] * dx + inv[0, 1] * dy, inv[1, 0] * dx + inv[1, 1] * dy


def _inverse_affine(viewer: SliceViewer) -> tuple[np.ndarray, np.ndarray]:
    o = np.array(display_to_widget(viewer, 0.0, 0.0))
    a = np.column_stack([np.array(display_to_widget(viewer, 1.0, 0.0)) - o,
                         np.array(display_to_widget(viewer, 0.0, 1.0)) - o])
    return o, np.linalg.inv(a)


#: Where a widget pixel is sampled to decide what it must show: its centre and eight points
#: ``MARGIN`` pixels around it. A pixel is judged only when all nine see the same thing, so
#: rounding at the edge of a voxel (Qt picks the source pixel under each target pixel's
#: centre) never decides a test.
MARGIN = 0.6


def _keys(layer: np.ndarray) -> np.ndarray:
    """One integer per RGBA (alpha to 1/1000); every transparent pixel 0, NaN alpha -1."""
    rgb = np.rint(layer[..., :3]).astype(np.int64)
    alpha = layer[..., 3]
    keys = (((rgb[..., 0] * 256 + rgb[..., 1]) * 256 + rgb[..., 2]) * 1024
            + np.rint(np.nan_to_num(alpha) * 1000).astype(np.int64))
    keys[alpha == 0] = 0
    keys[np.isnan(alpha)] = -1
    return keys


def _rgba(keys: np.ndarray) -> np.ndarray:
    out = np.empty((*keys.shape, 4))
    out[..., 3] = (keys % 1024) / 1000.0
    rgb = keys // 1024
    out[..., 0], out[..., 1], out[..., 2] = rgb // 65536, (rgb // 256) % 256, rgb % 256
    return out


def expected_layer(viewer: SliceViewer, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each widget pixel must show of an overlay, from the overlay in display pixels.

    Parameters
    ----------
    layer : ndarray, float, shape (rows, columns, 4)
        RGB (0–255, whole numbers) and alpha (0–1, 0 = nothing drawn) of each displayed
        pixel; alpha NaN = either may be right (e.g. interpolated edges).

    Returns
    -------
    rgba : ndarray, float, shape (height, width, 4)
        Per widget pixel; outside the slice alpha 0.
    sure : ndarray, bool, shape (height, width)
        Widget pixels whose nine sample points see the same, known RGBA.
    """
    o, inv = _inverse_affine(viewer)
    # the views neither rotate nor shear: columns map to columns, rows to rows
    assert abs(inv[0, 1]) < 1e-9 and abs(inv[1, 0]) < 1e-9, "a rotated view"
    rows, cols = layer.shape[:2]
    keys = np.zeros((rows + 2, cols + 2), np.int64)  # a transparent border: off the slice
    keys[1:-1, 1:-1] = _keys(layer)
    xs = np.arange(viewer.width()) + 0.5
    ys = np.arange(viewer.height()) + 0.5

    def index(d, n, p, q):  # display pixel (+1 for the border) under p + d, clipped to it
        return np.clip(np.floor(inv[q, q] * (p + d - o[q])).astype(np.intp) + 1, 0, n + 1)

    first = keys[np.ix_(index(0.0, rows, ys, 1), index(0.0, cols, xs, 0))]
    sure = first != -1
    for dx in (-MARGIN, 0.0, MARGIN):
        c = index(dx, cols, xs, 0)
        for dy in (-MARGIN, 0.0, MARGIN):
            sure &= keys[np.ix_(index(dy, rows, ys, 1), c)] == first
    return _rgba(np.maximum(first, 0)), sure


def under_text(viewer: SliceViewer) -> np.ndarray:
    """Widget pixels covered by what is drawn over every layer: the corner texts, orientation
    letters, the warning badge, and a made-up slice's label and dashed frame;
    ``[row, column]`` bool."""
    covered = np.zeros((viewer.height(), viewer.width()), bool)

    def cover(r, pad: int = 0) -> None:
        covered[max(0, r.top() - pad):max(0, r.bottom() + 1 + pad),
                max(0, r.left() - pad):max(0, r.right() + 1 + pad)] = True

    for label in (*viewer.overlays.values(), *viewer.edge_labels.values()):
        if label.isVisible() and label.text():
            cover(label.geometry())
    if viewer.warning_badge.isVisible():
        cover(viewer.warning_badge.geometry())
    marks = viewer.made_up
    if marks.label.isVisible():
        cover(viewer.mapFromScene(marks.label.sceneBoundingRect()).boundingRect(), pad=1)
    if marks.frame.isVisible():  # a dashed outline 3 px wide along the image's edges
        r = viewer.mapFromScene(marks.frame.sceneBoundingRect()).boundingRect()
        inside = covered[max(0, r.top() + 4):max(0, r.bottom() - 3),
                         max(0, r.left() + 4):max(0, r.right() - 3)].copy()
        cover(r, pad=4)
        covered[max(0, r.top() + 4):max(0, r.bottom() - 3),
                max(0, r.left() + 4):max(0, r.right() - 3)] = inside
    return covered


def assert_layer_drawn(before: np.ndarray, after: np.ndarray, viewer: SliceViewer,
                       layer: np.ndarray, *, what: str, tol: int = 3,
                       min_pixels: int = 12) -> list[str]:
    """Compare two grabs of ``viewer`` (without, with an overlay) with what the overlay must
    change; return the problems found (empty: right).

    Where the overlay is opaque or translucent, the pixel must be the overlay's colour over
    the pixel before (``alpha·rgb + (1−alpha)·before``, within ``tol``); where it is
    transparent, the pixel must not change at all. At least ``min_pixels`` pixels must show
    each colour of ``layer`` that is visible at all (so a test cannot pass on nothing).
    """
    rgba, sure = expected_layer(viewer, layer)
    sure &= ~under_text(viewer)
    b, a = before.astype(float), after.astype(float)
    alpha = rgba[..., 3:]
    want = alpha * rgba[..., :3] + (1.0 - alpha) * b
    wrong = sure & (np.abs(a - want).max(axis=-1) > tol)
    problems = []
    if wrong.any():
        j, i = np.argwhere(wrong)[0]
        problems.append(f"{what}: {int(wrong.sum())} of {int(sure.sum())} judged pixels wrong, "
                        f"e.g. widget ({i}, {j}) is {after[j, i].tolist()}, expected "
                        f"{np.rint(want[j, i]).astype(int).tolist()} (before "
                        f"{before[j, i].tolist()})")
    judged = np.where(sure, _keys(rgba), 0)
    for key in np.unique(_keys(layer)):
        n = int((judged == key).sum())
        if key > 0 and n < min_pixels:
            problems.append(f"{what}: colour {_rgba(key)[:3].astype(int).tolist()} is expected "
                            f"on only {n} judged pixels (< {min_pixels}); the test needs "
                            "larger areas")
    return problems


def dock_session(tasks, catalog_path=None):
    """A Session whose jobs run on ``tasks`` (their events on the GUI thread), for a dock
    under test; its catalog is ``catalog_path``, else the test's own (``$MEDVIEW_DB``).
    ``session.close()`` stops the jobs, the "Run on" choice and the catalog."""
    from medview.app.session import Session

    session = Session(catalog_path, runner=tasks.jobs)
    session.tasks = tasks  # the QObject delivering the events lives as long as the session
    return session
