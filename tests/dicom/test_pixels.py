"""Pixel decoding: every transfer syntax against pydicom, masking, colour, lies, speed."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)
from realparts import require

from medview.dicom.errors import PixelDataError
from medview.dicom.pixels import decoding as pixels
from medview.dicom.pixels.decoding import (
    check_pixel_data,
    decode,
    decode_into,
    decoders_available,
    frame_shape,
    stored_dtype,
)
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.scan.scanner import iter_files, scan_file

# pydicom test files that are broken for every decoder, pydicom's own included
_BROKEN = {
    "JPEG-lossy.dcm",  # misplaced marker segment: libjpeg, gdcm and pillow all refuse it
    "JPEG2000-embedded-sequence-delimiter.dcm",  # the delimiter cuts the codestream short
    "emri_small_jpeg_2k_lossless_too_short.dcm",
}


def pydicom_file(name: str) -> str:
    """A pydicom test file on disk (never downloaded)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    require(path is not None, f"pydicom test file {name} (pydicom-data installed)")
    return path  # type: ignore[return-value]


def header(name_or_path: str | os.PathLike) -> InstanceHeader:
    path = os.fspath(name_or_path)
    return scan_file(path if os.path.isabs(path) else pydicom_file(path))


def _in_process_plugins(ts: str) -> list[str]:
    """pydicom's plugins for ``ts`` in the order medview tries them in its own process: GDCM
    only runs in the decoder process (it can abort), CharLS first for JPEG-LS."""
    from pydicom.pixels import get_decoder

    try:
        plugins = [p for p in get_decoder(ts)._available if p != "gdcm"]
    except NotImplementedError:
        return [""]
    if "pyjpegls" in plugins:
        plugins.insert(0, plugins.pop(plugins.index("pyjpegls")))
    return plugins or [""]


def reference(path: str) -> np.ndarray:
    """pydicom's stored values for the file, as decode() shapes them, from the plugin medview
    uses (lossy JPEG decoders differ by a few levels: GDCM's YBR conversion is not
    libjpeg's)."""
    ds = pydicom.dcmread(path)
    arr = None
    for plugin in _in_process_plugins(str(ds.file_meta.get("TransferSyntaxUID", ""))):
        try:
            ds.pixel_array_options(decoding_plugin=plugin)
            arr = ds.pixel_array
            break
        except Exception:  # the next plugin, as medview does
            continue
    if arr is None:
        raise ValueError(f"{path}: no in-process plugin decodes it")
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        big = ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
        if big and "RedPaletteColorLookupTableData" in ds:  # segmented ones are read right
            # pydicom 3.0 reads big-endian tables as little-endian words (all black):
            # the reference is its lookup of the tables in the right byte order
            for c in ("Red", "Green", "Blue"):
                data = ds[f"{c}PaletteColorLookupTableData"].value
                ds[f"{c}PaletteColorLookupTableData"].value = np.frombuffer(
                    data, ">u2").astype("<u2").tobytes()
        rgb = apply_color_lut(arr, ds)[..., :3]
        arr = rgb >> 8 if rgb.dtype.itemsize > 1 else rgb
    colour = ds.get("SamplesPerPixel", 1) == 3 or ds.PhotometricInterpretation == "PALETTE COLOR"
    shape = (int(ds.get("NumberOfFrames") or 1), ds.Rows, ds.Columns, *((3,) if colour else ()))
    return arr.reshape(shape)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.astype(np.int64), b.astype(np.int64))


def _pydicom_image_files() -> list[str]:
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return [p for p in iter_files([r for r in roots if r.is_dir()]) if p.endswith(".dcm")]


# --------------------------------------------------------------------------- dtypes, shapes


@pytest.mark.parametrize(
    ("fields", "dtype", "shape"),
    [
        (dict(bits_allocated=16, pixel_representation=1), np.int16, (4, 5)),
        (dict(bits_allocated=16, pixel_representation=0), np.uint16, (4, 5)),
        (dict(bits_allocated=8, pixel_representation=0), np.uint8, (4, 5)),
        (dict(bits_allocated=8, pixel_representation=1), np.int8, (4, 5)),
        (dict(bits_allocated=32, pixel_representation=1), np.int32, (4, 5)),
        (dict(bits_allocated=32, pixel_representation=0), np.uint32, (4, 5)),
        (dict(bits_allocated=1), np.uint8, (4, 5)),
        (dict(bits_allocated=8, samples_per_pixel=3, photometric_interpretation="RGB"),
         np.uint8, (4, 5, 3)),
        (dict(bits_allocated=16, samples_per_pixel=3, photometric_interpretation="RGB",
              pixel_representation=1), np.uint16, (4, 5, 3)),
        (dict(bits_allocated=16, photometric_interpretation="PALETTE COLOR"),
         np.uint8, (4, 5, 3)),
    ],
)
def test_stored_dtype_and_frame_shape(fields, dtype, shape):
    h = InstanceHeader(path="x.dcm", rows=4, columns=5, **fields)
    assert stored_dtype(h) == np.dtype(dtype)
    assert frame_shape(h) == shape


@pytest.mark.parametrize(
    "fields",
    [dict(bits_allocated=12), dict(bits_allocated=64), dict(samples_per_pixel=4),
     dict(rows=0), dict(number_of_frames=0)],
)
def test_unsupported_pixel_modules_are_refused(fields):
    h = dataclasses.replace(InstanceHeader(path="x.dcm", rows=4, columns=5, bits_allocated=16),
                            **fields)
    with pytest.raises(PixelDataError, match=r"x\.dcm"):
        stored_dtype(h)


# --------------------------------------------------------------------------- against pydicom


NATIVE = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_expb.dcm", "emri_small.dcm", "emri_small_big_endian.dcm", "rtdose.dcm",
    "rtdose_expb.dcm", "SC_rgb.dcm", "SC_rgb_16bit.dcm", "SC_rgb_32bit_2frame.dcm",
    "SC_rgb_expb_16bit_2frame.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "693_UNCI.dcm",
    "mlut_18.dcm", "vlut_04.dcm",
]


@pytest.mark.parametrize("name", NATIVE)
def test_native_fast_path_reads_without_pydicom(name, monkeypatch):
    h = header(name)
    assert h.pixel_data_offset is not None
    expected = reference(h.path)

    def no_pydicom(_h):
        raise AssertionError("the fast path must not parse the file")

    monkeypatch.setattr(pixels, "_read_dataset", no_pydicom)
    assert_same(decode(h), expected)


COMPRESSED_AND_SPECIAL = [
    # RLE
    "MR_small_RLE.dcm", "emri_small_RLE.dcm", "rtdose_rle.dcm", "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_32bit_2frame.dcm",
    # JPEG lossless / extended / baseline (YBR_FULL_422 and YBR_FULL → RGB)
    "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "SC_rgb_jpeg_gdcm.dcm", "JPGExtended.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_small_odd_jpeg.dcm", "examples_ybr_color.dcm",
    # JPEG-LS
    "MR_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_line.dcm",
    # JPEG 2000 (YBR_RCT / YBR_ICT undone by the codec; sign mismatch corrected)
    "MR_small_jp2klossless.dcm", "JPEG2000.dcm", "emri_small_jpeg_2k_lossless.dcm",
    "MR2_J2KI.dcm", "US1_J2KR.dcm", "US1_J2KI.dcm", "J2K_pixelrep_mismatch.dcm",
    "GDCMJ2K_TextGBR.dcm", "693_J2KR.dcm",
    # deflated
    "image_dfl.dcm",
    # native cases the fast path leaves to pydicom: 1-bit, YBR, planar, palette, 8-bit BE
    "liver.dcm", "liver_1frame.dcm", "liver_expb.dcm", "SC_ybr_full_uncompressed.dcm",
    "SC_ybr_full_422_uncompressed.dcm", "color-pl.dcm", "ExplVR_BigEnd.dcm", "SC_rgb_expb.dcm",
    "OBXXXX1A.dcm", "OBXXXX1A_2frame.dcm", "OBXXXX1A_rle.dcm", "gdcm-US-ALOKA-16.dcm",
    "gdcm-US-ALOKA-16_big.dcm",
]


@pytest.mark.parametrize("name", COMPRESSED_AND_SPECIAL)
def test_other_syntaxes_match_pydicom(name):
    h = header(name)
    out = decode(h)
    assert out.dtype == stored_dtype(h)
    assert out.shape == (h.number_of_frames, *frame_shape(h))
    assert_same(out, reference(h.path))


def test_every_pydicom_image_file_decodes_like_pydicom():
    files = _pydicom_image_files()
    require(len(files) > 50, "pydicom's test files on disk")
    checked = 0
    for path in files:
        if os.path.basename(path) in _BROKEN:
            continue
        try:
            h = scan_file(path)
        except Exception:  # not an image, or a file the scanner refuses with a reason
            continue
        try:
            expected = reference(path)
        except Exception:  # pydicom itself cannot decode it: nothing to compare with
            continue
        assert_same(decode(h), expected)
        checked += 1
    assert checked > 100


def test_colour_comes_out_rgb():
    ybr = decode(header("SC_ybr_full_uncompressed.dcm"))[0]
    rgb = decode(header("SC_rgb.dcm"))[0]
    # the same picture, stored once as RGB and once as 8-bit YCbCr (round trip: a few levels)
    assert np.abs(ybr.astype(int) - rgb.astype(int)).max() <= 8
    planar = decode(header("color-pl.dcm"))[0]
    interleaved = decode(header("color-px.dcm"))[0]
    assert_same(planar, interleaved)


def test_palette_colour_is_uint8_rgb():
    h = header("OBXXXX1A.dcm")
    rgb = decode(h)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 600, 800, 3)
    assert rgb.max() == 255  # 16-bit entries 0xFF00 keep their high byte


def test_monochrome1_is_not_inverted():
    h = header("RG1_UNCI.dcm")
    assert h.photometric_interpretation == "MONOCHROME1"
    assert_same(decode(h, range(1)), reference(h.path))  # pydicom does not invert either


# --------------------------------------------------------------------------- frames, out


@pytest.mark.parametrize("name", ["emri_small.dcm", "emri_small_RLE.dcm",
                                  "emri_small_big_endian.dcm"])
def test_frame_subsets_and_views(name):
    h = header(name)
    full = decode(h)
    assert_same(decode(h, range(2, 9, 3)), full[2:9:3])
    big = np.zeros((20, *frame_shape(h)), stored_dtype(h))
    decode_into(h, big[5:8], range(4, 7))  # a view into a bigger volume
    assert_same(big[5:8], full[4:7])
    assert not big[:5].any() and not big[8:].any()
    mirrored = np.zeros((h.number_of_frames, *frame_shape(h)), stored_dtype(h))
    decode_into(h, mirrored[:, ::-1])  # not contiguous: written frame by frame
    assert_same(mirrored[:, ::-1], full)


def test_out_and_frames_are_validated():
    h = header("CT_small.dcm")
    with pytest.raises(ValueError, match="out: expected dtype int16"):
        decode_into(h, np.empty((1, 128, 128), np.float32))
    with pytest.raises(ValueError, match="out: expected shape"):
        decode_into(h, np.empty((1, 128, 127), np.int16))
    with pytest.raises(ValueError, match="frames"):
        decode(h, range(1, 2))
    with pytest.raises(TypeError, match="frames"):
        decode(h, [0])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bits


def _write(path: Path, values: np.ndarray, *, bits_stored: int, signed: bool,
           big_endian: bool = False) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRBigEndian if big_endian else ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = values.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = values.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = values.astype(values.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)  # encoding from the syntax
    return path


@pytest.mark.parametrize("big_endian", [False, True])
def test_bits_above_high_bit_are_masked_or_sign_extended(tmp_path, big_endian):
    raw = np.array([[0x0F0F, 0xFFFF, 0x7123, 0x0800, 0x07FF, 0xF800]], np.uint16)
    p = _write(tmp_path / "u.dcm", raw, bits_stored=12, signed=False, big_endian=big_endian)
    assert decode(scan_file(p))[0].tolist() == [[0xF0F, 0xFFF, 0x123, 0x800, 0x7FF, 0x800]]
    p = _write(tmp_path / "s.dcm", raw.view(np.int16), bits_stored=12, signed=True,
               big_endian=big_endian)
    got = decode(scan_file(p))[0]
    assert got.dtype == np.int16
    assert got.tolist() == [[-241, -1, 0x123, -2048, 2047, -2048]]


def test_twelve_bit_reference_files_have_garbage_and_come_out_clean(data_dir):
    folder = data_dir / "dcm_qa_12bit" / "In"
    unsigned = scan_file(folder / "12bitUnsigned_0x0F0F.dcm")
    on_disk = np.fromfile(unsigned.path, np.uint16, count=unsigned.rows * unsigned.columns,
                          offset=unsigned.pixel_data_offset)
    assert on_disk.max() == 0xFFFF  # the bits above bit 11 really are set in the file
    values = decode(unsigned)
    assert values.max() == 4095 and (values == 3855).any()
    signed = decode(scan_file(folder / "12bitSigned_0x0F0F.dcm"))
    assert signed.dtype == np.int16
    assert signed.min() == -2048 and signed.max() == 2047
    assert (signed == -241).any() and (signed == -1).any()


# --------------------------------------------------------------------------- lies


def _truncated_copy(h: InstanceHeader, tmp_path: Path, keep: int) -> Path:
    dst = tmp_path / f"cut_{os.path.basename(h.path)}"
    shutil.copyfile(h.path, dst)
    os.truncate(dst, keep)
    return dst


def test_truncated_native_file_names_path_and_byte_counts(tmp_path):
    h = header("CT_small.dcm")
    cut = _truncated_copy(h, tmp_path, h.pixel_data_offset + 10_000)
    # a header scanned from the truncated file (the scanner reads only up to the pixels)
    scanned = dataclasses.replace(h, path=str(cut), file_size=os.path.getsize(cut))
    with pytest.raises(PixelDataError) as err:
        decode(scanned)
    message = str(err.value)
    assert str(cut) in message and "truncated" in message
    assert "32,768" in message and "10,000" in message
    # a stale header that still believes in the full size: the short read is caught
    with pytest.raises(PixelDataError, match=r"truncated.*32,768 bytes.*10,000 found"):
        decode_into(dataclasses.replace(h, path=str(cut)), np.empty((1, 128, 128), np.int16))


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm"])
def test_truncated_compressed_file_is_a_pixel_data_error(tmp_path, name):
    h = header(name)
    cut = _truncated_copy(h, tmp_path, h.file_size - h.file_size // 3)
    with pytest.raises(PixelDataError, match=re.escape(str(cut)) + ".*truncated"):
        decode(dataclasses.replace(h, path=str(cut), file_size=os.path.getsize(cut)))


def _claiming(tmp_path: Path, name: str, rows: int, cols: int, frames: int = 1) -> Path:
    ds = pydicom.dcmread(pydicom_file(name))
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    out = tmp_path / f"liar_{name}"
    ds.save_as(out)
    return out


def _raises_without_allocating(h: InstanceHeader, *needles: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(PixelDataError) as err:
            decode(h)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak:,} bytes allocated before refusing"
    for needle in needles:
        assert needle in str(err.value)


def test_header_claiming_ten_gigapixels_is_refused_without_allocating(tmp_path):
    # Rows and Columns are 16-bit: 10^10 pixels are 50000 × 50000 × 4 frames
    path = _claiming(tmp_path, "CT_small.dcm", 50_000, 50_000, frames=4)
    h = scan_file(path)
    assert (h.rows, h.columns, h.number_of_frames) == (50_000, 50_000, 4)
    _raises_without_allocating(h, str(path), "20,000,000,000 bytes", "32,768 bytes")
    with pytest.raises(PixelDataError):
        check_pixel_data(h)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_header_lies_are_refused_without_allocating(tmp_path, name):
    huge = scan_file(_claiming(tmp_path, name, 50_000, 50_000, frames=4))
    _raises_without_allocating(huge, huge.path)
    # a smaller lie passes the header-only bound; the codestream (or RLE bound) catches it
    small = scan_file(_claiming(tmp_path, name, 64, 4096))
    _raises_without_allocating(small, small.path)


def test_native_pixel_data_shorter_than_declared_size(tmp_path):
    h = header("CT_small.dcm")
    liar = dataclasses.replace(h, number_of_frames=3)
    with pytest.raises(PixelDataError, match=r"98,304 bytes.*holds 32,768 bytes"):
        decode(liar)


# --------------------------------------------------------------------------- decoders


def test_decoders_available_reports_every_family():
    available = decoders_available()
    assert set(available) == set(pixels.DECODER_GROUPS)
    assert available["native"] and available["deflated"]
    # the project's dependencies bring decoders for all the rest
    require(all(available.values()), f"all pixel decoders installed: {available}")


def test_missing_decoder_names_syntax_and_packages(monkeypatch):
    from pydicom.pixels import get_decoder

    h = header("JPEG2000.dcm")
    decoder = get_decoder(h.transfer_syntax_uid)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(
        decoder, "_unavailable",
        {"pylibjpeg": ("numpy", "pylibjpeg>=2.0", "pylibjpeg-openjpeg>=2.0"),
         "gdcm": ("numpy", "gdcm>=3.0.10")},
    )
    assert decoders_available()["jpeg_2000"] is False
    with pytest.raises(PixelDataError) as err:
        decode(h)
    message = str(err.value)
    for needle in (h.path, "1.2.840.10008.1.2.4.91", "JPEG 2000",
                   "`pip install pylibjpeg pylibjpeg-openjpeg` or `pip install python-gdcm`"):
        assert needle in message


def test_syntax_without_any_decoder_is_named(tmp_path):
    h = header("MR_small_RLE.dcm")
    ds = pydicom.dcmread(h.path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.save_as(tmp_path / "mpeg.dcm")
    h = dataclasses.replace(h, path=str(tmp_path / "mpeg.dcm"),
                            transfer_syntax_uid="1.2.840.10008.1.2.4.100")
    with pytest.raises(PixelDataError,
                       match=r"MPEG2 Main Profile / Main Level \(1\.2\.840\.10008\.1\.2\.4\.100\)"
                             r" has no decoder here: it holds video"):
        decode(h)


def test_jpeg_xl_is_named_not_counted_as_fragments(tmp_path):
    # issue 13: an unknown syntax was reported as "0 fragment(s)"
    h = header("MR_small_RLE.dcm")
    ds = pydicom.dcmread(h.path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # pydicom writes only known ones
    ds.save_as(tmp_path / "jxl.dcm")
    data = (tmp_path / "jxl.dcm").read_bytes()
    assert data.count(b"1.2.840.10008.1.2.4.100") == 1
    (tmp_path / "jxl.dcm").write_bytes(data.replace(b"1.2.840.10008.1.2.4.100",
                                                    b"1.2.840.10008.1.2.4.110"))
    h = dataclasses.replace(h, path=str(tmp_path / "jxl.dcm"),
                            transfer_syntax_uid="1.2.840.10008.1.2.4.110")
    with pytest.raises(PixelDataError) as err:
        decode(h)
    message = str(err.value)
    assert "transfer syntax JPEG XL Lossless (1.2.840.10008.1.2.4.110) has no decoder here" in (
        message)
    assert "gdcmconv --raw" in message and "fragment" not in message


# --------------------------------------------------------------------------- speed


def _ct_series(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        values = rng.integers(-1024, 2000, (1, 512, 512), dtype=np.int16)
        paths.append(_write(folder / f"{k:04d}.dcm", values, bits_stored=12, signed=True))
    return paths


def test_a_300_slice_ct_fills_a_volume_without_extra_copies(tmp_path):
    """Speed is measured by benchmarks/load.py; here: the values and the memory bound."""
    paths = _ct_series(tmp_path, 300)
    headers = [scan_file(p) for p in paths]
    volume = np.zeros((300, 512, 512), np.int16)
    for k, h in enumerate(headers):
        decode_into(h, volume[k : k + 1])
    for k in (0, 150, 299):
        assert_same(volume[k], pydicom.dcmread(paths[k]).pixel_array)

    tracemalloc.start()
    try:
        fresh = np.empty((300, 512, 512), np.int16)
        for k, h in enumerate(headers):
            decode_into(h, fresh[k : k + 1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 1.3 * fresh.nbytes
