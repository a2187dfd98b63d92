"""Where a view's texts go so that none covers another, whatever the view's size.

The four corner texts, the four orientation letters, the warning badge and the labels
beside measurements share one small view. Corner texts get the room between the view's
edges and the letters in the middle of each edge: a text longer than its room is elided
("Very long na…"), a text taller than its half of the view loses its last lines.
Measurement labels (and the made-up-slice mark) are placed beside their shape at the first
of several candidate spots that meets none of the texts already placed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QRect, QSize

__all__ = ["GAP", "MARGIN", "corner_rooms", "first_free", "label_rect", "overlaps",
           "place_floating_labels", "text_rects"]

#: Distance of texts from the view's border (pixels).
MARGIN = 8
#: Least distance between two texts (pixels).
GAP = 4


def corner_rooms(width: int, height: int, edge_sizes: dict[str, QSize],
                 badge: QSize | None = None) -> dict[str, QRect]:
    """The rectangle each corner text may fill in a view of ``width`` × ``height``.

    ``edge_sizes`` are the sizes of the orientation letters ("left", "right", "top",
    "bottom"), centred on their edges; ``badge`` the size of the warning badge in the top
    left corner (the top-left text starts right of it).
    """
    rooms = {}
    top_w = edge_sizes.get("top", QSize()).width()
    bottom_w = edge_sizes.get("bottom", QSize()).width()
    left_h = edge_sizes.get("left", QSize()).height()
    right_h = edge_sizes.get("right", QSize()).height()
    for corner in ("top_left", "top_right", "bottom_left", "bottom_right"):
        top = corner.startswith("top")
        left = corner.endswith("left")
        letter_w = top_w if top else bottom_w
        letter_h = left_h if left else right_h
        half_w = (width - max(letter_w, 0)) // 2 - MARGIN - GAP
        half_h = (height - max(letter_h, 0)) // 2 - MARGIN - GAP
        x = MARGIN if left else width - MARGIN - half_w
        w = half_w
        if corner == "top_left" and badge is not None and not badge.isEmpty():
            x += badge.width() + GAP
            w -= badge.width() + GAP
        y = MARGIN if top else height - MARGIN - half_h
        rooms[corner] = QRect(x, y, max(w, 0), max(half_h, 0))
    return rooms


def overlaps(rect: QRect, others: Iterable[QRect]) -> bool:
    """Whether ``rect`` (grown by :data:`GAP`/2) meets any of ``others``."""
    grown = rect.adjusted(-GAP // 2, -GAP // 2, GAP // 2, GAP // 2)
    return any(grown.intersects(o) for o in others if not o.isEmpty())


def first_free(candidates: Iterable[QRect], obstacles: list[QRect], bounds: QRect,
               slide: Callable[[QRect, int], QRect] | None = None) -> QRect | None:
    """The first candidate inside ``bounds`` that meets no obstacle.

    When none is free, each candidate is slid by ``slide(rect, step)`` (default: downwards
    by ``step`` pixels, then upwards) until one is; None if nothing fits in ``bounds``.
    """
    candidates = list(candidates)
    for rect in candidates:
        if bounds.contains(rect) and not overlaps(rect, obstacles):
            return rect
    slide = slide or (lambda r, step: r.translated(0, step))
    for step in range(GAP, bounds.height(), GAP):
        for rect in candidates:
            for moved in (slide(rect, step), slide(rect, -step)):
                if bounds.contains(moved) and not overlaps(moved, obstacles):
                    return moved
    return None


# -- a slice view's labels ----------------------------------------------------------------
def text_rects(viewer) -> list[QRect]:
    """Where a view's fixed texts are (corner texts, letters, badge), widget pixels."""
    widgets = [*viewer.overlays.values(), *viewer.edge_labels.values()]
    rects = [w.geometry() for w in widgets if not w.isHidden() and w.shown_text()]
    if not viewer.warning_badge.isHidden():
        rects.append(viewer.warning_badge.geometry())
    return rects


def label_rect(viewer, item) -> QRect:
    """Where scene ``item`` of ``viewer`` is drawn, widget pixels."""
    rect = viewer.mapFromScene(item.sceneBoundingRect()).boundingRect()
    return rect.translated(viewer.viewport().pos())


def _side_candidates(anchor: QRect, w: int, h: int) -> list[QRect]:
    """Beside a shape: above right, above left, below right, below left."""
    return [QRect(anchor.right() + 3, anchor.top() - h - 2, w, h),
            QRect(anchor.left() - w - 3, anchor.top() - h - 2, w, h),
            QRect(anchor.right() + 3, anchor.bottom() + 2, w, h),
            QRect(anchor.left() - w - 3, anchor.bottom() + 2, w, h)]


def place_floating_labels(viewer, measure: list, shown: bool = True) -> None:
    """Place ``viewer``'s measurement labels (``(label, shape)`` pairs) and its made-up
    mark where they meet no fixed text and no label placed before them.

    A label with no free spot is hidden until the view is large enough (never drawn over
    another text); the made-up mark first drops its reason and keeps "INTERPOLATED slice".
    """
    marks = viewer.made_up
    if not measure and marks.reason is None:
        return  # nothing to place (most slices): no cost on scrolling
    obstacles = text_rects(viewer)
    bounds = viewer.viewport().geometry()
    pairs = [(label, label_rect(viewer, shape)) for label, shape in measure]
    if marks.reason is not None:
        # the mark's reason shortened to the room between the left and right letters
        letters = sum(lab.width() + MARGIN for lab in (viewer.edge_labels["left"],
                                                       viewer.edge_labels["right"]))
        marks.fit_label(bounds.width() - letters - 4 * GAP)
        pairs.append((marks.label, label_rect(viewer, marks.frame)))
    for label, anchor in pairs:
        size = label_rect(viewer, label).size()
        w, h = size.width(), size.height()
        if label is marks.label:  # inside the image, centred, near its top or bottom
            cx = anchor.center().x() - w // 2
            candidates = [QRect(cx, max(anchor.top(), bounds.top()) + 24, w, h),
                          QRect(cx, min(anchor.bottom(), bounds.bottom()) - h - 24, w, h)]
        else:
            candidates = _side_candidates(anchor, w, h)
        rect = first_free(candidates, obstacles, bounds)
        if rect is None and label is marks.label:  # the first line alone
            label.setText(marks.current_mark().split("\n", 1)[0])
            size = label_rect(viewer, label).size()
            candidates = [QRect(r.topLeft(), size) for r in candidates]
            rect = first_free(candidates, obstacles, bounds)
        label.setVisible(shown and rect is not None)
        if rect is None:
            continue
        obstacles.append(rect)
        top_left = viewer.view_box.mapSceneToView(
            viewer.mapToScene(rect.topLeft() - viewer.viewport().pos()))
        label.setAnchor((0, 0))
        label.setPos(top_left)
