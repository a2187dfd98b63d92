"""One bad slice costs one slice (issue 13): the rest of a real series loads, the bad one is a
stand-in interpolated from its neighbours, named in the warnings and in
``metadata["made_up_slices"]``, and no decoder can take the process down.

Every payload is built here from a real series (dcm_qa_decubitus, 35 sagittal MR slices) or
pydicom's test files; each test breaks one slice in one way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless

import medview
from medview.dicom.errors import PixelDataError, SeriesError
from medview.dicom.pixels import _sandbox
from medview.dicom.pixels.decoding import decode
from medview.dicom.scan.scanner import scan_file
from medview.dicom.series.loading import find_series
from medview.dicom.series.progressive import open_progressive

SERIES = "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference(data_dir):
    """The intact series as medview loads it."""
    vol = medview.load(data_dir / SERIES)
    assert vol.shape == (35, 256, 256) and vol.warnings == ()
    return vol


@pytest.fixture(autouse=True)
def _no_decoder_process_left():
    yield
    _sandbox.shutdown()


def _copy(data_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "series"
    shutil.copytree(data_dir / SERIES, folder)
    return folder


def _file_at(reference, z: int, folder: Path) -> Path:
    """The copy of the file that gives slice ``z`` of the reference."""
    return folder / Path(reference.metadata["source_files"][z]).name


def _assert_rest_loads(vol, reference, z: int, name: str, reason: str) -> None:
    """Every other slice as in the intact series; slice z interpolated; the file named."""
    assert vol.shape == reference.shape
    assert vol.spacing == pytest.approx(reference.spacing, abs=1e-4)
    np.testing.assert_allclose(vol.origin, reference.origin, atol=1e-4)
    keep = np.arange(vol.shape[0]) != z
    np.testing.assert_array_equal(vol.array[keep], reference.array[keep])
    mid = (reference.array[z - 1].astype(np.float32) + reference.array[z + 1]) / 2
    # linear interpolation halfway (±1 where rounding meets a .5 from float weights)
    assert np.abs(vol.array[z].astype(np.float32) - mid).max() <= 1.0
    entries = vol.metadata["made_up_slices"]
    assert [e[0] for e in entries] == [z], entries
    assert entries[0][1].startswith(f"unreadable file {name}: "), entries
    assert reason in entries[0][1], entries
    assert any(name in w and reason in w for w in vol.warnings), vol.warnings


def _j2k(ds: pydicom.Dataset) -> None:
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")


# --------------------------------------------------------------------------------------------
# decoders that crash: a GDCM abort, a Rust panic
# --------------------------------------------------------------------------------------------
def _gdcm_abort_slice(reference, folder: Path, z: int) -> Path:
    """A JPEG 2000 slice labelled YBR_FULL_422: the in-process plugins refuse it and GDCM
    aborts the process (SIGABRT) on it."""
    f = _file_at(reference, z, folder)
    ds = pydicom.dcmread(f)
    _j2k(ds)
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.save_as(f)
    return f


def test_gdcm_abort_costs_one_slice_in_process(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _gdcm_abort_slice(reference, folder, 12)
    vol = medview.load(folder)
    _assert_rest_loads(vol, reference, 12, f.name, "killed by SIGABRT")


def test_gdcm_abort_in_a_subprocess_load_and_convert_exit_0(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _gdcm_abort_slice(reference, folder, 20)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = ("import sys, medview\n"
              "v = medview.load(sys.argv[1])\n"
              "print(v.shape, v.metadata['made_up_slices'][0][0])\n")
    run = subprocess.run([sys.executable, "-c", script, str(folder)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert run.stdout.strip() == "(35, 256, 256) 20"
    out = tmp_path / "out.nii.gz"
    run = subprocess.run([sys.executable, "-m", "medview.cli", "convert", str(folder), str(out)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert f.name in run.stdout + run.stderr  # the warning names the file
    import SimpleITK as sitk

    img = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert img.shape[0] == 35 and img.size == reference.array.size


def _panicking_rle(tmp_path: Path) -> Path:
    """pydicom's MR_small_RLE.dcm with its second segment's offset moved from 1948 to 1091:
    pydicom's RLE decoder refuses it, and pylibjpeg-rle panics (pyo3_runtime.PanicException,
    a BaseException that ``except Exception`` does not catch)."""
    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    assert frame[8:10] == (1948).to_bytes(2, "little")
    frame[8:10] = (1091).to_bytes(2, "little")
    ds.PixelData = encapsulate([bytes(frame)])
    out = tmp_path / "panic.dcm"
    ds.save_as(out)
    return out


def test_rle_decoder_panic_is_a_pixel_data_error(tmp_path):
    h = scan_file(_panicking_rle(tmp_path))
    with pytest.raises(PixelDataError) as err:
        decode(h)
    assert "pydicom: RuntimeError" in str(err.value)
    assert "pylibjpeg: PanicException: index out of bounds" in str(err.value)
    assert str(err.value).startswith(f"{h.path}: decoding RLE Lossless (1.2.840.10008.1.2.5)")


# --------------------------------------------------------------------------------------------
# slices that fail to decode
# --------------------------------------------------------------------------------------------
def test_unsupported_transfer_syntax_on_one_slice(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 7, folder)
    _relabel_jpeg_xl(f)
    assert scan_file(f).transfer_syntax_uid == "1.2.840.10008.1.2.4.110"
    vol = medview.load(folder)
    _assert_rest_loads(vol, reference, 7, f.name,
                       "transfer syntax JPEG XL Lossless (1.2.840.10008.1.2.4.110) has no "
                       "decoder here")


def test_one_corrupt_jpeg2000_frame(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 25, folder)
    ds = pydicom.dcmread(f)
    _j2k(ds)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:300]])  # the codestream stops inside its first tile
    ds.save_as(f)
    vol = medview.load(folder)
    _assert_rest_loads(vol, reference, 25, f.name, "JPEG 2000")


def test_a_series_of_jpeg2000_slices_loads_without_the_decoder_process(data_dir, tmp_path,
                                                                        reference):
    folder = _copy(data_dir, tmp_path)
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        _j2k(ds)
        ds.save_as(f)
    vol = medview.load(folder)
    np.testing.assert_array_equal(vol.array, reference.array)
    assert "made_up_slices" not in vol.metadata
    assert _sandbox._worker is None  # decoded in-process: no process hop per slice


def test_progressive_loading_stands_in_for_an_unreadable_first_slice(data_dir, tmp_path,
                                                                      reference):
    folder = _copy(data_dir, tmp_path)
    f = _gdcm_abort_slice(reference, folder, 17)  # the middle slice, read first
    load = open_progressive(folder)
    assert load.progressive
    assert load.read_first() in (16, 18)  # the nearest readable slice is shown first
    list(load.fill())
    assert [(x.k, Path(x.path).name) for x in load.failures] == [(17, f.name)]
    _assert_rest_loads(load.result(), reference, 17, f.name, "killed by SIGABRT")


def test_no_readable_slice_is_an_error_naming_the_files(data_dir, tmp_path, reference):
    folder = tmp_path / "two"
    folder.mkdir()
    for z in (3, 4):
        shutil.copy(reference.metadata["source_files"][z], folder)
        _gdcm_abort_slice(reference, folder, z)
    with pytest.raises(PixelDataError, match=r"none of the 2 slice\(s\) of the stack could be "
                                             r"read: .*killed by SIGABRT"):
        medview.load(folder)


# --------------------------------------------------------------------------------------------
# headers that lie: set aside before planning, a missing slice
# --------------------------------------------------------------------------------------------
def _edit(f: Path, **values) -> None:
    ds = pydicom.dcmread(f)
    for k, v in values.items():
        setattr(ds, k, v)
    ds.save_as(f)


@pytest.mark.parametrize(("values", "reason"), [
    ({"SamplesPerPixel": 4}, "Samples per Pixel 4 is not supported"),
    ({"BitsAllocated": 24}, "Bits Allocated 24 is not supported"),
    ({"ImagePositionPatient": [1e308, 0, 0]}, "is not a position in mm"),
])
def test_one_inconsistent_header(data_dir, tmp_path, reference, values, reason):
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 9, folder)
    _edit(f, **values)
    (plan,), errors = find_series(folder)
    assert errors == []
    assert any(f.name in w and reason in w for w in plan.summary()["warnings"])
    vol = medview.load(folder)
    if "position" in reason:  # no place in the stack: a gap, named in the warnings
        assert "made_up_slices" not in vol.metadata or all(
            f.name not in r for _, r in vol.metadata["made_up_slices"])
        keep = np.arange(35) != 9
        np.testing.assert_array_equal(vol.array[keep], reference.array[keep])
        assert any("1 slice(s) missing" in w for w in vol.warnings), vol.warnings
        return
    _assert_rest_loads(vol, reference, 9, f.name, reason)


def test_short_pixel_data_on_one_slice(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 30, folder)
    ds = pydicom.dcmread(f)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]  # a consistent file, half the pixels
    ds.save_as(f)
    vol = medview.load(folder)
    _assert_rest_loads(vol, reference, 30, f.name, "sizes are inconsistent")


def test_series_lists_the_problem_instead_of_failing(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 9, folder)
    _edit(f, BitsAllocated=24)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "medview.cli", "series", str(folder)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f.name in run.stdout and "Bits Allocated 24" in run.stdout


# --------------------------------------------------------------------------------------------
# counts before checks
# --------------------------------------------------------------------------------------------
def test_two_million_frames_claimed_by_a_small_file_build_nothing(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    liar = folder / "liar.dcm"
    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    ds.SeriesInstanceUID = reference.metadata["SeriesInstanceUID"]
    ds.NumberOfFrames = 2_000_000
    ds.save_as(liar)
    assert liar.stat().st_size < 10_000
    tracemalloc.start()
    try:
        (plan,), _ = find_series(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # one slice object per claimed frame would be hundreds of MB
    assert peak < 30 * 2**20, peak
    assert any("liar.dcm" in w and "2,000,000 frame(s)" in w for w in plan.all_warnings())
    assert len(plan.stack.slices) == 35


@pytest.mark.parametrize(("frames", "reason"), [
    (1_000_000, "declares 1,000,000 frame(s) of compressed data, but the whole file has"),
    (1, "1 frame(s) of 65535×65535 at 16 bits = 8,589,672,450 bytes decoded"),
])
def test_a_huge_image_claim_is_a_clear_error_in_convert(tmp_path, frames, reason):
    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = frames
    folder = tmp_path / "huge"
    folder.mkdir()
    ds.save_as(folder / "huge.dcm")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "medview.cli", "convert", str(folder),
                          str(tmp_path / "out.nii")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr
    assert "huge.dcm" in run.stderr and reason in run.stderr, run.stderr
    assert not (tmp_path / "out.nii").exists()


def test_a_volume_beyond_memory_is_refused_before_allocation():
    from medview.dicom.pixels.read import allocate_volume

    with pytest.raises(SeriesError, match=r"the volume would take .* GiB .*more than 75% of "
                                          r"this machine's"):
        allocate_volume((10**6, 65535, 65535), np.int16)


def test_rle_segment_count_must_match_the_header(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    frame[0] = 1  # 16-bit samples need 2 segments; pylibjpeg-rle decodes 1 into garbage
    ds.PixelData = encapsulate([bytes(frame)])
    ds.save_as(tmp_path / "one_segment.dcm")
    with pytest.raises(PixelDataError, match=r"has 1 segment\(s\), but the header's 1 sample\(s\)"
                                             r" of 16 bits need 2"):
        decode(scan_file(tmp_path / "one_segment.dcm"))


# --------------------------------------------------------------------------------------------
# the decoder process itself
# --------------------------------------------------------------------------------------------
def test_decoder_process_decodes_like_in_process_and_restarts_after_death(data_dir):
    f = data_dir / "dcm_qa_ts" / "In" / "9.dcm"
    h = scan_file(f)
    assert h.transfer_syntax_uid == "1.2.840.10008.1.2.4.90"  # JPEG 2000 lossless
    want = pydicom.dcmread(f).pixel_array
    nbytes = want.nbytes
    ((arr, pi),) = _sandbox.decode_in_sandbox(str(f), h.transfer_syntax_uid, "gdcm", [0], nbytes)
    np.testing.assert_array_equal(arr, want)
    assert pi == "MONOCHROME2"
    first = _sandbox._worker
    proc = first._popen or first.proc
    os.kill(proc.pid, 9)  # as if GDCM had crashed between two files
    proc.wait() if first._popen else proc.join()
    ((arr, _),) = _sandbox.decode_in_sandbox(str(f), h.transfer_syntax_uid, "gdcm", [0], nbytes)
    np.testing.assert_array_equal(arr, want)
    assert _sandbox._worker is not first and _sandbox._worker.alive()


def test_decoder_process_answers_are_capped_and_timed(data_dir, monkeypatch):
    f = data_dir / "dcm_qa_ts" / "In" / "9.dcm"
    h = scan_file(f)
    with pytest.raises(PixelDataError,
                       match="a decoded frame has 294,912 bytes, the header allows 100"):
        _sandbox.decode_in_sandbox(str(f), h.transfer_syntax_uid, "gdcm", [0], 100)
    monkeypatch.setattr(_sandbox, "START_TIMEOUT_S", 0.0)
    monkeypatch.setattr(_sandbox, "FRAME_TIMEOUT_S", 0.001)
    with pytest.raises(PixelDataError, match="the decoder took longer than 0 s for frame 0"):
        _sandbox.decode_in_sandbox(str(f), h.transfer_syntax_uid, "gdcm", [0], 10**7)
    assert _sandbox._worker is None  # stopped: the next call starts afresh


def test_one_slice_far_away_is_split_off_not_resampled_into_thousands(data_dir, tmp_path,
                                                                      reference):
    # fuzz F4: one slice 5 m away made a 4096-plane volume out of a few slices
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 9, folder)
    ds = pydicom.dcmread(f)
    normal = np.cross(reference.direction[:, 0], reference.direction[:, 1])
    ds.ImagePositionPatient = [round(float(v), 4)
                               for v in np.asarray(ds.ImagePositionPatient) + 5000 * normal]
    ds.save_as(f)
    vol = medview.load(folder)
    assert vol.shape == reference.shape  # 34 slices and the gap they leave, filled
    keep = np.arange(35) != 9
    np.testing.assert_array_equal(vol.array[keep], reference.array[keep])
    assert any("split into 2 stacks of 34, 1 slices" in w for w in vol.warnings), vol.warnings
    assert any("1 slice(s) missing" in w for w in vol.warnings), vol.warnings
    (plan,), _ = find_series(folder)
    assert [len(s.slices) for s in plan.stacks] == [34, 1]


def _relabel_jpeg_xl(f: Path, **values) -> None:
    """Compress ``f`` to JPEG 2000 and label it JPEG XL (no decoder): it cannot be read.
    pydicom writes only syntaxes it knows: MPEG2's UID (as long) is written and patched."""
    ds = pydicom.dcmread(f)
    _j2k(ds)
    for k, v in values.items():
        setattr(ds, k, v)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # as long as JPEG XL's UID
    ds.save_as(f)
    f.write_bytes(f.read_bytes().replace(b"1.2.840.10008.1.2.4.100", b"1.2.840.10008.1.2.4.110"))


def test_an_unreadable_largest_stack_gives_way_to_a_readable_one(tmp_path, reference):
    # fuzz seed 1 folder 190: the only intact slice sat in a smaller stack and was lost
    folder = tmp_path / "mixed"
    folder.mkdir()
    for z in (3, 4, 5):
        shutil.copy(reference.metadata["source_files"][z], folder)
    for z in (3, 4):  # a mirrored pair that cannot be decoded: the largest stack
        _relabel_jpeg_xl(_file_at(reference, z, folder),
                         ImageOrientationPatient=[0, -1, 0, 0, 0, -1])
    (plan,), _ = find_series(folder)
    assert [len(s.slices) for s in plan.stacks] == [2, 1]
    vol = medview.load(folder)
    assert vol.shape == (1, 256, 256)
    np.testing.assert_array_equal(vol.array[0], reference.array[5])
    assert any("could not be read" in w and "JPEG XL" in w and "loaded stack [1]" in w
               for w in vol.warnings), vol.warnings
    with pytest.raises(PixelDataError, match="none of the 2 slice"):
        medview.load(folder, stack=0)  # asked for by name: no substitute
    load = open_progressive(folder)  # the viewer's way: the same fallback
    assert load.read_first() == 0
    list(load.fill())
    got = load.result()
    np.testing.assert_array_equal(got.array, vol.array)
    assert any("loaded stack [1]" in w for w in got.warnings), got.warnings


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_decoder_process_dies_with_its_parent(data_dir, tmp_path):
    import signal
    import time

    script = (
        "import os, signal, sys\n"
        "from medview.dicom.pixels import _sandbox\n"
        "from medview.dicom.scan.scanner import scan_file\n"
        "h = scan_file(sys.argv[1])\n"
        "_sandbox.decode_in_sandbox(h.path, h.transfer_syntax_uid, 'gdcm', [0], 10**7)\n"
        "w = _sandbox._worker\n"
        "print((w._popen or w.proc).pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script, str(data_dir / "dcm_qa_ts/In/9.dcm")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    child = int(run.stdout.strip())
    deadline = time.monotonic() + 10  # die_with_parent checks twice a second
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child), f"decoder process {child} outlived its parent"


def test_a_failed_slice_in_a_resampled_stack_is_a_stand_in(data_dir, tmp_path, reference):
    folder = _copy(data_dir, tmp_path)
    _file_at(reference, 20, folder).unlink()  # a gap: the stack is resampled
    f = _gdcm_abort_slice(reference, folder, 10)
    vol = medview.load(folder)
    assert vol.shape == reference.shape
    assert any("1 slice(s) missing" in w for w in vol.warnings), vol.warnings
    keep = ~np.isin(np.arange(35), [10, 20])
    np.testing.assert_array_equal(vol.array[keep], reference.array[keep])
    mine = [(z, r) for z, r in vol.metadata["made_up_slices"] if r.startswith("unreadable")]
    assert [z for z, _ in mine] == [10] and f.name in mine[0][1]
    mid = (reference.array[9].astype(np.float32) + reference.array[11]) / 2
    assert np.abs(vol.array[10].astype(np.float32) - mid).max() <= 1.0


def test_a_slice_without_pixel_spacing_does_not_set_the_series_geometry(data_dir, tmp_path,
                                                                         reference):
    # fuzz seed 2 folder 198: the first slice's damaged spacing became everyone's (1 mm)
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 0, folder)
    ds = pydicom.dcmread(f)
    del ds.PixelSpacing
    ds.save_as(f)
    vol = medview.load(folder)
    assert vol.spacing == pytest.approx(reference.spacing, abs=1e-6)
    np.testing.assert_array_equal(vol.array, reference.array)
    assert any("PixelSpacing differs or is missing on 1 of 35 slices" in w and f.name in w
               for w in vol.warnings), vol.warnings


def test_a_repeat_at_the_same_position_stands_in_for_an_unreadable_slice(data_dir, tmp_path,
                                                                          reference):
    # fuzz seed 1 folder 208: the intact copy at a repeated position was dropped, and the kept
    # one could not be decoded
    folder = _copy(data_dir, tmp_path)
    f = _file_at(reference, 14, folder)
    copy = folder / "copy_of_14.dcm"
    ds = pydicom.dcmread(f)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.InstanceNumber = 99  # acquired later: the repeat rule keeps the original
    ds.save_as(copy)
    _relabel_jpeg_xl(f)  # the kept one cannot be decoded
    vol = medview.load(folder)
    np.testing.assert_array_equal(vol.array, reference.array)
    assert "made_up_slices" not in vol.metadata
    assert vol.metadata["source_files"][14] == str(copy)
    assert any(f"unreadable file {f.name}" in w and "used copy_of_14.dcm at the same position"
               in w for w in vol.warnings), vol.warnings
    load = open_progressive(folder)
    load.read_first()
    list(load.fill())
    np.testing.assert_array_equal(load.result().array, reference.array)
    assert any("used copy_of_14.dcm" in w for w in load.result().warnings)


def test_a_slice_relabelled_palette_colour_does_not_sink_the_grey_stack(reference, data_dir,
                                                                       tmp_path):
    """A slice that says PALETTE COLOR (without usable tables) decodes to RGB, if at all: it
    forms a stack of its own, and the grey slices of the series load as before (fuzz seed 1
    folder 290 lost every intact slice to one such slice)."""
    folder = _copy(data_dir, tmp_path)
    bad = _file_at(reference, 0, folder)
    ds = pydicom.dcmread(bad)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.save_as(bad)
    vol = medview.load(folder)
    assert not vol.is_rgb and vol.shape == (34, 256, 256)
    np.testing.assert_array_equal(vol.array, reference.array[1:])
