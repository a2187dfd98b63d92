"""Header scan: real files, the fast parser against pydicom, pixel offsets, hostile input."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from medview.core.progress import Cancelled, Progress
from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.scan.scanner import (
    iter_files,
    scan_file,
    scan_file_pydicom,
    scan_paths,
)


def _pydicom_test_files() -> list[str]:
    """pydicom's bundled test files and pydicom-data's, found on disk (no download)."""
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    roots.append(Path(pydicom.data.__file__).parent / "charset_files")
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return iter_files([r for r in roots if r.is_dir()])


def _outcome(fn, path):
    try:
        return fn(path)
    except UnreadableFileError as exc:
        assert exc.reason, path
        return None


# --------------------------------------------------------------------------- real data


def test_every_real_file_scans_or_has_a_reason(data_dir):
    headers, errors = scan_paths(data_dir, workers=1)
    files = iter_files([data_dir])
    assert len(headers) + len(errors) == len(files)
    assert len(headers) > 200
    for path, reason in errors:
        assert os.path.isfile(path)
        assert reason
    for h in headers:
        assert h.has_pixel_data
        assert h.rows > 0 and h.columns > 0
        assert h.sop_instance_uid and h.series_instance_uid


def test_siemens_mosaic(data_dir):
    h = scan_file(data_dir / "dcm_qa_ts/In/1.dcm")
    assert h.mosaic_count == 35
    assert h.is_mosaic
    assert "MOSAIC" in h.image_type
    assert h.csa_slice_normal is not None
    assert np.isclose(np.linalg.norm(h.csa_slice_normal), 1.0, atol=1e-4)
    assert (h.rows, h.columns) == (384, 384)
    assert h.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert h.pixel_data_offset is not None
    assert h.pixel_data_length == 384 * 384 * 2


def test_all_transfer_syntaxes_give_same_header(data_dir):
    heads = [scan_file(data_dir / f"dcm_qa_ts/In/{i}.dcm") for i in range(1, 10)]
    first = heads[0]
    for h in heads[1:]:
        assert h.mosaic_count == 35
        assert h.image_position == first.image_position
        assert h.series_instance_uid == first.series_instance_uid
        if not h.is_native:
            assert h.pixel_data_offset is None and h.pixel_data_length == -1


def test_ct_rescale(data_dir):
    files = sorted((data_dir / "kits_dupe_positions").glob("*.dcm"))
    assert files
    for f in files:
        h = scan_file(f)
        assert h.modality == "CT"
        assert h.rescale_intercept == -1024.0
        assert h.rescale_slope == 1.0
        assert h.rescale_type == "HU"
        assert h.window_center is not None


def test_philips_dirfile_is_an_error(data_dir):
    folder = data_dir / "dcm_qa_ct/In/Philips"
    dirfiles = [p for p in iter_files([folder]) if Path(p).name.upper() == "DIRFILE"]
    assert dirfiles
    _, errors = scan_paths(folder)
    reasons = dict(errors)
    for p in dirfiles:
        # Philips DIRFILEs are directory records, not images
        assert "no pixel data" in reasons[p] or "not a DICOM file" in reasons[p]


def test_enhanced_multiframe_frames(data_dir):
    files = iter_files([data_dir / "dcmqi_seg/data/segmentations/23x38x3/multiframe"])
    h = scan_file(files[0])
    assert h.number_of_frames == 3
    assert len(h.frames) == 3
    for fr in h.frames:
        assert fr.image_position is not None
        assert fr.image_orientation is not None
        assert fr.pixel_spacing is not None
    zs = sorted(fr.image_position[2] for fr in h.frames)
    assert zs[0] < zs[-1]


# --------------------------------------------------------------------------- equivalence


def _all_files(data_dir) -> list[str]:
    return iter_files([data_dir]) + _pydicom_test_files()


def test_fast_parser_equals_pydicom_on_every_file(data_dir):
    files = _all_files(data_dir)
    assert len(files) > 300
    compared = 0
    for f in files:
        fast = _outcome(scan_file, f)
        ref = _outcome(scan_file_pydicom, f)
        assert (fast is None) == (ref is None), f
        if fast is not None:
            assert fast == ref, f
            compared += 1
    assert compared > 300


# --------------------------------------------------------------------------- pixel offset


def _stored_pixels(h: InstanceHeader) -> np.ndarray:
    bytes_per = h.bits_allocated // 8
    dtype = {1: "u1", 2: "u2", 4: "u4"}[bytes_per]
    dtype = ("<" if h.is_little_endian else ">") + dtype
    n = h.rows * h.columns * h.samples_per_pixel * h.number_of_frames
    return np.fromfile(h.path, dtype=dtype, count=n, offset=h.pixel_data_offset)


def _masked(a: np.ndarray, bits_stored: int) -> np.ndarray:
    return a.astype(np.int64).ravel() & ((1 << bits_stored) - 1)


def test_pixel_data_offset_reads_the_pixels(data_dir):
    checked = 0
    for f in _all_files(data_dir):
        h = _outcome(scan_file, f)
        if h is None or h.pixel_data_offset is None or h.bits_allocated not in (8, 16, 32):
            continue
        if h.samples_per_pixel != 1 or h.pixel_data_length < h.rows * h.columns:
            continue
        if not h.is_little_endian and h.bits_allocated == 8:
            continue  # 8-bit big endian OW needs word swapping: the pixel reader's business
        ds = pydicom.dcmread(f, force=True)
        try:
            expected = ds.pixel_array
        except Exception:  # files pydicom itself cannot decode are skipped
            continue
        got = _stored_pixels(h)
        assert got.size == expected.size, f
        np.testing.assert_array_equal(
            _masked(got, h.bits_stored), _masked(expected, h.bits_stored), err_msg=f
        )
        checked += 1
    assert checked > 150


# --------------------------------------------------------------------------- hostile input


def _write_ct(path: Path, *, pixels: bool = True, implicit: bool = False) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Test^Patient"
    ds.PatientID = "P1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows = 16
    ds.Columns = 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if pixels:
        ds.PixelData = np.arange(256, dtype="<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_synthetic_file_roundtrip(tmp_path):
    for implicit in (False, True):
        f = _write_ct(tmp_path / f"ct{implicit}.dcm", implicit=implicit)
        h = scan_file(f)
        assert h.patient_name == "Test^Patient"
        assert h.rescale_slope == 1.0 and h.rescale_intercept == 0.0
        assert h.pixel_data_length == 512
        got = np.fromfile(f, "<i2", count=256, offset=h.pixel_data_offset)
        np.testing.assert_array_equal(got, np.arange(256))
        assert h == scan_file_pydicom(f)


def test_truncated_file(tmp_path):
    f = _write_ct(tmp_path / "ct.dcm")
    data = f.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-100])
    with pytest.raises(UnreadableFileError,
                       match=rf"truncated: the file ends at byte {len(data) - 100:,} inside "
                             r"element \(7FE0,0010\) PixelData, which declares"):
        scan_file(cut)
    with pytest.raises(UnreadableFileError, match="truncated"):
        scan_file_pydicom(cut)


def test_random_bytes(tmp_path):
    f = tmp_path / "noise.dcm"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableFileError, match="not a DICOM file"):
        scan_file(f)


def test_empty_file(tmp_path):
    f = tmp_path / "empty.dcm"
    f.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty"):
        scan_file(f)


def test_no_pixel_data(tmp_path):
    f = _write_ct(tmp_path / "nopix.dcm", pixels=False)
    # an image without its pixels is what a file cut before them looks like (issue 12)
    with pytest.raises(UnreadableFileError,
                       match=rf"truncated or incomplete: the file ends at byte "
                             rf"{f.stat().st_size:,} without the Pixel Data element its "
                             r"16×16 image \(CT Image Storage\) needs"):
        scan_file(f)


def test_huge_declared_length_errors_fast(tmp_path):
    f = _write_ct(tmp_path / "ct.dcm")
    data = bytearray(f.read_bytes())
    # StudyInstanceUID's 2-byte length can't claim 2 GB; use a long-VR element: rewrite the
    # pixel data header (OW, 4-byte length) and, separately, insert a huge UN element.
    i = data.find(b"\xe0\x7f\x10\x00OW")
    struct.pack_into("<I", data, i + 8, 0x7FFFFFF0)
    big = tmp_path / "big_pixels.dcm"
    big.write_bytes(bytes(data))
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFileError, match="declares 2,147,483,632 bytes"):
            scan_file(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.5
    assert peak < 4 * 1024 * 1024
    # an element in the header that claims 2 GB
    data = bytearray(f.read_bytes())
    j = data.find(b"\x10\x00\x10\x00PN")
    huge = b"\x09\x00\x10\x10UN\x00\x00" + struct.pack("<I", 0x80000000)
    bad = tmp_path / "big_header.dcm"
    bad.write_bytes(bytes(data[:j]) + huge + bytes(data[j:]))
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableFileError, match="declares 2,147,483,648 bytes"):
            scan_file(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    with pytest.raises(UnreadableFileError, match="truncated"):
        scan_file_pydicom(bad)


def test_deep_nesting_is_bounded(tmp_path):
    f = _write_ct(tmp_path / "ct.dcm")
    data = bytearray(f.read_bytes())
    j = data.find(b"\x10\x00\x10\x00PN")
    # 40 nested undefined-length sequences inside an unknown private tag
    nest = b""
    for _ in range(40):
        nest += b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    for _ in range(40):
        nest += b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    bad = tmp_path / "deep.dcm"
    bad.write_bytes(bytes(data[:j]) + nest + bytes(data[j:]))
    with pytest.raises(UnreadableFileError, match="nested"):
        scan_file(bad)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableFileError, match="cannot read"):
        scan_file(tmp_path / "nope.dcm")


# --------------------------------------------------------------------------- scan_paths


def test_scan_paths_skips_hidden_and_reports_errors(tmp_path):
    _write_ct(tmp_path / "a.dcm")
    (tmp_path / "sub").mkdir()
    _write_ct(tmp_path / "sub" / "b.dcm")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / ".hidden").mkdir()
    _write_ct(tmp_path / ".hidden" / "c.dcm")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "DICOMDIR").write_bytes(b"an index of a medium, not an image")
    headers, errors = scan_paths([tmp_path])
    assert sorted(Path(h.path).name for h in headers) == ["a.dcm", "b.dcm"]
    assert [Path(p).name for p, _ in errors] == ["notes.txt"]


def test_scan_paths_pool_equals_serial(data_dir):
    folder = data_dir / "dcm_qa_ct"
    serial = scan_paths(folder, workers=1)
    pooled = scan_paths(folder, workers=2)
    assert serial == pooled


def test_scan_paths_cancel(data_dir):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        scan_paths(data_dir, progress=progress)


def test_mutated_files_never_crash(data_dir, tmp_path):
    """Flipped bytes, cut files and absurd lengths: a reason every time, never an exception."""
    import random

    rng = random.Random(1234)
    sources = [data_dir / f"dcm_qa_ts/In/{i}.dcm" for i in (1, 2, 3, 5)]
    sources += iter_files([data_dir / "dcmqi_seg/data/segmentations/23x38x3/multiframe"])
    blobs = [Path(s).read_bytes() for s in sources]
    target = tmp_path / "mutant.dcm"
    for _ in range(300):
        data = bytearray(rng.choice(blobs))
        header = min(len(data), 100_000)
        kind = rng.choice(["flip", "cut", "length"])
        if kind == "cut":
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 12)):
                i = rng.randrange(header - 4)
                if kind == "flip":
                    data[i] = rng.randrange(256)
                else:
                    data[i : i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\xf0\xff\xff\x7f"])
        target.write_bytes(bytes(data))
        for fn in (scan_file, scan_file_pydicom):
            t0 = time.perf_counter()
            _outcome(fn, target)  # UnreadableFileError or a header; anything else fails
            assert time.perf_counter() - t0 < 2.0
