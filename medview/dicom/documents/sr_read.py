"""A TID 1500 measurement report (medview's or another tool's) → annotations.

Reads the encoding :mod:`medview.dicom.documents.sr_write` writes, and the same shapes as other
tools write them (highdicom, dwv, OHIF in 3D): each Measurement Group of "Imaging
Measurements" becomes one :class:`~medview.core.annotations.Annotation`:

- an Image Region (SCOORD3D) ELLIPSE → ``ellipse``; POLYGON, or a closed POLYLINE → a
  ``rectangle`` when it has 4 corners at right angles, else a ``polygon``; an open POLYLINE of
  2 points → ``distance`` when a Length is measured, else ``arrow``; of 3 points → ``angle``;
  POINT → ``text``;
- no region, a measurement INFERRED FROM an SCOORD3D POLYLINE of 2 or 3 points →
  ``distance`` or ``angle``.

The label is the group's Tracking Identifier (a Comment's text for arrows and text, when
there is one), the UID its Tracking Unique Identifier. Groups that hold no 3D shape (2D image
coordinates, segmentations, volumes) are listed in ``skipped`` with the reason, never
dropped silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from medview.core.annotations import Annotation, Measured
from medview.dicom.documents.sr_write import COMMENT, CONCEPTS
from medview.dicom.errors import DicomError

__all__ = ["MAX_DOCUMENT_BYTES", "AnnotationReport", "read_annotation_sr", "referenced_series"]

#: larger SR/KO files are refused before parsing (a report of annotations is kilobytes)
MAX_DOCUMENT_BYTES = 64 << 20

_NAMES = {(v, s): name for name, (v, s, _) in CONCEPTS.items()}
_NAMES[("1483009", "SCT")] = "angle"  # SNOMED's "Angle" (OHIF, Cornerstone)
_NAMES[("113049", "DCM")] = "mean"  # dwv's "Pixel by pixel mean" and friends
_NAMES[("113051", "DCM")] = "min"
_NAMES[("113048", "DCM")] = "max"
_DERIVATION = ("121401", "DCM")
_DERIVED = {(v, s): name for name, (v, s, _) in CONCEPTS.items()
            if name in ("mean", "sd", "min", "max")}
_MEASUREMENT_GROUP = ("125007", "DCM")
_IMAGING_MEASUREMENTS = ("126010", "DCM")
_IMAGE_REGION = ("111030", "DCM")
_TRACKING_ID = ("112039", "DCM")
_TRACKING_UID = ("112040", "DCM")
_COMMENT = COMMENT[:2]


@dataclass(frozen=True)
class AnnotationReport:
    """What one measurement report holds."""

    path: str
    sop_instance_uid: str
    series_instance_uid: str
    content_datetime: str
    #: the series the report's evidence lists
    referenced_series: tuple[str, ...]
    #: SOP Instance UIDs of the reports this one replaces
    predecessors: tuple[str, ...]
    annotations: tuple[Annotation, ...]
    #: groups that could not be read as an annotation, each with the reason
    skipped: tuple[str, ...] = ()


def _concept(item) -> tuple[str, str]:
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return ("", "")
    return (str(seq[0].get("CodeValue", "")), str(seq[0].get("CodingSchemeDesignator", "")))


def _children(item) -> list:
    return list(item.get("ContentSequence", []) or [])


def _scoord3d(item) -> tuple[str, np.ndarray, str]:
    data = np.asarray(item.GraphicData, dtype=np.float32).astype(np.float64).reshape(-1, 3)
    return str(item.GraphicType), data, str(item.get("ReferencedFrameOfReferenceUID", ""))


def _image(item) -> tuple[str, int | None] | None:
    """(SOP Instance UID, frame) of an IMAGE content item."""
    seq = item.get("ReferencedSOPSequence")
    if not seq:
        return None
    ref = seq[0]
    frames = ref.get("ReferencedFrameNumber")
    frame = None
    if frames is not None and str(frames) != "":
        from pydicom.multival import MultiValue

        frame = int(frames[0] if isinstance(frames, MultiValue | list) else frames)
    return str(ref.ReferencedSOPInstanceUID), frame


def _is_rectangle(p: np.ndarray) -> bool:
    if len(p) != 4:
        return False
    sides = np.roll(p, -1, axis=0) - p
    lengths = np.linalg.norm(sides, axis=1)
    if lengths.min() <= 0:
        return False
    unit = sides / lengths[:, None]
    return bool(np.all(np.abs(np.sum(unit * np.roll(unit, -1, axis=0), axis=1)) < 1e-3))


class _Group:
    """The parts of one Measurement Group medview reads."""

    def __init__(self, group) -> None:
        self.label = ""
        self.uid = ""
        self.comment = ""
        self.region: tuple[str, np.ndarray, str] | None = None
        self.region_2d = False
        self.measurements: list[Measured] = []
        self.coords: tuple[str, np.ndarray, str] | None = None
        self.image: tuple[str, int | None] | None = None
        for item in _children(group):
            concept, vt = _concept(item), item.get("ValueType", "")
            if concept == _TRACKING_ID and vt == "TEXT":
                self.label = str(item.TextValue)
            elif concept == _TRACKING_UID and vt == "UIDREF":
                self.uid = str(item.UID)
            elif concept == _IMAGE_REGION and vt == "SCOORD3D":
                self.region = _scoord3d(item)
            elif concept == _IMAGE_REGION and vt == "SCOORD":
                self.region_2d = True
            elif concept == _COMMENT and vt == "TEXT":
                self.comment = str(item.TextValue)
                self._images(item)
            elif vt == "NUM":
                self._num(item, concept)

    def _images(self, item) -> None:
        for child in _children(item):
            if child.get("ValueType") == "IMAGE" and self.image is None:
                self.image = _image(child)

    def _num(self, item, concept: tuple[str, str]) -> None:
        name = _NAMES.get(concept)
        for child in _children(item):
            vt = child.get("ValueType")
            if vt == "SCOORD3D" and self.coords is None:
                self.coords = _scoord3d(child)
            elif vt == "CODE" and _concept(child) == _DERIVATION and name is None:
                # a quantity with its statistic as modifier: (Attenuation Coefficient,
                # derivation Mean), as dcmqi and highdicom's examples write ROI values
                code = child.ConceptCodeSequence[0]
                name = _DERIVED.get((str(code.CodeValue), str(code.CodingSchemeDesignator)))
        self._images(item)
        seq = item.get("MeasuredValueSequence")
        if name is None or not seq:
            return
        mv = seq[0]
        value = mv.get("FloatingPointValue")
        value = float(value) if value is not None else float(mv.NumericValue)
        units = mv.get("MeasurementUnitsCodeSequence")
        unit = str(units[0].CodeValue) if units else "1"
        self.measurements.append(Measured(name, value, unit))

    def has(self, name: str) -> bool:
        return any(m.name == name for m in self.measurements)


def _annotation(g: _Group) -> tuple[Annotation | None, str]:
    """The annotation of a group, or None and why not."""
    label = g.label
    if g.region is not None:
        graphic, p, for_uid = g.region
        if graphic == "ELLIPSE" and len(p) == 4:
            kind = "ellipse"
        elif graphic in ("POLYGON", "POLYLINE") and len(p) >= 4 and np.array_equal(p[0], p[-1]):
            p = p[:-1]
            kind = "rectangle" if _is_rectangle(p) else "polygon"
        elif graphic == "POLYGON" and len(p) >= 3:
            kind = "rectangle" if _is_rectangle(p) else "polygon"
        elif graphic == "POLYLINE" and len(p) == 2:
            kind = "distance" if g.has("length") else "arrow"
        elif graphic == "POLYLINE" and len(p) == 3 and g.has("angle"):
            kind = "angle"
        elif graphic == "POINT" and len(p) == 1:
            kind = "text"
        else:
            return None, f"an Image Region {graphic} of {len(p)} point(s)"
        if kind in ("arrow", "text") and g.comment:
            label = g.comment
    elif g.coords is not None and g.coords[0] == "POLYLINE" and len(g.coords[1]) in (2, 3):
        _, p, for_uid = g.coords
        kind = "distance" if len(p) == 2 else "angle"
    elif g.region_2d:
        return None, "2D image coordinates (SCOORD), not patient coordinates (SCOORD3D)"
    else:
        return None, "no SCOORD3D shape (a segmentation or volume measurement?)"
    sop, frame = g.image if g.image is not None else ("", None)
    kw = {"uid": g.uid} if g.uid else {}
    return Annotation(kind, p, label, frame_of_reference_uid=for_uid, sop_instance_uid=sop,
                      frame_number=frame, measurements=tuple(g.measurements), **kw), ""


def referenced_series(ds) -> tuple[str, ...]:
    """Series UIDs the SR/KO document's evidence lists (current and other), in order."""
    out: dict[str, None] = {}
    for seq_name in ("CurrentRequestedProcedureEvidenceSequence",
                     "PertinentOtherEvidenceSequence"):
        for study in ds.get(seq_name, []) or []:
            for series in study.get("ReferencedSeriesSequence", []) or []:
                uid = str(series.get("SeriesInstanceUID", ""))
                if uid:
                    out[uid] = None
    return tuple(out)


def predecessor_uids(ds) -> tuple[str, ...]:
    """SOP Instance UIDs of the documents ``ds`` replaces (Predecessor Documents Sequence)."""
    out = []
    for study in ds.get("PredecessorDocumentsSequence", []) or []:
        for series in study.get("ReferencedSeriesSequence", []) or []:
            for sop in series.get("ReferencedSOPSequence", []) or []:
                out.append(str(sop.ReferencedSOPInstanceUID))
    return tuple(out)


def read_dataset(path: str | os.PathLike, *, what: str):
    """The whole data set of a small DICOM document, size-checked first.

    Raises
    ------
    DicomError
        If the file is missing, larger than :data:`MAX_DOCUMENT_BYTES` or not DICOM.
    """
    import pydicom

    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DicomError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise DicomError(f"{path}: {size:,} bytes is too large for a {what} (at most "
                         f"{MAX_DOCUMENT_BYTES:,}); not read")
    try:
        return pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises several types for broken files
        raise DicomError(f"{path}: not a readable DICOM {what}: {exc}") from exc


def read_annotation_sr(path: str | os.PathLike) -> AnnotationReport:
    """The annotations of a TID 1500 measurement report.

    Parameters
    ----------
    path : path
        A Comprehensive 3D SR (or Enhanced/Comprehensive SR) file.

    Returns
    -------
    AnnotationReport

    Raises
    ------
    DicomError
        If the file is not an SR document with a TID 1500 measurement report, or too large.
    """
    ds = read_dataset(path, what="measurement report")
    path = os.fspath(path)
    if ds.get("Modality") != "SR" or "ContentSequence" not in ds:
        raise DicomError(f"{path}: not a structured report (Modality "
                         f"{ds.get('Modality', '(none)')}); annotations are read from SR files")
    templates = [str(t.get("TemplateIdentifier", "")) for t in
                 ds.get("ContentTemplateSequence", []) or []]
    if _concept(ds) != ("126000", "DCM") and "1500" not in templates:
        title = ds.ConceptNameCodeSequence[0].get("CodeMeaning", "?") \
            if ds.get("ConceptNameCodeSequence") else "?"
        raise DicomError(f"{path}: the SR is a '{title}', not a TID 1500 measurement report")
    annotations, skipped = [], []
    for container in _children(ds):
        if _concept(container) != _IMAGING_MEASUREMENTS:
            continue
        for n, group in enumerate(_children(container), start=1):
            if _concept(group) != _MEASUREMENT_GROUP:
                continue
            g = _Group(group)
            ann, why = _annotation(g)
            if ann is None:
                skipped.append(f"measurement group {n} ({g.label or 'no label'}): {why}")
            else:
                annotations.append(ann)
    date, time = str(ds.get("ContentDate", "")), str(ds.get("ContentTime", ""))
    return AnnotationReport(
        path=path, sop_instance_uid=str(ds.SOPInstanceUID),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        content_datetime=date + time, referenced_series=referenced_series(ds),
        predecessors=predecessor_uids(ds), annotations=tuple(annotations),
        skipped=tuple(skipped))
