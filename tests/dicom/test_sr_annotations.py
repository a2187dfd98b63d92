"""Annotations ⇄ Comprehensive 3D SR (TID 1500): exact round trips on real series, validated
with dciodvfy, and reports made by other tools (highdicom directly, dcmqi) read into the model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom

from medview.core.annotations import KINDS, Annotation, make_annotation
from medview.dicom.documents.sr_read import read_annotation_sr
from medview.dicom.documents.sr_write import write_annotation_sr
from medview.dicom.errors import DicomError
from medview.dicom.export._common import ExportError, quiet_highdicom
from medview.dicom.series.loading import load


@pytest.fixture(scope="module")
def ct(data_dir):
    """Real GE liver CT, 3 slices of 512² (HU)."""
    return load(data_dir / "dcmqi_seg/data/segmentations/ct-3slice")


@pytest.fixture(scope="module")
def mr(data_dir):
    """Real sagittal T1 MR, head-first decubitus left: an unusual orientation."""
    return load(data_dir / "dcm_qa_decubitus/In/HFDL")


def _every_kind(vol, z: int) -> list[Annotation]:
    def p(x, y):
        return vol.index_to_lps((x, y, z))

    def a(kind, points, label):
        return make_annotation(kind, points, label=label, volume=vol, slice_index=z)

    return [
        a("distance", [p(100.3, 100.7), p(200.1, 150.2)], "liver width"),
        a("angle", [p(100, 100), p(200, 150), p(250, 300)], "Cobb angle"),
        a("ellipse", [p(200, 250), p(300, 250), p(250, 220), p(250, 280)], "lesion 1"),
        a("rectangle", [p(200, 200), p(300, 200), p(300, 260), p(200, 260)], "box"),
        a("polygon", [p(200, 200), p(300, 210), p(260, 300), p(210, 290), p(205, 250)],
          "freehand – Ünïcode"),
        a("arrow", [p(10, 10), p(50, 50)], "look here"),
        a("text", [p(30, 30)], "a note on this slice"),
    ]


def test_round_trip_is_exact_and_valid(ct, tmp_path):
    anns = _every_kind(ct, 1)
    assert {a.kind for a in anns} == set(KINDS)
    path = write_annotation_sr(anns, tmp_path / "a.sr.dcm", source=ct)
    assert_valid_dicom(path)
    report = read_annotation_sr(path)
    assert report.skipped == ()
    assert report.referenced_series == (ct.metadata["SeriesInstanceUID"],)
    assert len(report.annotations) == len(anns)
    for wrote, read in zip(anns, report.annotations, strict=True):
        # points in LPS, labels, values, units, UIDs, the image drawn on: all exact
        assert read == wrote, (wrote.kind, wrote, read)
    assert report.annotations[0].sop_instance_uid == ct.metadata["source_sop_instance_uids"][1]


def test_highdicom_reads_our_report(ct, tmp_path):
    """Another reader (highdicom's TID 1500 parser) finds the groups and the values."""
    import highdicom as hd

    anns = _every_kind(ct, 1)
    path = write_annotation_sr(anns, tmp_path / "a.sr.dcm", source=ct)
    content = hd.sr.srread(path).content
    assert isinstance(content, hd.sr.MeasurementReport)
    planar = content.get_planar_roi_measurement_groups()
    assert [g.tracking_identifier for g in planar] == [
        a.label for a in anns if a.kind not in ("distance", "angle")]
    ellipse = planar[0]
    assert ellipse.roi.graphic_type == hd.sr.GraphicTypeValues3D.ELLIPSE
    area = ellipse.get_measurements(name=hd.sr.CodedConcept("42798000", "SCT", "Area"))[0]
    assert area.value == anns[2].value("area").value and area.unit.value == "mm2"
    lengths = content.get_image_measurement_groups()
    assert [g.tracking_uid for g in lengths] == [anns[0].uid, anns[1].uid]


def test_measured_values_are_right(ct):
    anns = {a.kind: a for a in _every_kind(ct, 1)}
    d = anns["distance"].points
    assert anns["distance"].value("length").value == pytest.approx(np.linalg.norm(d[1] - d[0]))
    assert anns["distance"].value("length").unit == "mm"
    # the angle at (200, 150) between the arms to (100, 100) and (250, 300), in pixel units
    # scaled by the square pixel spacing: the same as in the image plane
    u, v = np.array([-100.0, -50.0]), np.array([50.0, 150.0])
    expected = math.degrees(math.acos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
    assert anns["angle"].value("angle").value == pytest.approx(expected, abs=1e-4)
    assert anns["angle"].value("angle").unit == "deg"
    sx = ct.spacing[0]
    assert anns["rectangle"].value("area").value == pytest.approx(100 * 60 * sx * sx, rel=1e-5)
    assert anns["ellipse"].value("area").value == pytest.approx(math.pi * 50 * 30 * sx * sx,
                                                                rel=1e-5)
    assert anns["ellipse"].value("area").unit == "mm2"
    assert anns["arrow"].measurements == anns["text"].measurements == ()


def test_roi_statistics_equal_numpy_on_the_same_voxels(ct):
    anns = {a.kind: a for a in _every_kind(ct, 1)}
    plane = ct.array[1].astype(np.float64)
    yy, xx = np.mgrid[0:plane.shape[0], 0:plane.shape[1]]
    # the ellipse: centre (250, 250), semi-axes 50 (x) and 30 (y) pixels, rim included
    inside = ((xx - 250) / 50.0) ** 2 + ((yy - 250) / 30.0) ** 2 <= 1
    # the rectangle: x 200..300, y 200..260 (voxel centres strictly inside or on the edge)
    box = (xx >= 200) & (xx <= 300) & (yy >= 200) & (yy <= 260)
    for kind, mask in (("ellipse", inside), ("rectangle", box)):
        values = plane[mask]
        got = {m.name: m for m in anns[kind].measurements}
        assert got["mean"].value == pytest.approx(values.mean(), rel=1e-12)
        assert got["sd"].value == pytest.approx(values.std(), rel=1e-12)
        assert got["min"].value == values.min() and got["max"].value == values.max()
        assert {m.unit for n, m in got.items() if n != "area"} == {"[hnsf'U]"}


def test_sagittal_mr_and_a_reformatted_plane(mr, tmp_path):
    """An MR in decubitus position: the ROI on an acquired sagittal slice, another on a
    plane across the slices (as drawn on a reformatted view); values without a unit."""
    z = mr.shape[0] // 2
    on_slice = _every_kind(mr, z)
    nx = mr.shape[2]
    k = nx // 2  # a plane of constant x index, across all slices
    corners = [mr.index_to_lps((k, y, zz)) for y, zz in ((10, 2), (40, 2), (40, 20), (10, 20))]
    across = make_annotation("rectangle", corners, label="across", volume=mr)
    stats = {m.name: m.value for m in across.measurements}
    values = mr.array[2:21, 10:41, k].astype(np.float64)
    assert stats["mean"] == pytest.approx(values.mean()) and stats["max"] == values.max()
    assert across.value("mean").unit == "1"  # MR signal has no unit
    anns = [*on_slice, across]
    path = write_annotation_sr(anns, tmp_path / "mr.dcm", source=mr, observer_name="Doe^Jane")
    assert_valid_dicom(path)
    assert read_annotation_sr(path).annotations == tuple(anns)


def test_foreign_report_made_with_highdicom(ct, tmp_path):
    """A report as highdicom's own examples make it: a planar ROI polygon with an area and a
    mean attenuation (a quantity with derivation Mean), a TID 1501 length with its SCOORD3D,
    and a 2D region that medview does not read (listed, not dropped silently)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    files = sorted(ct.metadata["source_files"])
    images = [pydicom.dcmread(f) for f in files]
    for ds in images:  # an empty Specific Character Set here, which highdicom refuses
        del ds.SpecificCharacterSet
    for_uid = images[0].FrameOfReferenceUID
    polygon = np.array([ct.index_to_lps((x, y, 0)) for x, y in
                        ((100, 100), (160, 100), (160, 140), (120, 170), (100, 100))])
    roi = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Nodule 1"),
        referenced_region=hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYGON, graphic_data=polygon,
            frame_of_reference_uid=for_uid),
        finding_type=codes.SCT.Neoplasm,
        measurements=[
            hd.sr.Measurement(name=codes.SCT.Area, value=1234.5,
                              unit=codes.UCUM.SquareMillimeter),
            hd.sr.Measurement(name=hd.sr.CodedConcept("112031", "DCM", "Attenuation Coefficient"),
                              value=42.25, unit=codes.UCUM.HounsfieldUnit,
                              derivation=codes.SCT.Mean),
        ])
    line = np.array([ct.index_to_lps((10, 10, 2)), ct.index_to_lps((90, 40, 2))])
    length = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Length 1"),
        measurements=[hd.sr.Measurement(
            name=codes.SCT.Length, value=float(np.linalg.norm(line[1] - line[0])),
            unit=codes.UCUM.Millimeter,
            referenced_coordinates=[hd.sr.CoordinatesForMeasurement3D(
                graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE, graphic_data=line,
                frame_of_reference_uid=for_uid)])])
    region_2d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="2D region"),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.CIRCLE,
            graphic_data=np.array([[50.0, 50.0], [60.0, 50.0]]),
            source_image=hd.sr.SourceImageForRegion(images[0].SOPClassUID,
                                                    images[0].SOPInstanceUID)))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Doe^John"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[roi, length, region_2d])
    with quiet_highdicom():  # the scanner's one-component patient name, copied as it is
        sr = hd.sr.Comprehensive3DSR(
            evidence=images, content=report, series_number=99, series_instance_uid=hd.UID(),
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="highdicom test")
    path = tmp_path / "foreign.dcm"
    sr.save_as(path)

    got = read_annotation_sr(path)
    assert len(got.annotations) == 2
    poly, dist = got.annotations
    assert poly.kind == "polygon" and poly.label == "Nodule 1"
    assert np.allclose(poly.points, polygon[:-1].astype(np.float32), atol=0)
    assert poly.frame_of_reference_uid == for_uid
    assert (poly.value("area").value, poly.value("area").unit) == (1234.5, "mm2")
    assert (poly.value("mean").value, poly.value("mean").unit) == (42.25, "[hnsf'U]")
    assert poly.uid == str(roi.tracking_uid)
    assert dist.kind == "distance" and dist.label == "Length 1"
    assert np.allclose(dist.points, line.astype(np.float32), atol=0)
    assert dist.value("length").value == pytest.approx(np.linalg.norm(line[1] - line[0]))
    assert len(got.skipped) == 1 and "2D region" in got.skipped[0] and "SCOORD" in got.skipped[0]


def test_dcmqi_volumetric_report_is_read_without_inventing_shapes(data_dir):
    """dcmqi's SR (measurements of a SEG segment): no planar shape, every group listed."""
    report = read_annotation_sr(data_dir / "dcmqi_seg/data/sr-example/sr.dcm")
    assert report.annotations == ()
    assert report.skipped and all("no SCOORD3D shape" in s for s in report.skipped)


def test_bad_input_is_refused_with_path_and_reason(ct, data_dir, tmp_path):
    ann = _every_kind(ct, 0)[0]
    target = tmp_path / "x.dcm"
    elsewhere = Annotation("text", [(0.0, 0.0, 0.0)], "x", frame_of_reference_uid="1.2.3")
    with pytest.raises(ExportError, match=r"Frame of Reference 1\.2\.3"):
        write_annotation_sr([ann, elsewhere], target, source=ct)
    unknown_image = Annotation("text", [(0.0, 0.0, 0.0)], "x",
                               frame_of_reference_uid=ann.frame_of_reference_uid,
                               sop_instance_uid="1.2.3.4")
    with pytest.raises(ExportError, match="not in the source series"):
        write_annotation_sr([unknown_image], target, source=ct)
    with pytest.raises(ExportError, match="no annotation"):
        write_annotation_sr([], target, source=ct)
    assert list(tmp_path.iterdir()) == []  # nothing half written
    write_annotation_sr([ann], target, source=ct)
    with pytest.raises(FileExistsError):
        write_annotation_sr([ann], target, source=ct)
    image = sorted(ct.metadata["source_files"])[0]
    with pytest.raises(DicomError, match=r"ct-3slice.*not a structured report"):
        read_annotation_sr(image)
    with pytest.raises(DicomError, match="not a readable DICOM"):
        read_annotation_sr(data_dir / "kits_dupe_positions/CITATION.txt")
