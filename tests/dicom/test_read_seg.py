"""SEGs written by other tools (dcmqi, highdicom) → LabelMap on the right slices and segments."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_validate import assert_valid_dicom
from realparts import DATA, require

import medview
from medview.dicom.export.seg import write_seg
from medview.dicom.series.seg import SegReadError, read_seg
from medview.formats.volume_io import read_volume

DCMQI = DATA / "dcmqi_seg" / "data" / "segmentations"
HIGHDICOM = DATA / "highdicom_seg"
HD_CT = HIGHDICOM / "pydicom_CT2_source" / "dicomdirtests" / "77654033" / "CT2"


def _need(path):
    require(path.exists(), f"real SEG test data at {path}")
    return path


@pytest.fixture(scope="module")
def liver_ct():
    return medview.load(_need(DCMQI / "ct-3slice"))


def highdicom_masks(path, source) -> np.ndarray:
    """(z, y, x, segments) as highdicom reads them through the source references."""
    import highdicom as hd

    return hd.seg.segread(path).get_pixels_by_source_instance(
        source_sop_instance_uids=source.metadata["source_sop_instance_uids"],
        combine_segments=False, ignore_spatial_locations=True)


def test_dcmqi_liver_seg_equals_dcmqi_label_map(liver_ct):
    labels = read_seg(_need(DCMQI / "liver.dcm"), source=liver_ct)
    reference = read_volume(DCMQI / "liver_seg.nrrd")  # dcmqi's own conversion
    assert reference.same_grid(liver_ct, atol=1e-3) and labels.same_grid(liver_ct)
    assert reference.array.any()
    np.testing.assert_array_equal(labels.array, reference.array)
    (seg,) = labels.segments
    assert seg.number == 1 and seg.name == "Liver" and seg.type[2] == "Liver"
    # the SEG's own grid (no source given) is the same grid
    own = read_seg(DCMQI / "liver.dcm")
    assert own.same_grid(liver_ct, atol=1e-3)
    np.testing.assert_array_equal(own.array, labels.array)


@pytest.mark.parametrize("size", ["23x38x3", "24x38x3"])
def test_classic_and_multiframe_sources_give_dcmqi_label_map(size):
    folder = _need(DCMQI / size)
    classic = medview.load(folder / "image")
    multiframe = medview.load(folder / "multiframe")
    assert classic.same_grid(multiframe)
    reference = read_volume(folder / "nrrd" / "label.nrrd")
    assert reference.same_grid(classic, atol=1e-3)
    for source in (classic, multiframe):
        labels = read_seg(folder / "seg" / "label.seg", source=source)
        np.testing.assert_array_equal(labels.array, reference.array)


def test_overlapping_segments_are_named_or_resolved(liver_ct):
    path = _need(DCMQI / "partial_overlaps.dcm")
    with pytest.raises(SegReadError, match=r"segments overlap \(1 and 2"):
        read_seg(path, source=liver_ct)
    labels = read_seg(path, source=liver_ct, overlap="last")
    masks = highdicom_masks(path, liver_ct)
    assert masks.shape[-1] == 5 and (masks.sum(-1) > 1).any()
    numbers = np.arange(1, 6)
    expected = np.where(masks.any(-1), (masks * numbers).max(-1), 0)
    np.testing.assert_array_equal(labels.array, expected)
    assert [s.name for s in labels.segments] == ["GREEN", "ORANGE", "PURPLE", "LIGHT_BLUE",
                                                 "DARK_BLUE"]


@pytest.mark.parametrize("name", ["seg_image_ct_binary.dcm", "seg_image_ct_binary_fractional.dcm",
                                  "seg_image_ct_true_fractional.dcm"])
def test_highdicom_binary_and_fractional_segs(name):
    ct = medview.load(_need(HD_CT))  # 4 acquired slices with gaps: resampled at load
    path = _need(HIGHDICOM / "data" / "test_files" / name)
    labels = read_seg(path, source=ct)
    import pydicom

    acquired = [ct.lps_to_index(np.asarray(
        pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient, float))[2]
        for f in ct.metadata["source_files"]]
    ks = [round(float(k)) for k in acquired]
    import highdicom as hd

    seg = hd.seg.segread(path)
    for uid, k in zip(ct.metadata["source_sop_instance_uids"], ks, strict=True):
        plane = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid],
                                                  combine_segments=False)[0, ..., 0]
        np.testing.assert_array_equal(labels.array[k], (plane >= 0.5).astype(np.uint8))
    others = np.setdiff1d(np.arange(ct.shape[0]), ks)
    assert labels.array.any() and not labels.array[others].any()


def test_medview_seg_round_trips_through_read_seg(liver_ct, tmp_path):
    original = read_seg(DCMQI / "liver.dcm", source=liver_ct)
    path = write_seg(original, tmp_path / "again.dcm", algorithm_type="MANUAL")
    assert_valid_dicom(path)
    again = read_seg(path, source=liver_ct)
    np.testing.assert_array_equal(again.array, original.array)
    assert again.segments[0].name == "Liver"
    assert again.segments[0].type == original.segments[0].type
    assert np.abs(np.subtract(again.segments[0].color, original.segments[0].color)).max() <= 1


def test_seg_of_another_series_or_not_a_seg_is_refused(liver_ct):
    sr_seg = _need(DCMQI.parent / "sr-example" / "seg.dcm")  # its PET source is absent
    with pytest.raises(SegReadError, match=r"frame of reference.*another series"):
        read_seg(sr_seg, source=liver_ct)
    own = read_seg(sr_seg)  # on its own grid it still reads
    assert own.shape == (13, 128, 128) and own.array.any()
    with pytest.raises(SegReadError, match="not a DICOM Segmentation"):
        read_seg(DCMQI / "ct-3slice" / "01.dcm")
    with pytest.raises(FileNotFoundError):
        read_seg(DCMQI / "missing.dcm")


def test_a_compressed_seg_reads_as_the_native_one_and_a_crashing_one_is_refused(tmp_path):
    """Compressed SEG frames are decoded the checked way: the same labels as the native file;
    a SEG whose compressed frames are broken is refused with its path and reason."""
    import pydicom
    from pydicom.encaps import encapsulate, generate_fragments
    from pydicom.uid import RLELossless

    ct = medview.load(_need(HD_CT))
    path = _need(HIGHDICOM / "data" / "test_files" / "seg_image_ct_true_fractional.dcm")
    native = read_seg(path, source=ct)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, generate_instance_uid=False)
    rle = tmp_path / "rle.dcm"
    ds.save_as(rle)
    again = read_seg(rle, source=ct)
    assert again.array.any()
    np.testing.assert_array_equal(again.array, native.array)
    ds = pydicom.dcmread(rle)
    frames = [bytearray(f) for f in generate_fragments(ds.PixelData)]
    frames[1][64:] = b"\x7f" * (len(frames[1]) - 64)   # runs that overflow the frame
    ds.PixelData = encapsulate([bytes(f) for f in frames])
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(SegReadError, match=r"bad\.dcm: .*RLE"):
        read_seg(bad, source=ct)
