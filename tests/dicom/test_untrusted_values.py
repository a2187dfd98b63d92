"""Bad VRs, invalid values and duplicate SOP Instance UIDs are warned about, naming tag and file.

Payloads, all from real files:
- pydicom's badVR.dcm (NumberOfFrames '1A');
- slices of the real decubitus MR (explicit VR little endian) patched byte for byte: one whose
  Slice Thickness is declared FD instead of DS (same header layout, an unusable value), one
  whose Slice Thickness reads '4x';
- a slice re-written with the SOP Instance UID of another slice of the series.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from realparts import require

import medview
from medview.dicom.catalog.db import Catalog
from medview.dicom.scan.scanner import scan_file, scan_file_pydicom

_THICKNESS_DS = b"\x18\x00\x50\x00DS"


@pytest.fixture
def mr_files(data_dir):
    folder = data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag"
    require(folder.is_dir(), f"real MR at {folder}")
    return sorted(folder.iterdir())


def _patched(src, dst, old: bytes, new: bytes) -> None:
    raw = src.read_bytes()
    assert raw.count(old) == 1, f"{src}: {old!r} not found exactly once"
    dst.write_bytes(raw.replace(old, new))


@pytest.fixture
def damaged(mr_files, tmp_path):
    out = tmp_path / "mr"
    out.mkdir()
    for f in mr_files[:6]:
        shutil.copy(f, out / f.name)
    wrong_vr, bad_value = out / mr_files[1].name, out / mr_files[2].name
    # the element header keeps its length: only the VR letters change
    _patched(mr_files[1], wrong_vr, _THICKNESS_DS, b"\x18\x00\x50\x00FD")
    raw = mr_files[2].read_bytes()
    at = raw.index(_THICKNESS_DS)
    length = int.from_bytes(raw[at + 6:at + 8], "little")
    value = raw[at + 8:at + 8 + length]
    assert value.strip() == b"4"  # the real value, two bytes
    _patched(mr_files[2], bad_value, _THICKNESS_DS + raw[at + 6:at + 8] + value,
             _THICKNESS_DS + raw[at + 6:at + 8] + b"4x")
    return out, wrong_vr, bad_value


@pytest.mark.parametrize("scan", [scan_file, scan_file_pydicom])
def test_scan_notes_the_tag(damaged, scan):
    _, wrong_vr, bad_value = damaged
    (note,) = scan(wrong_vr).warnings
    assert note.startswith("(0018,0050) SliceThickness: VR FD where DS is defined")
    (note,) = scan(bad_value).warnings
    assert note == "(0018,0050) SliceThickness: invalid value '4x' for VR DS; ignored"


def test_real_bad_value_file_is_noted():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("badVR.dcm", download=False)
    require(path is not None, "pydicom test file badVR.dcm")
    vol = medview.load(path)
    assert any("badVR.dcm: (0028,0008) NumberOfFrames: invalid value '1A'" in w
               for w in vol.warnings)


def test_series_warnings_name_file_and_tag(damaged, tmp_path):
    folder, wrong_vr, bad_value = damaged
    vol = medview.load(folder)
    assert vol.shape[0] == 6  # the slices still load
    assert any(w.startswith(f"{wrong_vr.name}: (0018,0050) SliceThickness: VR FD")
               for w in vol.warnings)
    assert any(w.startswith(f"{bad_value.name}: (0018,0050) SliceThickness: invalid value")
               for w in vol.warnings)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([folder])
        assert sorted(p for p, _ in report.warnings) == sorted([str(wrong_vr), str(bad_value)])
        # and the notes survive the catalog: loading by UID warns the same way
        again = medview.load(vol.metadata["SeriesInstanceUID"], catalog=cat)
        assert [w for w in again.warnings if "SliceThickness" in w] == \
            [w for w in vol.warnings if "SliceThickness" in w]


def test_duplicate_sop_instance_uid_is_warned_and_one_kept(mr_files, tmp_path):
    out = tmp_path / "mr"
    out.mkdir()
    for f in mr_files[:6]:
        shutil.copy(f, out / f.name)
    # another slice of the series (a different position) that claims slice 2's UID
    ds = pydicom.dcmread(mr_files[8])
    taken = pydicom.dcmread(mr_files[1], stop_before_pixels=True).SOPInstanceUID
    ds.SOPInstanceUID = taken
    ds.file_meta.MediaStorageSOPInstanceUID = taken
    ds.save_as(out / "zz_reused_uid.dcm")

    vol = medview.load(out)
    assert vol.shape[0] == 6  # not 7 (and no gap: the copy was left out, not the original)
    (warning,) = [w for w in vol.warnings if "SOP Instance UID" in w]
    assert taken in warning
    assert mr_files[1].name in warning and "zz_reused_uid.dcm" in warning
    assert warning.endswith(f"kept {mr_files[1].name}")
    assert "zz_reused_uid.dcm" not in " ".join(vol.metadata["source_files"])
    assert len(set(vol.metadata["source_sop_instance_uids"])) == 6


@pytest.mark.parametrize("iop", ["0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0"])
def test_degenerate_orientation_is_ignored_with_a_warning(mr_files, tmp_path, iop):
    # fuzz finding F2: a zero or collinear ImageOrientationPatient made a singular direction
    # and a bare ValueError out of medview.load
    out = tmp_path / "mr"
    out.mkdir()
    for f in mr_files[:5]:
        shutil.copy(f, out / f.name)
    for f in mr_files[:5]:
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = iop.split("\\")
        ds.save_as(out / f.name)
    note = scan_file(out / mr_files[0].name).warnings
    assert len(note) == 1 and note[0].startswith(
        f"(0020,0037) ImageOrientationPatient: invalid value '{iop}'")
    vol = medview.load(out)  # no geometry, but the images
    assert vol.shape[0] == 5
    assert np.allclose(vol.direction, np.eye(3))
    assert any(f"{mr_files[0].name}: (0020,0037) ImageOrientationPatient" in w
               for w in vol.warnings)
    assert any("no patient geometry" in w for w in vol.warnings)
