"""One model of annotations: a view's :class:`~medview.app.measurements.Measurement` (display
points on one slice of one plane, what the mouse edits) ⇄ the
:class:`~medview.core.annotations.Annotation` saved in DICOM SR (LPS points, values with
units). No Qt.

A measurement becomes an annotation through its view's geometry (display point → voxel index
→ patient position) and is measured by :func:`~medview.core.annotations.make_annotation`, so
the values a view writes beside a shape are the values the report holds. An annotation read
from a report (medview's or another tool's) is placed on the first view whose slice it lies in
(the acquired plane first when it names the image it was drawn on, the reformats first when
not): all its points within :data:`PLANE_TOLERANCE` of one slice.
One that lies in none (an oblique or 3D shape) is kept unchanged, saved again with the others,
never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from medview.app.measurements import Measurement
from medview.app.planes import PLANES, PlaneGeometry
from medview.core.annotations import Annotation, make_annotation, slice_sources
from medview.core.volume import Volume

__all__ = ["PLANE_TOLERANCE", "annotation_of", "annotation_text", "measurement_of",
           "place_annotations"]

#: how far (in voxels, along a view's normal) an annotation's points may lie from one slice
#: and still be shown on it: other tools write positions rounded to a few decimals
PLANE_TOLERANCE = 0.1

#: points a finished shape of each kind needs (polygon: at least 3)
_POINTS = {"distance": 2, "angle": 3, "ellipse": 4, "rectangle": 4, "arrow": 2, "text": 1}


def is_complete(m: Measurement) -> bool:
    """Whether ``m`` is a finished shape that can be saved (an angle with its 3 points, a
    polygon with 3 or more, lines and ROIs with an extent)."""
    pts = m.shape_points()
    if m.kind == "polygon":
        return len(pts) >= 3
    if len(pts) != _POINTS[m.kind]:
        return False
    if m.kind == "text":
        return bool(m.label.strip())
    arr = np.asarray(pts)
    if m.kind == "angle":
        return bool(np.ptp(arr[:2], axis=0).any() and np.ptp(arr[1:], axis=0).any())
    return bool(np.ptp(arr, axis=0).any())


def annotation_of(m: Measurement, volume: Volume, geometry: PlaneGeometry) -> Annotation | None:
    """The annotation ``m`` is in patient space, measured on ``volume``; None when ``m`` is
    not finished (see :func:`is_complete`). Sets ``m.uid`` the first time, so the annotation
    keeps its identity from save to save."""
    if not is_complete(m):
        return None
    lps = [volume.index_to_lps(geometry.display_to_index(u, v, m.slice_index))
           for u, v in m.shape_points()]
    fields = {"uid": m.uid} if m.uid else {}
    if geometry.native:  # the image drawn on (a reformat's slice, a made-up one, is none)
        source = slice_sources(volume)[m.slice_index]
        meta = volume.metadata
        uids = meta.get("source_sop_instance_uids") or ()
        if source is not None and source < len(uids):
            fields["sop_instance_uid"] = uids[source]
            files, frames = meta.get("source_files") or (), meta.get("source_frames") or ()
            if frames and files and files.count(files[source]) > 1:
                fields["frame_number"] = int(frames[source]) + 1
    if volume.is_rgb:  # no grey values to measure: geometry only
        fields["frame_of_reference_uid"] = str(volume.metadata.get("FrameOfReferenceUID") or "")
        ann = make_annotation(m.kind, lps, label=m.label, **fields)
    else:
        ann = make_annotation(m.kind, lps, label=m.label, volume=volume, **fields)
    if not m.uid:
        m.uid = ann.uid
    return ann


def measurement_of(ann: Annotation, volume: Volume,
                   geometries: Mapping[str, PlaneGeometry],
                   order: Sequence[str] = PLANES) -> Measurement | None:
    """``ann`` as a measurement on the first view of ``order`` whose slice it lies in, or
    None when it lies in none of them (or outside the volume)."""
    idx = np.atleast_2d(volume.lps_to_index(ann.points))
    for plane in order:
        g = geometries[plane]
        along = idx[:, g.normal]
        k = int(round(float(along.mean())))
        if np.abs(along - k).max() > PLANE_TOLERANCE or not 0 <= k < g.n_slices:
            continue
        pts = [g.index_to_display(ijk) for ijk in idx]
        label = "" if ann.label == ann.kind else ann.label
        p0, p1 = pts[0], pts[-1]
        if ann.kind in ("ellipse", "rectangle", "polygon"):
            arr = np.asarray(pts)
            p0, p1 = tuple(arr.min(axis=0)), tuple(arr.max(axis=0))
        return Measurement(ann.kind, plane, k, p0, p1, points=tuple(pts), label=label,
                           uid=ann.uid)
    return None


def place_annotations(annotations: Iterable[Annotation], volume: Volume,
                      geometries: Mapping[str, PlaneGeometry], native: str,
                      ) -> tuple[list[Measurement], list[Annotation]]:
    """The measurements of the annotations that lie in a view's slice, and the annotations
    that lie in none.

    A point, or a line along two views' common axis, lies in more than one view: one that
    names the image it was drawn on goes to the acquired plane ``native`` first, one that
    names none (drawn on a reformat) to the reformats first."""
    native_first = (native, *(p for p in PLANES if p != native))
    reformats_first = (*native_first[1:], native)
    placed, kept = [], []
    for ann in annotations:
        order = native_first if ann.sop_instance_uid else reformats_first
        m = measurement_of(ann, volume, geometries, order)
        if m is None:
            kept.append(ann)
        else:
            placed.append(m)
    return placed, kept


def _number(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


_UNIT_TEXT = {"[hnsf'U]": "HU", "1": "", "mm2": "mm²", "deg": "°"}


def annotation_text(ann: Annotation | None, m: Measurement | None = None) -> str:
    """What a view writes beside an annotation: ``"12.3 mm"``, ``"41.5°"``, the text of a
    text or arrow, an ROI's mean, SD, min, max and area. ``ann`` None (a shape still being
    drawn): the text of ``m`` so far."""
    if ann is None:
        if m is not None and m.kind in ("text", "arrow"):
            return m.label
        return ""
    if ann.kind in ("text", "arrow"):
        return "" if ann.label == ann.kind else ann.label
    values = {v.name: v for v in ann.measurements}
    if ann.kind == "distance":
        return f"{values['length'].value:.1f} mm"
    if ann.kind == "angle":
        return f"{values['angle'].value:.1f}°"
    area = values.get("area")
    lines = []
    if "mean" in values:
        unit = _UNIT_TEXT.get(values["mean"].unit, values["mean"].unit)
        unit = f" {unit}" if unit else ""
        lines.append(f"mean {_number(values['mean'].value)}{unit}  "
                     f"sd {_number(values['sd'].value)}")
        lines.append(f"min {_number(values['min'].value)}  max {_number(values['max'].value)}")
    elif area is not None:
        lines.append("empty")
    if area is not None:
        lines.append(f"area {area.value:.1f} mm²")
    if ann.label != ann.kind:
        lines.insert(0, ann.label)
    return "\n".join(lines)
