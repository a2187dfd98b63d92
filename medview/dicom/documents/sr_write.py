"""Annotations → a DICOM Comprehensive 3D SR measurement report (TID 1500), with highdicom.

The encoding (read back by :mod:`medview.dicom.documents.sr_read`, which also reads the
same shapes from reports other tools wrote):

- One report per save: a Comprehensive 3D SR whose root is TID 1500 "Imaging Measurement
  Report"; each annotation is one Measurement Group in "Imaging Measurements". The group's
  Tracking Identifier is the annotation's label and its Tracking Unique Identifier the
  annotation's UID (so an annotation keeps its identity from save to save).
- Coordinates are SCOORD3D in the series' Frame of Reference (LPS mm), so they hold on any
  plane, including reformats.
- ``distance`` and ``angle``: a TID 1501 group holding one TID 300 measurement, Length (SCT
  410668003, mm) or Angle (DCM 110859, deg), INFERRED FROM its SCOORD3D POLYLINE (2 or 3
  points, the vertex in the middle).
- ``ellipse``, ``rectangle``, ``polygon``: a TID 1410 planar ROI group whose Image Region is
  an SCOORD3D ELLIPSE (the axis ends) or POLYGON (closed: the first point repeated at the
  end; a rectangle is a 4-corner polygon, recognised on reading by its right angles, as dwv
  does) with Area (SCT 42798000, mm2) and, when the series was given, Mean (SCT 373098007),
  Standard Deviation (SCT 386136009), Minimum (SCT 255605001) and Maximum (SCT 56851009) in
  the series' unit (UCUM ``[hnsf'U]`` for CT).
- ``arrow`` and ``text``: a TID 1410 group whose Image Region is an SCOORD3D POLYLINE (tail,
  head) or POINT (the anchor), with the text as a TEXT qualitative evaluation "Comment" (DCM
  121106, as OHIF writes free text; TID 1410 allows text evaluations, highdicom issue #124).
- The image an annotation was drawn on: an IMAGE "Source of Measurement" item under its first
  measurement (TID 300), or under the Comment of arrows and text.
- A new save of a series' annotations lists the report it replaces in the Predecessor
  Documents Sequence; readers take the newest report of a chain.

Every report written passes dicom3tools' ``dciodvfy`` with no error (tested).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medview.atomic import atomic_file
from medview.core.annotations import Annotation
from medview.core.volume import Volume
from medview.dicom.export._common import (
    ExportError,
    quiet_highdicom,
    software_version,
    source_series,
)

__all__ = ["UNIT_MEANINGS", "write_annotation_sr"]

#: UCUM codes of units medview writes and their meanings (anything else: the code itself)
UNIT_MEANINGS = {"mm": "millimeter", "deg": "degree", "mm2": "square millimeter",
                 "[hnsf'U]": "Hounsfield unit", "1": "no units", "Bq/mL": "becquerel/milliliter",
                 "{counts}": "counts", "g/mL": "gram/milliliter", "%": "percent",
                 "mg/mL": "milligram/milliliter"}

#: measurement name → (code value, scheme, meaning), shared with the reader
CONCEPTS = {
    "length": ("410668003", "SCT", "Length"),
    "angle": ("110859", "DCM", "Angle"),
    "area": ("42798000", "SCT", "Area"),
    "mean": ("373098007", "SCT", "Mean"),
    "sd": ("386136009", "SCT", "Standard Deviation"),
    "min": ("255605001", "SCT", "Minimum"),
    "max": ("56851009", "SCT", "Maximum"),
}
COMMENT = ("121106", "DCM", "Comment")
SOURCE_OF_MEASUREMENT = ("121112", "DCM", "Source of Measurement")


def _code(value: str, scheme: str, meaning: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _unit(ucum: str):
    return _code(ucum, "UCUM", UNIT_MEANINGS.get(ucum, ucum))


class _Sources:
    """SOP Class UIDs of the source images, to reference the image an annotation is on."""

    def __init__(self, datasets: Sequence) -> None:
        self.sop_class = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in datasets}

    def image(self, ann: Annotation, *, what: str):
        import highdicom as hd

        if not ann.sop_instance_uid:
            return None
        sop_class = self.sop_class.get(ann.sop_instance_uid)
        if sop_class is None:
            raise ExportError(f"{what}: annotation {ann.label!r} is on image "
                              f"{ann.sop_instance_uid}, which is not in the source series")
        frames = [int(ann.frame_number)] if ann.frame_number else None
        return hd.sr.SourceImageForMeasurement(sop_class, ann.sop_instance_uid, frames)


def _measurements(ann: Annotation, image) -> list:
    import highdicom as hd

    out = []
    for k, m in enumerate(ann.measurements):
        coords = None
        if m.name in ("length", "angle"):
            coords = [hd.sr.CoordinatesForMeasurement3D(
                graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE, graphic_data=ann.points,
                frame_of_reference_uid=ann.frame_of_reference_uid)]
        out.append(hd.sr.Measurement(
            name=_code(*CONCEPTS[m.name]), value=m.value, unit=_unit(m.unit),
            referenced_images=[image] if image is not None and k == 0 else None,
            referenced_coordinates=coords))
    return out


def _region(ann: Annotation):
    import highdicom as hd

    pts = ann.points
    kind = ann.kind
    if kind == "ellipse":
        graphic, data = hd.sr.GraphicTypeValues3D.ELLIPSE, pts
    elif ann.is_roi:
        graphic, data = hd.sr.GraphicTypeValues3D.POLYGON, np.vstack([pts, pts[:1]])
    elif kind == "arrow":
        graphic, data = hd.sr.GraphicTypeValues3D.POLYLINE, pts
    else:
        graphic, data = hd.sr.GraphicTypeValues3D.POINT, pts
    return hd.sr.ImageRegion3D(graphic_type=graphic, graphic_data=data,
                               frame_of_reference_uid=ann.frame_of_reference_uid)


def _group(ann: Annotation, sources: _Sources, *, what: str):
    import highdicom as hd

    if not ann.frame_of_reference_uid:
        raise ExportError(f"{what}: annotation {ann.label!r} has no Frame of Reference UID; "
                          "draw it on a series loaded from DICOM")
    if ann.kind in ("distance", "angle") and not any(
            m.name in ("length", "angle") for m in ann.measurements):
        raise ExportError(f"{what}: the {ann.kind} {ann.label!r} has no measured value; "
                          "make it with medview.core.annotations.make_annotation")
    tracking = hd.sr.TrackingIdentifier(uid=ann.uid, identifier=ann.label)
    image = sources.image(ann, what=what)
    if ann.kind in ("distance", "angle"):
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, measurements=_measurements(ann, image))
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_region=_region(ann),
        measurements=_measurements(ann, image) or None)
    if ann.kind in ("arrow", "text"):
        comment = hd.sr.TextContentItem(name=_code(*COMMENT), value=ann.label,
                                        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        if image is not None:
            comment.ContentSequence = hd.sr.ContentSequence([image])
        group[0].ContentSequence.append(comment)
    return group


def _placeholder_group():
    import highdicom as hd

    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="cleared"))


def write_annotation_sr(
    annotations: Sequence[Annotation],
    path: str | os.PathLike,
    *,
    source: Volume,
    overwrite: bool = False,
    previous: Sequence = (),
    series_description: str = "medview annotations",
    series_number: int | None = None,
    observer_name: str | None = None,
) -> Path:
    """Write ``annotations`` as a Comprehensive 3D SR measurement report on ``source``.

    Parameters
    ----------
    annotations : sequence of Annotation
        Their points must be in ``source``'s Frame of Reference. At least one unless
        ``previous`` is given: an empty report replacing ``previous`` clears them.
    path : path
        The file to write (atomically).
    source : Volume
        The series they were drawn on, loaded from DICOM (patient, study and the evidence
        come from its files).
    overwrite : bool
        Replace an existing file.
    previous : sequence of pydicom Datasets
        Reports this one replaces (their headers suffice), listed as predecessors.
    series_description, series_number
        Of the new SR series; the number defaults to the source's + 2000.
    observer_name : str, optional
        The person who made the annotations (DICOM PN, ``Family^Given``); default: the
        observer is the medview device.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ExportError
        No annotation and nothing replaced, the source is not a DICOM series, an
        annotation is in another Frame of Reference or references an image not in the
        series.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    path = Path(path)
    what = f"SR {path}"
    if not annotations and not previous:
        # an empty report only makes sense as the one that clears the reports it replaces
        raise ExportError(f"{what}: no annotation to write")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    src = source_series(source, what=what)
    series_for = str(src.first.get("FrameOfReferenceUID", ""))
    for ann in annotations:
        if series_for and ann.frame_of_reference_uid != series_for:
            raise ExportError(f"{what}: annotation {ann.label!r} is in Frame of Reference "
                              f"{ann.frame_of_reference_uid or '(none)'}, the series in "
                              f"{series_for}")
    unique = list({str(ds.SOPInstanceUID): ds for ds in src.datasets}.values())
    sources = _Sources(unique)
    groups = [_group(a, sources, what=what) for a in annotations]
    if observer_name:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=observer_name))
    else:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=hd.UID(), name="medview", manufacturer_name="medview",
                model_name="medview"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer)
        if observer_name else hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_code("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=groups or [_placeholder_group()],
    )
    if not groups:
        # a report that clears its predecessors: TID 1500 with an empty Imaging Measurements
        # container (no children: its rows 7-9 are optional; highdicom insists on one group, so the
        # placeholder goes again); the evidence still names the series
        del report[0].ContentSequence[-1].ContentSequence
    number = series_number if series_number is not None else (
        int(src.first.get("SeriesNumber") or 0) + 2000)
    with quiet_highdicom():
        sr = hd.sr.Comprehensive3DSR(
            evidence=unique,
            content=report,
            series_instance_uid=hd.UID(),
            series_number=number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="medview",
            series_description=series_description[:64],
            previous_versions=list(previous) or None,
            is_complete=True,
        )
    sr.SoftwareVersions = software_version()
    # labels and names in any script: UTF-8 (the source's own character set may not hold them)
    sr.SpecificCharacterSet = "ISO_IR 192"
    with atomic_file(path, overwrite=overwrite) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return path
