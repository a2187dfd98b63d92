"""Label map → DICOM SEG on real CTs: dciodvfy, voxel-by-voxel read-back, refusals, atomicity."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom
from realparts import DATA, require

import medview
from medview.core.labelmap import LabelMap, Segment
from medview.core.volume import Volume
from medview.dicom.export._common import ExportError
from medview.dicom.export.seg import write_seg

PHILIPS = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"  # tilted, 54 slices
LIVER = DATA / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice"  # axial, 3 slices
GE = DATA / "dcm_qa_ct" / "In" / "GE"  # tilted, varying spacing: resampled at load

BRAIN = Segment(1, "Brain", (200, 150, 150), ("91723000", "SCT", "Anatomical Structure"),
                ("12738006", "SCT", "Brain"))
BONE = Segment(2, "Bone", (240, 240, 200), ("91723000", "SCT", "Anatomical Structure"),
               ("3138006", "SCT", "Bone tissue"))


def _load(folder):
    require(folder.is_dir(), f"real CT at {folder}")
    return medview.load(folder)


@pytest.fixture(scope="module")
def philips():
    return _load(PHILIPS)


@pytest.fixture(scope="module")
def liver():
    return _load(LIVER)


def ct_labels(vol: Volume) -> LabelMap:
    """Soft tissue 1 and bone 2 by HU thresholds: real, irregular shapes on a real CT."""
    lab = np.zeros(vol.shape, np.uint8)
    lab[(vol.array > 20) & (vol.array < 60)] = 1
    lab[vol.array > 300] = 2
    return LabelMap.like(vol, lab, segments=(BRAIN, BONE))


def read_back(path, source: Volume) -> np.ndarray:
    import highdicom as hd

    seg = hd.seg.segread(path)
    return seg.get_pixels_by_source_instance(
        source_sop_instance_uids=source.metadata["source_sop_instance_uids"],
        combine_segments=True)


@pytest.mark.parametrize("encoding", ["labelmap", "binary"])
@pytest.mark.parametrize("which", ["philips", "liver"])
def test_seg_of_a_real_ct_is_valid_and_reads_back_voxel_by_voxel(which, encoding, request,
                                                                  tmp_path):
    import highdicom as hd

    vol = request.getfixturevalue(which)
    labels = ct_labels(vol)
    assert set(np.unique(labels.array)) == {0, 1, 2}
    path = write_seg(labels, tmp_path / "seg.dcm", source=vol, encoding=encoding)
    assert_valid_dicom(path)
    np.testing.assert_array_equal(read_back(path, vol), labels.array)

    seg = hd.seg.segread(path)
    assert seg.StudyInstanceUID == vol.metadata["StudyInstanceUID"]
    assert seg.FrameOfReferenceUID == vol.metadata["FrameOfReferenceUID"]
    assert seg.PatientID == vol.metadata["PatientID"]
    assert seg.SeriesInstanceUID != vol.metadata["SeriesInstanceUID"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == vol.metadata["SeriesInstanceUID"]
    referenced = {i.ReferencedSOPInstanceUID
                  for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(vol.metadata["source_sop_instance_uids"])
    # only the frames that hold a segment are stored
    if encoding == "binary":  # a frame per segment and slice
        planes_with = sum(int(np.any(labels.array == n, axis=(1, 2)).sum()) for n in (1, 2))
    else:  # a frame per slice, holding all the segments
        planes_with = int(np.any(labels.array > 0, axis=(1, 2)).sum())
    assert seg.SegmentationType == encoding.upper()
    assert seg.NumberOfFrames == planes_with
    # a label map's segment 0 (if written) describes the background
    d1, d2 = [d for d in seg.SegmentSequence if d.SegmentNumber > 0]
    assert (d1.SegmentLabel, d2.SegmentLabel) == ("Brain", "Bone")
    assert d1.SegmentedPropertyTypeCodeSequence[0].CodeValue == "12738006"
    assert d2.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Anatomical Structure"
    back_rgb = hd.color.CIELabColor.from_dicom_value(d2.RecommendedDisplayCIELabValue).to_rgb()
    np.testing.assert_allclose(back_rgb, BONE.color, atol=1)
    assert d1.SegmentAlgorithmType == "AUTOMATIC"
    assert d1.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "medview"


def test_label_map_made_from_the_volume_carries_its_source(philips, tmp_path):
    labels = ct_labels(philips)  # LabelMap.like keeps the source instances
    path = write_seg(labels, tmp_path / "seg.dcm")
    np.testing.assert_array_equal(read_back(path, philips), labels.array)


def test_label_values_that_skip_numbers_become_consecutive_segments(liver, tmp_path):
    import highdicom as hd

    lab = np.zeros(liver.shape, np.uint8)
    lab[0, 100:200, 100:200] = 3
    lab[2, 300:350, 200:260] = 7
    labels = LabelMap.like(liver, lab)
    path = write_seg(labels, tmp_path / "seg.dcm")
    assert_valid_dicom(path)
    seg = hd.seg.segread(path)
    # a label map SEG describes its background as segment 0
    assert [s.SegmentLabel for s in seg.SegmentSequence
            if s.SegmentNumber > 0] == ["Segment 3", "Segment 7"]
    back = read_back(path, liver)
    np.testing.assert_array_equal(back, np.select([lab == 3, lab == 7], [1, 2], 0))


def test_refuses_a_grid_that_is_not_the_source_series(liver, tmp_path):
    require(GE.is_dir(), f"GE tilted CT at {GE}")
    ge = medview.load(GE)  # 28 acquired slices resampled onto 37
    with pytest.raises(ExportError, match=r"28 acquired slices.*resampled"):
        write_seg(ct_labels(ge), tmp_path / "ge.dcm")
    moved = Volume(liver.array, liver.spacing, np.add(liver.origin, (0, 0, 5.0)),
                   liver.direction, liver.metadata)
    with pytest.raises(ExportError, match="does not lie on its source image"):
        write_seg(ct_labels(moved), tmp_path / "moved.dcm")
    assert not any(tmp_path.iterdir())


def test_refuses_without_a_source_series(liver, tmp_path):
    plain = Volume(liver.array, liver.spacing, liver.origin, liver.direction)
    with pytest.raises(ExportError, match="does not come from a DICOM series"):
        write_seg(ct_labels(plain), tmp_path / "a.dcm")
    copy = tmp_path / "ct"
    shutil.copytree(LIVER, copy)
    vol = medview.load(copy)
    (copy / "02.dcm").unlink()
    with pytest.raises(ExportError, match=r"not available, e\.g\. .*02\.dcm"):
        write_seg(ct_labels(vol), tmp_path / "b.dcm")
    assert not (tmp_path / "a.dcm").exists() and not (tmp_path / "b.dcm").exists()


def test_never_overwrites_silently_and_a_failure_leaves_nothing(liver, tmp_path, monkeypatch):
    import highdicom as hd

    labels = ct_labels(liver)
    target = tmp_path / "seg.dcm"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_seg(labels, target)
    assert target.read_bytes() == b"old"
    write_seg(labels, target, overwrite=True)
    np.testing.assert_array_equal(read_back(target, liver), labels.array)

    def broken_save(self, filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"half a SEG")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", broken_save)
    out = tmp_path / "new" / "deeper" / "seg.dcm"
    with pytest.raises(OSError, match="injected"):
        write_seg(labels, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.dcm"]
    monkeypatch.undo()

    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(OSError):
        write_seg(labels, blocker / "seg.dcm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "seg.dcm"]


def test_seg_of_a_series_resampled_at_load_goes_onto_the_acquired_slices(tmp_path):
    import pydicom

    from medview.dicom.export.dispatch import export_dicom

    require(GE.is_dir(), f"GE tilted CT at {GE}")
    ge = medview.load(GE)  # tilted, spacing 1.1–7.4 mm: 28 acquired → 37 uniform slices
    labels = ct_labels(ge)
    with pytest.raises(ExportError, match="resampled"):
        write_seg(labels, tmp_path / "refused.dcm", source=ge)
    (path,) = export_dicom(labels, tmp_path / "seg.dcm", source=ge)  # nearest_slices=True
    assert_valid_dicom(path)
    back = read_back(path, ge)
    assert back.shape == (28, 512, 512)
    exact = 0
    for j, f in enumerate(ge.metadata["source_files"]):
        ipp = np.asarray(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient,
                         float)
        k = ge.lps_to_index(ipp)[2]
        np.testing.assert_array_equal(back[j], labels.array[round(float(k))])
        exact += abs(k - round(float(k))) < 1e-3
    assert exact >= 2  # the first and last acquired slices lie on grid planes


@pytest.mark.parametrize("encoding", ["labelmap", "binary"])
def test_a_hundred_segments_round_trip_through_read_seg(liver, encoding, tmp_path):
    """An atlas-like label map (100 segments, each a box, some on one slice only) written in
    either encoding and read back as the overlay the viewer shows: voxel-equal, names kept."""
    from medview.dicom.series.seg import read_seg

    nz, ny, nx = liver.shape
    y = np.arange(ny) * 10 // ny
    x = np.arange(nx) * 10 // nx
    lab = np.broadcast_to((y[:, None] * 10 + x[None, :] + 1), (nz, ny, nx)).astype(np.uint8)
    lab = lab.copy()
    lab[0, lab[0] % 3 == 0] = 0  # segments missing from a slice
    lab[:, :8] = 0
    segments = tuple(Segment(n, f"Organ {n}", (n * 2, 255 - n * 2, 128),
                             ("91723000", "SCT", "Anatomical Structure"),
                             ("12738006", "SCT", "Brain")) for n in range(1, 101))
    labels = LabelMap.like(liver, lab, segments=segments)
    path = write_seg(labels, tmp_path / "atlas.dcm", source=liver, encoding=encoding)
    assert_valid_dicom(path)
    back = read_seg(path, source=liver)
    assert back.metadata["SegmentationType"] == encoding.upper()
    np.testing.assert_array_equal(back.array, labels.array)
    assert [s.name for s in back.segments] == [f"Organ {n}" for n in range(1, 101)]
    assert back.segment(57).color == pytest.approx((114, 141, 128), abs=1)


def test_unknown_seg_encoding_is_refused(liver, tmp_path):
    labels = ct_labels(liver)
    with pytest.raises(ValueError, match="encoding"):
        write_seg(labels, tmp_path / "x.dcm", source=liver, encoding="fractional")
    assert not (tmp_path / "x.dcm").exists()


def test_without_an_encoding_few_segments_are_binary_and_an_atlas_is_a_label_map(liver,
                                                                                   tmp_path):
    import highdicom as hd

    from medview.dicom.export.seg import BINARY_MAX_SEGMENTS, default_encoding

    for count, want in ((2, "BINARY"), (BINARY_MAX_SEGMENTS, "BINARY"),
                        (BINARY_MAX_SEGMENTS + 1, default_encoding().upper())):
        lab = np.zeros(liver.shape, np.uint8)
        for n in range(1, count + 1):  # one small box per segment along the first row
            lab[:, 10:20, 10 * n:10 * n + 8] = n
        path = write_seg(LabelMap.like(liver, lab), tmp_path / f"s{count}.dcm", source=liver)
        assert hd.seg.segread(path).SegmentationType == want, count
        assert_valid_dicom(path)
