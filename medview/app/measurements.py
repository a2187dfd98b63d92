"""Measurements and annotations on a view, without Qt.

A measurement lives on one slice of one view (plane) and is stored in display coordinates
``(u, v)`` of that view (see :mod:`medview.app.planes`); its values come from the volume's
geometry — distances between the two points' patient positions (LPS, mm), ROI statistics
over the voxels whose centres lie inside the shape, in the volume's physical units.

The kinds are those of :mod:`medview.core.annotations` (distance, angle, ellipse, rectangle,
freehand polygon, arrow, text): a drag draws a distance, arrow, ellipse or rectangle from
``p0`` to ``p1``; an angle, a polygon and any shape read from a report keep their points in
``points``. :mod:`medview.app.annotation_model` converts a measurement to the
:class:`~medview.core.annotations.Annotation` saved in DICOM SR, and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from medview.app.planes import PlaneGeometry
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["KINDS", "ROI_KINDS", "Measurement", "RoiStats", "distance_mm", "measurements_table",
           "roi_mask", "roi_stats"]

#: What a left drag draws with each measuring tool (the kinds of core.annotations).
KINDS = ("distance", "angle", "ellipse", "rectangle", "polygon", "arrow", "text")
#: Kinds whose values are statistics of the voxels inside.
ROI_KINDS = ("ellipse", "rectangle", "polygon")

_ids = count(1)
#: an annotation's measured value → its column in the measurements table
_COLUMNS = {"length": "distance_mm", "angle": "angle_deg", "area": "area_mm2", "mean": "mean",
            "sd": "std", "min": "min", "max": "max"}


@dataclass
class Measurement:
    """One measurement: ``kind`` drawn from ``p0`` to ``p1`` on slice ``slice_index`` of view
    ``plane``. For ellipses and rectangles drawn by a drag, ``p0`` and ``p1`` are opposite
    corners of the bounding box.

    ``points`` (display ``(u, v)``), when given, define the shape instead: the 3 points of an
    angle (first arm's end, vertex, second arm's end; 2 while it is drawn), the vertices of a
    polygon, the 4 axis ends of an ellipse or corners of a rectangle read from a report.
    ``label`` is the text of a text or arrow annotation (the name otherwise); ``uid`` keeps
    the annotation's identity from save to save ("" until it is first converted).
    """

    kind: str
    plane: str
    slice_index: int
    p0: tuple[float, float]
    p1: tuple[float, float]
    id: int = field(default_factory=lambda: next(_ids))
    points: tuple[tuple[float, float], ...] = ()
    label: str = ""
    uid: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        self.p0 = (float(self.p0[0]), float(self.p0[1]))
        self.p1 = (float(self.p1[0]), float(self.p1[1]))
        self.points = tuple((float(u), float(v)) for u, v in self.points)

    @property
    def is_roi(self) -> bool:
        return self.kind in ROI_KINDS

    def shape_points(self) -> list[tuple[float, float]]:
        """The display points that define the shape (see :mod:`medview.core.annotations`
        for each kind's points): ``points`` when given, else derived from ``p0``, ``p1``."""
        if self.points:
            return list(self.points)
        (u0, v0), (u1, v1) = self.p0, self.p1
        if self.kind == "ellipse":
            cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
            return [(u0, cv), (u1, cv), (cu, v0), (cu, v1)]
        if self.kind == "rectangle":
            return [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
        if self.kind == "text":
            return [self.p0]
        return [self.p0, self.p1]


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the voxels inside an ROI (values in the volume's units)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    area_mm2: float
    units: str = ""


def distance_mm(volume: Volume, geometry: PlaneGeometry, m: Measurement) -> float:
    """Distance between the measurement's two points in the patient (mm)."""
    a = volume.index_to_lps(geometry.display_to_index(*m.p0, m.slice_index))
    b = volume.index_to_lps(geometry.display_to_index(*m.p1, m.slice_index))
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def roi_mask(geometry: PlaneGeometry, m: Measurement) -> np.ndarray:
    """Boolean mask ``[row, column]`` of the displayed pixels whose centres are inside."""
    u0, u1 = sorted((m.p0[0], m.p1[0]))
    v0, v1 = sorted((m.p0[1], m.p1[1]))
    cols = np.arange(geometry.width) + 0.5
    rows = np.arange(geometry.height) + 0.5
    if m.kind == "rectangle":
        inside_u = (cols >= u0) & (cols <= u1)
        inside_v = (rows >= v0) & (rows <= v1)
        return inside_v[:, None] & inside_u[None, :]
    if m.kind != "ellipse":
        raise ValueError(f"{m.kind} is not an ROI")
    cu, cv = (u0 + u1) / 2.0, (v0 + v1) / 2.0
    au, av = (u1 - u0) / 2.0, (v1 - v0) / 2.0
    if au <= 0 or av <= 0:
        return np.zeros((geometry.height, geometry.width), dtype=bool)
    du = ((cols - cu) / au) ** 2
    dv = ((rows - cv) / av) ** 2
    return (dv[:, None] + du[None, :]) <= 1.0


def pixel_area_mm2(volume: Volume, geometry: PlaneGeometry) -> float:
    """Area of one displayed pixel in the patient (mm²), also on sheared grids."""
    d = np.asarray(volume.direction, dtype=float)
    h = d[:, geometry.horizontal] * volume.spacing[geometry.horizontal]
    v = d[:, geometry.vertical] * volume.spacing[geometry.vertical]
    return float(np.linalg.norm(np.cross(h, v)))


def roi_stats(volume: Volume, geometry: PlaneGeometry, m: Measurement) -> RoiStats:
    """Count, mean, standard deviation (population), min, max and area of an ROI."""
    if volume.is_rgb:
        raise ValueError("ROI statistics need grey values; this volume is colour")
    mask = roi_mask(geometry, m)
    image = geometry.image(volume.array, m.slice_index)
    values = np.asarray(image)[mask].astype(np.float64)
    units = str(volume.metadata.get("Units") or "")
    area = float(values.size) * pixel_area_mm2(volume, geometry)
    if values.size == 0:
        nan = math.nan
        return RoiStats(0, nan, nan, nan, nan, 0.0, units)
    return RoiStats(int(values.size), float(values.mean()), float(values.std()),
                    float(values.min()), float(values.max()), area, units)


def measurements_table(volume: Volume, geometries, measurements) -> Table:
    """Every measurement as a row: what, where (view, slice, first and last point in LPS mm)
    and its values (distance, angle, or ROI count, mean, std, min, max, area), for CSV/JSON
    export.

    ``geometries`` maps a view's name to its :class:`PlaneGeometry`.
    """
    from medview.app.annotation_model import annotation_of

    rows = []
    units = str(volume.metadata.get("Units") or "")
    for m in measurements:
        g = geometries[m.plane]
        pts = [volume.index_to_lps(g.display_to_index(u, v, m.slice_index))
               for u, v in m.shape_points()]
        row = {"id": m.id, "kind": m.kind, "view": m.plane, "slice": m.slice_index + 1,
               "p0_lps_mm": [round(float(c), 3) for c in pts[0]],
               "p1_lps_mm": [round(float(c), 3) for c in pts[-1]]}
        if m.label:
            row["label"] = m.label
        if m.kind == "distance":
            row["distance_mm"] = distance_mm(volume, g, m)
        elif m.kind in ("ellipse", "rectangle") and not m.points and not volume.is_rgb:
            st = roi_stats(volume, g, m)
            row.update(count=st.count, mean=st.mean, std=st.std, min=st.min, max=st.max,
                       area_mm2=st.area_mm2)
        else:  # angles, polygons, shapes read from a report: the values the report holds
            ann = annotation_of(m, volume, g)
            for value in ann.measurements if ann is not None else ():
                row[_COLUMNS[value.name]] = value.value
        rows.append(row)
    table_units = {"distance_mm": "mm", "area_mm2": "mm²", "p0_lps_mm": "mm", "p1_lps_mm": "mm",
                   "angle_deg": "°"}
    if units:
        table_units.update(mean=units, std=units, min=units, max=units)
    meta = volume.metadata
    what = meta.get("SeriesDescription") or meta.get("SeriesInstanceUID") or "the series"
    title = f"Measurements on {what}"
    return Table(tuple(rows), title=title, units=table_units)
