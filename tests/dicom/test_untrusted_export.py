"""Polyglot preambles and invalid UIDs: flagged on import and load, never exported.

Payloads, built from the real 3-slice GE liver CT of dcmqi:
- the CVE-2019-11687 polyglot: each slice's 128-byte preamble replaced by the first 128 bytes
  of a real executable on this machine (the Python interpreter's ELF header) or by a PE/DOS
  header ('MZ' … 'PE\\0\\0', as Windows executables start);
- invalid UIDs: StudyInstanceUID '../../x', FrameOfReferenceUID with a leading-zero component,
  a SOP Instance UID of 70 characters and one with letters.
The exports (derived series, SEG, Secondary Capture) must pass dciodvfy, hold no invalid UID,
start with 128 zero bytes, and replace the same invalid UID by the same valid one.
"""

from __future__ import annotations

import struct
import sys

import numpy as np
import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import require

import medview
from medview.core.fusion.blend import blend_colour
from medview.core.labelmap import LabelMap, Segment
from medview.dicom.catalog.db import Catalog
from medview.dicom.export._common import InvalidUIDWarning
from medview.dicom.export._uids import is_valid_uid, replacement_uid
from medview.dicom.export.secondary_capture import write_rgb_capture
from medview.dicom.export.seg import write_seg
from medview.dicom.export.series import write_derived_series

LIVER = ("dcmqi_seg", "data", "segmentations", "ct-3slice")
LIVER_SEGMENT = Segment(1, "Liver", (200, 120, 100), ("91723000", "SCT", "Anatomical Structure"),
                        ("10200004", "SCT", "Liver"))


def _liver(data_dir):
    folder = data_dir.joinpath(*LIVER)
    require(folder.is_dir(), f"real CT at {folder}")
    return sorted(folder.iterdir())


def _elf_header() -> bytes:
    with open(sys.executable, "rb") as f:
        head = f.read(128)
    assert head.startswith(b"\x7fELF")  # a real executable's header
    return head


def _pe_header() -> bytes:
    # DOS stub header with e_lfanew pointing at a PE signature inside the preamble
    head = bytearray(128)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    return bytes(head)


@pytest.fixture
def polyglots(data_dir, tmp_path):
    out = tmp_path / "polyglot"
    out.mkdir()
    for k, f in enumerate(_liver(data_dir)):
        ds = pydicom.dcmread(f)
        ds.preamble = _elf_header() if k == 0 else _pe_header()
        ds.save_as(out / f.name)
    assert (out / "01.dcm").read_bytes()[:4] == b"\x7fELF"
    return out


def _all_uids(ds) -> list[str]:
    found: list[str] = []

    def visit(_, elem):
        if elem.VR == "UI" and elem.value:
            found.extend(str(v) for v in (elem.value if elem.VM > 1 else [elem.value]))

    ds.walk(visit)
    ds.file_meta.walk(visit)
    return found


def _exports(vol, tmp_path) -> list:
    labels = np.zeros(vol.shape, np.uint8)
    labels[(vol.array > 40) & (vol.array < 200)] = 1
    seg = write_seg(LabelMap.like(vol, labels, segments=(LIVER_SEGMENT,)), tmp_path / "seg.dcm",
                    source=vol)
    derived = write_derived_series(vol, tmp_path / "derived", source=vol)
    rgb = blend_colour(vol, vol, colormap="hot", opacity=0.4)
    sc = write_rgb_capture(rgb, tmp_path / "sc.dcm", source=vol)
    return [seg, *derived, sc]


def test_polyglot_is_flagged_on_import_and_load(polyglots, tmp_path):
    vol = medview.load(polyglots)
    flagged = [w for w in vol.warnings if "CVE-2019-11687" in w]
    assert len(flagged) == 3
    assert any(w.startswith("01.dcm: ") and "ELF" in w for w in flagged)
    assert any(w.startswith("02.dcm: ") and "Windows PE" in w for w in flagged)
    with Catalog(tmp_path / "c.sqlite") as cat:
        report = cat.index([polyglots])
        assert report.added == 3
        assert len([w for _, w in report.warnings if "CVE-2019-11687" in w]) == 3


def test_polyglot_preamble_is_never_exported(polyglots, tmp_path):
    vol = medview.load(polyglots)
    for path in _exports(vol, tmp_path):
        with open(path, "rb") as f:
            head = f.read(132)
        assert head == bytes(128) + b"DICM", path
        assert_valid_dicom(path)


@pytest.fixture
def bad_uids(data_dir, tmp_path):
    out = tmp_path / "bad_uids"
    out.mkdir()
    files = _liver(data_dir)
    sop = ["1.2.3." + "9" * 66, "1.2.abc.4", None]  # 71 characters; letters; a valid one
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = "../../x"
        ds.FrameOfReferenceUID = "1.2.03.4"  # a leading zero
        if sop[k] is not None:
            ds.SOPInstanceUID = sop[k]
            ds.file_meta.MediaStorageSOPInstanceUID = sop[k]
        ds.save_as(out / f.name, enforce_file_format=False)
    return out, [s for s in sop if s]


def test_invalid_uids_are_replaced_in_every_export(bad_uids, tmp_path):
    folder, bad_sops = bad_uids
    vol = medview.load(folder)
    assert vol.metadata["StudyInstanceUID"] == "../../x"  # loaded as it is
    with pytest.warns(InvalidUIDWarning, match=r"StudyInstanceUID '\.\./\.\./x'") as caught:
        paths = _exports(vol, tmp_path)
    assert any("SOPInstanceUID '1.2.abc.4'" in str(w.message) for w in caught)
    study = replacement_uid("../../x")
    frame = replacement_uid("1.2.03.4")
    references = set()
    for path in paths:
        ds = pydicom.dcmread(path)
        uids = _all_uids(ds)
        assert uids and all(is_valid_uid(u) for u in uids), (path, uids)
        assert "../../x" not in uids and not set(bad_sops) & set(uids)
        # the same invalid UID became the same valid one in every object
        assert ds.StudyInstanceUID == study
        assert ds.get("FrameOfReferenceUID", frame) == frame
        for item in [*ds.get("SourceImageSequence", []),
                     *ds.get("ReferencedSeriesSequence", [])]:
            for ref in item.get("ReferencedInstanceSequence", [item]):
                references.add(str(ref.ReferencedSOPInstanceUID))
        assert_valid_dicom(path)
    assert {replacement_uid(s) for s in bad_sops} <= references
