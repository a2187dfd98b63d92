"""Burned-in text: flagged, found by tesseract where it was drawn, masked so OCR finds none."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from dicom_validate import _dciodvfy
from realparts import require_tool

from medview.deid import burned_in
from medview.deid.share import share
from medview.dicom.scan.dicomdir import referenced_files


def _us(privacy_files):
    return next(p for p in privacy_files if p.name == "us.dcm")


def test_flags_us_sc_and_burned_in_yes_but_not_plain_ct(privacy_files):
    flags = {p.name: burned_in.flag_reason(pydicom.dcmread(p, stop_before_pixels=True))
             for p in privacy_files}
    assert flags["us.dcm"] == "Burned In Annotation is YES"
    assert all(v is None for k, v in flags.items() if k != "us.dcm"), flags
    ds = pydicom.dcmread(_us(privacy_files), stop_before_pixels=True)
    ds.BurnedInAnnotation = "NO"
    assert "Ultrasound" in burned_in.flag_reason(ds)   # US is flagged whatever it says
    ds.Modality, ds.SOPClassUID = "XA", "1.2.840.10008.5.1.4.1.1.12.1"
    assert burned_in.flag_reason(ds) is None            # XA that says NO is believed


def test_ocr_finds_the_drawn_text_and_masking_removes_it(privacy_files):
    require_tool("tesseract")
    ds = pydicom.dcmread(_us(privacy_files))
    before = ds.pixel_array.copy()
    frames = burned_in.frames_of(_us(privacy_files))
    assert np.array_equal(frames[0], before)  # the checked decoder gives pydicom's values
    boxes = burned_in.detect(frames)
    # the two lines were drawn at y≈30 and y≈62 (baselines), x from 20: every box is there
    assert len(boxes) >= 3
    assert all(b.y < 70 and b.x >= 15 for b in boxes), boxes
    assert {b.y // 30 for b in boxes} == {0, 1}          # both lines found
    assert burned_in.mask_dataset(ds, boxes, frames) == len(boxes)
    after = ds.pixel_array
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert after[:70].max() == 0                         # the text rows are background now
    assert np.array_equal(after[80:], before[80:])       # the image below is untouched
    assert burned_in.detect(after[None]) == []


def test_share_masks_when_asked_and_lists_what_it_did_not(deid_home, privacy_files, tmp_path):
    require_tool("tesseract")
    us = _us(privacy_files)
    masked = share([us], project="ocr", destination=tmp_path / "masked", mask_burned_in=True)
    assert [m["boxes"] >= 3 for m in masked.masked] == [True] and not masked.not_masked
    written = referenced_files(tmp_path / "masked" / "DICOMDIR")[0]
    out = pydicom.dcmread(written)
    assert burned_in.detect(burned_in.frames_of(written)) == []
    # the masked image, now uncompressed, is as valid as its source was
    require_tool("dciodvfy")
    new = ({ln for ln in _dciodvfy(written) if ln.startswith("Error")}
           - {ln for ln in _dciodvfy(us) if ln.startswith("Error")})
    assert not new, new
    assert "113101" in {c.CodeValue for c in out.DeidentificationMethodCodeSequence}
    plain = share([us], project="ocr", destination=tmp_path / "plain")
    assert not plain.masked and len(plain.not_masked) == 1
    data = json.loads((tmp_path / "plain" / "SHARE-REPORT.json").read_text())
    assert data["burned_in"]["not_masked"][0]["file"].startswith("PT")
    assert any("NOT masked" in line for line in data["needs_review"])
    assert len(burned_in.detect(burned_in.frames_of(
        referenced_files(tmp_path / "plain" / "DICOMDIR")[0]))) >= 3


def _gdcm_abort_copy(data_dir, tmp_path):
    """A real MR slice said to carry burned-in text, as JPEG 2000 labelled YBR_FULL_422: the
    in-process decoders refuse it and GDCM aborts the process (SIGABRT) on it."""
    src = sorted((data_dir / "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag").iterdir())[5]
    ds = pydicom.dcmread(src)
    ds.compress(pydicom.uid.JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.BurnedInAnnotation = "YES"
    out = tmp_path / "aborts-gdcm.dcm"
    ds.save_as(out)
    return out


def test_a_file_whose_decoder_crashes_is_reported_not_masked_and_the_rest_is_masked(
        deid_home, privacy_files, data_dir, tmp_path):
    """Masking decodes the checked way: GDCM runs in the decoder process, so a file that
    aborts it costs that file's masking (listed for review), not the share or the window."""
    require_tool("tesseract")
    from medview.dicom.pixels import _sandbox

    bad = _gdcm_abort_copy(data_dir, tmp_path)
    try:
        report = share([bad, _us(privacy_files)], project="ocr", mask_burned_in=True,
                       destination=tmp_path / "out")
    finally:
        _sandbox.shutdown()
    assert [m["boxes"] >= 3 for m in report.masked] == [True]
    (entry,) = report.not_masked
    assert "cannot be decoded" in entry["why"] and "SIGABRT" in entry["why"], entry
    assert str(bad) not in entry["why"]          # the report travels: no local path in it
    assert report.instances == 2


def test_frames_of_checks_sizes_before_decoding(tmp_path, privacy_files):
    """A file that declares more pixels than it holds is refused with its path and reason."""
    from medview.dicom.errors import PixelDataError

    ds = pydicom.dcmread(_us(privacy_files))
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    ds.Rows = int(ds.Rows) * 50   # declares 50× the pixels the Pixel Data holds
    lying = tmp_path / "lying.dcm"
    ds.save_as(lying)
    with pytest.raises(PixelDataError, match=r"lying\.dcm"):
        burned_in.frames_of(lying)
