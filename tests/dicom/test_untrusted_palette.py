"""PALETTE COLOR images load as RGB, with pydicom's own lookup as the reference.

Payloads: pydicom's palette test files (8-bit indices, 16-bit LUT entries, 8-bit entries,
big endian, RLE, two frames), and segmented tables built from OBXXXX1A's real palette.
"""

from __future__ import annotations

import struct

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut
from realparts import require

import medview
from medview.dicom.errors import PixelDataError


def _file(name: str) -> str:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    require(path is not None, f"pydicom test file {name} (pydicom-data installed)")
    return path  # type: ignore[return-value]


def _reference_rgb(path: str) -> np.ndarray:
    """pydicom's lookup of pydicom's indices, as uint8 (16-bit entries → high byte)."""
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # OT-PAL-8-face.dcm has no file meta
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    rgb = apply_color_lut(ds.pixel_array, ds)[..., :3]
    if ds.RedPaletteColorLookupTableDescriptor[2] == 16:
        rgb = rgb >> 8
    rgb = rgb.astype(np.uint8)
    return rgb if rgb.ndim == 4 else rgb[None]


@pytest.mark.parametrize(
    "name", ["OBXXXX1A.dcm", "OT-PAL-8-face.dcm", "examples_palette.dcm", "OBXXXX1A_rle.dcm",
             "OBXXXX1A_2frame.dcm",
             # real segmented tables with 16-bit entries (little and big endian, 3 frames)
             "gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"],
)
def test_palette_loads_as_pydicom_looks_it_up(name):
    path = _file(name)
    vol = medview.load(path)
    expected = _reference_rgb(path)
    assert vol.array.dtype == np.uint8
    assert vol.array.shape == expected.shape  # (frames, rows, cols, 3)
    np.testing.assert_array_equal(vol.array, expected)
    # a real picture, not one flat colour
    assert len(np.unique(vol.array.reshape(-1, 3), axis=0)) > 10


def test_big_endian_palette_equals_its_little_endian_twin():
    # pydicom 3.0 reads the tables of a big-endian file byte-swapped; medview does not
    big = medview.load(_file("OBXXXX1A_expb_2frame.dcm")).array
    little = medview.load(_file("OBXXXX1A_2frame.dcm")).array
    assert big.max() == 255
    np.testing.assert_array_equal(big, little)


def _segmented_copy(tmp_path, words_for) -> tuple[str, pydicom.Dataset]:
    """OBXXXX1A.dcm with its three tables replaced by segmented ones built by `words_for`."""
    ds = pydicom.dcmread(_file("OBXXXX1A.dcm"))
    for colour in ("Red", "Green", "Blue"):
        table = np.frombuffer(ds[f"{colour}PaletteColorLookupTableData"].value, "<u2")
        words = words_for(table)
        del ds[f"{colour}PaletteColorLookupTableData"]
        setattr(ds, f"Segmented{colour}PaletteColorLookupTableData",
                struct.pack(f"<{len(words)}H", *words))
    out = tmp_path / "segmented.dcm"
    ds.save_as(out)
    return str(out), pydicom.dcmread(out)


def _discrete_and_linear(table: np.ndarray) -> list[int]:
    # the first half as one discrete segment, then linear segments of 16 entries each to the
    # real table's value at the end of each run (an indirect segment would add nothing here)
    half = len(table) // 2
    words = [0, half, *table[:half].tolist()]
    for end in range(half + 16, len(table) + 1, 16):
        words += [1, 16, int(table[end - 1])]
    return words


def test_segmented_palette_loads_as_pydicom_expands_it(tmp_path):
    path, ds = _segmented_copy(tmp_path, _discrete_and_linear)
    vol = medview.load(path)
    expected = (apply_color_lut(ds.pixel_array, ds)[..., :3] >> 8).astype(np.uint8)
    np.testing.assert_array_equal(vol.array[0], expected)
    # and the discrete half equals the original table's colours exactly
    plain = medview.load(_file("OBXXXX1A.dcm")).array[0]
    low = ds.pixel_array < len(np.frombuffer(
        pydicom.dcmread(_file("OBXXXX1A.dcm")).RedPaletteColorLookupTableData, "<u2")) // 2
    assert low.any()
    np.testing.assert_array_equal(vol.array[0][low], plain[low])


def test_segmented_palette_that_expands_past_a_table_is_refused(tmp_path):
    # 200 linear segments of 65,535 entries: 13 million entries from 1.2 KB of table
    path, _ = _segmented_copy(tmp_path, lambda t: [0, 1, 0] + [1, 65535, 65535] * 200)
    with pytest.raises(PixelDataError, match=r"expands to more than 65,536 entries"):
        medview.load(path)


def test_segmented_palette_with_an_indirect_loop_is_refused(tmp_path):
    # an indirect segment that points back at the start, which holds itself
    path, _ = _segmented_copy(tmp_path, lambda t: [0, 1, 0, 2, 2, 0, 0])
    with pytest.raises(PixelDataError, match=r"segmented|Segmented"):
        medview.load(path)


def test_broken_palettes_are_refused_with_the_path(tmp_path):
    ds = pydicom.dcmread(_file("OBXXXX1A.dcm"))
    ds.RedPaletteColorLookupTableDescriptor = 256  # one value instead of three
    one = tmp_path / "descriptor.dcm"
    ds.save_as(one)
    with pytest.raises(PixelDataError, match=r"descriptor\.dcm: PALETTE COLOR .* Descriptor"):
        medview.load(one)
    ds = pydicom.dcmread(_file("OBXXXX1A.dcm"))
    ds.GreenPaletteColorLookupTableData = ds.GreenPaletteColorLookupTableData[:100]
    short = tmp_path / "short_table.dcm"
    ds.save_as(short)
    with pytest.raises(PixelDataError, match=r"short_table\.dcm: .*lookup table is broken"):
        medview.load(short)


def test_segmented_alpha_table_is_bounded_too(tmp_path):
    # pydicom expands an alpha table as well (and drops it only afterwards)
    path, ds = _segmented_copy(tmp_path, _discrete_and_linear)
    words = [0, 1, 0] + [1, 65535, 65535] * 200
    ds.SegmentedAlphaPaletteColorLookupTableData = struct.pack(f"<{len(words)}H", *words)
    ds.save_as(path)
    with pytest.raises(PixelDataError, match=r"SegmentedAlpha.* expands to more than 65,536"):
        medview.load(path)
