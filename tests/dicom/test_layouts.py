"""Header layouts (medview.dicom.scan._skeleton): the next file of a series cut up in one go.

A file read through a remembered layout must give exactly the header a full parse gives, and
any file that differs in what the walk depends on (a length, a tag, the transfer syntax, a
truncated pixel element) must be parsed in full, with the full parse's errors.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from realparts import DATA, require

from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan import _skeleton
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.scan.scanner import iter_files, scan_file, scan_file_pydicom

SERIES = [
    DATA / "kits_dupe_positions",
    DATA / "dcm_qa_ct" / "In" / "GE",
    DATA / "dcm_qa_decubitus" / "In" / "HFS",
    DATA / "dcmqi_seg" / "data" / "segmentations" / "24x38x3",
    DATA / "dcm_qa_ts",
    DATA / "highdicom_seg",
]


@pytest.fixture(autouse=True)
def _data():
    require((DATA / "kits_dupe_positions").is_dir(), f"real DICOM data in {DATA}")


def _full(path) -> InstanceHeader:
    """The header of a parse without layouts."""
    _skeleton.forget_all()
    try:
        return scan_file(path)
    finally:
        _skeleton.forget_all()


def _outcome(fn, path):
    try:
        return fn(path)
    except UnreadableFileError as exc:
        return ("error", exc.reason)


@pytest.mark.parametrize("folder", SERIES, ids=lambda p: p.name)
def test_a_series_read_through_layouts_gives_the_full_parse(folder: Path):
    files = [p for p in iter_files([folder]) if not p.endswith((".txt", ".json", ".nii"))]
    assert len(files) >= 3, folder
    expected = [_outcome(_full, p) for p in files]
    _skeleton.forget_all()
    hits = 0
    for p, want in zip(files, expected, strict=True):
        with open(p, "rb") as f:
            head = f.read(64 * 1024)
        hits += _skeleton.find(head, Path(p).stat().st_size) is not None
        assert _outcome(scan_file, p) == want, p
    _skeleton.forget_all()
    if folder.name in ("kits_dupe_positions", "GE"):
        # fixed-width values: most files of these real CT series share a layout (values
        # of another length, as in the Siemens MR here, make a new one: parsed in full)
        assert hits >= len(files) // 2, (hits, len(files))


def test_layout_headers_equal_pydicoms(tmp_path):
    files = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))
    _skeleton.forget_all()
    for p in files:
        got, ref = scan_file(p), scan_file_pydicom(p)
        assert got == ref, p
    assert _skeleton._LAYOUTS, "no layout was remembered for a real CT series"
    _skeleton.forget_all()


def _element(data: bytes, tag: int) -> int:
    """Byte offset of the explicit VR LE element ``tag`` (first match of its tag bytes)."""
    raw = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    at = data.find(raw, 132)
    assert at > 0
    return at


def test_a_changed_length_or_tag_is_parsed_in_full(tmp_path):
    src = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))[0]
    data = src.read_bytes()
    _skeleton.forget_all()
    scan_file(src)  # remembers src's layout

    # a longer SeriesDescription shifts every element after it
    at = _element(data, 0x0008103E)
    (length,) = struct.unpack_from("<H", data, at + 6)
    longer = bytearray(data[: at + 6]) + struct.pack("<H", length + 8) + \
        data[at + 8 : at + 8 + length] + b"EXTRA   " + data[at + 8 + length :]
    moved = tmp_path / "longer.dcm"
    moved.write_bytes(bytes(longer))
    assert _skeleton.find(bytes(longer[:65536]), len(longer)) is None
    assert scan_file(moved) == _full(moved)
    assert scan_file(moved).series_description.endswith("EXTRA")

    # the same bytes with one tag renamed (Modality -> a private-free unknown tag)
    scan_file(src)
    renamed = bytearray(data)
    at = _element(data, 0x00080060)
    renamed[at + 2 : at + 4] = struct.pack("<H", 0x0061)
    other = tmp_path / "renamed.dcm"
    other.write_bytes(bytes(renamed))
    assert _skeleton.find(bytes(renamed[:65536]), len(renamed)) is None
    h = scan_file(other)
    assert h == _full(other) and h.modality == ""
    _skeleton.forget_all()


def test_a_truncated_file_of_a_known_layout_reports_the_truncation(tmp_path):
    files = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(files[0].read_bytes()[:-1000])
    want = _outcome(_full, cut)
    assert want[0] == "error" and "truncated" in want[1]
    _skeleton.forget_all()
    scan_file(files[0])
    assert _skeleton._LAYOUTS
    assert _outcome(scan_file, cut) == want
    _skeleton.forget_all()


def test_an_implicit_copy_is_not_read_with_the_explicit_layout(tmp_path):
    """Same elements, other transfer syntax: the compared spans differ, full parse."""
    import pydicom

    src = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))[0]
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    out = tmp_path / "implicit.dcm"
    ds.save_as(out, enforce_file_format=True)
    _skeleton.forget_all()
    scan_file(src)
    h = scan_file(out)
    assert h.transfer_syntax_uid == pydicom.uid.ImplicitVRLittleEndian
    assert h == _full(out)
    _skeleton.forget_all()


def test_mutated_headers_read_through_a_layout_equal_the_full_parse(tmp_path):
    """Random bytes changed anywhere in the header of a file whose layout is remembered:
    every outcome (header or error) is the one a parse without layouts gives."""
    import random

    src = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))[0]
    data = src.read_bytes()
    _skeleton.forget_all()
    header_end = scan_file(src).pixel_data_offset
    rng = random.Random(18)
    path = tmp_path / "mutant.dcm"
    matched = 0
    for _ in range(300):
        mutant = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            mutant[rng.randrange(132, header_end)] = rng.randrange(256)
        path.write_bytes(bytes(mutant))
        want = _outcome(_full, path)
        _skeleton.forget_all()
        scan_file(src)  # the original's layout is the one remembered
        matched += _skeleton.find(bytes(mutant[:65536]), len(mutant)) is not None
        assert _outcome(scan_file, path) == want
    # most changes hit values (read through the layout), some hit structure (parsed in full)
    assert 30 < matched < 300, matched
    _skeleton.forget_all()
