"""Burned-in text: flagged, found by tesseract where it was drawn, masked so OCR finds none."""

from __future__ import annotations

import json

import numpy as np
import pydicom
from dicom_validate import _dciodvfy
from realparts import require_tool

from medview.deid import burned_in
from medview.deid.share import share
from medview.dicom.dicomdir import referenced_files


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
    boxes = burned_in.detect(ds)
    # the two lines were drawn at y≈30 and y≈62 (baselines), x from 20: every box is there
    assert len(boxes) >= 3
    assert all(b.y < 70 and b.x >= 15 for b in boxes), boxes
    assert {b.y // 30 for b in boxes} == {0, 1}          # both lines found
    assert burned_in.mask_dataset(ds, boxes) == len(boxes)
    after = ds.pixel_array
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert after[:70].max() == 0                         # the text rows are background now
    assert np.array_equal(after[80:], before[80:])       # the image below is untouched
    assert burned_in.detect(ds) == []


def test_share_masks_when_asked_and_lists_what_it_did_not(deid_home, privacy_files, tmp_path):
    require_tool("tesseract")
    us = _us(privacy_files)
    masked = share([us], project="ocr", destination=tmp_path / "masked", mask_burned_in=True)
    assert [m["boxes"] >= 3 for m in masked.masked] == [True] and not masked.not_masked
    written = referenced_files(tmp_path / "masked" / "DICOMDIR")[0]
    out = pydicom.dcmread(written)
    assert burned_in.detect(out) == []
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
    assert len(burned_in.detect(pydicom.dcmread(
        referenced_files(tmp_path / "plain" / "DICOMDIR")[0]))) >= 3
