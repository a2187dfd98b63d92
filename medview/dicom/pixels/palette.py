"""PALETTE COLOR: stored indices → 8-bit RGB through the file's colour lookup tables.

The lookup itself is pydicom's :func:`pydicom.pixels.apply_color_lut` (normal and segmented
tables, 8- and 16-bit entries, a first mapped value other than 0). What medview adds:

- a bound on segmented tables before pydicom expands them: a three-word linear segment
  expands to up to 65,535 entries and indirect segments can repeat (or reference) each other,
  so a few kilobytes of table could otherwise become gigabytes of Python integers; the walk
  below counts the entries without building them and refuses more than a table can have;
- one output type, uint8 RGB (what the views and exports show): 16-bit entries keep their
  high byte (0xFFFF → 255), 8-bit entries stored in 16-bit words keep their value.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from medview.dicom.errors import PixelDataError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["palette_to_rgb"]

_MAX_ENTRIES = 65536  # a LUT Descriptor's first value is a US: 0 means 2**16
_MAX_SEGMENT_VISITS = 1_000_000  # indirect segments re-read others: bound the walk too
_SEGMENTED = tuple(f"Segmented{c}PaletteColorLookupTableData" for c in ("Red", "Green", "Blue"))


def palette_to_rgb(indices: np.ndarray, ds: Dataset, path: str) -> np.ndarray:
    """Look the stored `indices` up in the palette of `ds`.

    Parameters
    ----------
    indices : ndarray of int, shape (rows, cols) or (frames, rows, cols)
        Stored pixel values (palette indices).
    ds : pydicom.dataset.Dataset
        The parsed file: its Palette Color Lookup Table Descriptors and (segmented) data.
    path : str
        The file, for messages.

    Returns
    -------
    ndarray of uint8, shape ``indices.shape + (3,)``
        RGB; an alpha table, if present, is dropped.

    Raises
    ------
    PixelDataError
        No palette, a broken table, or a segmented table that expands past 65,536 entries.
    """
    from pydicom.pixels import apply_color_lut

    desc = ds.get("RedPaletteColorLookupTableDescriptor")
    if desc is None or isinstance(desc, int | str | bytes) or len(desc) != 3:
        raise PixelDataError(
            f"{path}: PALETTE COLOR image without a usable Red Palette Color Lookup Table "
            f"Descriptor (0028,1101): {desc!r}"
        )
    nominal_bits = int(desc[2])
    if "RedPaletteColorLookupTableData" not in ds:  # pydicom expands segmented tables then
        for keyword in (*_SEGMENTED, "SegmentedAlphaPaletteColorLookupTableData"):
            if ds.get(keyword) is not None:
                _check_segmented(ds, keyword, nominal_bits, path)
    lut_ds = _little_endian_tables(ds)
    try:
        rgb = apply_color_lut(indices, lut_ds)[..., :3]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error) as exc:
        raise PixelDataError(f"{path}: the palette colour lookup table is broken: {exc}") from exc
    if rgb.dtype.itemsize == 1:
        return rgb
    if nominal_bits == 8 and int(rgb.max(initial=0)) <= 0xFF:
        return rgb.astype(np.uint8)  # 8-bit entries written in 16-bit words
    return np.right_shift(rgb, 8).astype(np.uint8)


def _little_endian_tables(ds: Dataset) -> Dataset:
    """`ds`, or for a big-endian file a small dataset with its 16-bit tables byte-swapped.

    pydicom 3.0's ``apply_color_lut`` reads (non-segmented) table data as native little-endian
    words whatever the file's byte order, so an Explicit VR Big Endian palette comes out
    byte-swapped (0xFF00 as 0x00FF: OBXXXX1A_expb.dcm would be black).
    """
    from pydicom.dataset import Dataset

    if _is_little_endian(ds) or "RedPaletteColorLookupTableData" not in ds:
        return ds
    out = Dataset()
    for colour in ("Red", "Green", "Blue", "Alpha"):
        desc = ds.get(f"{colour}PaletteColorLookupTableDescriptor")
        if desc is not None:
            setattr(out, f"{colour}PaletteColorLookupTableDescriptor", desc)
        data = ds.get(f"{colour}PaletteColorLookupTableData")
        if data is not None and len(data) % 2 == 0:
            data = np.frombuffer(data, ">u2").astype("<u2").tobytes()
        if data is not None:
            setattr(out, f"{colour}PaletteColorLookupTableData", data)
    return out


def _is_little_endian(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is not None:
        return str(ts) != "1.2.840.10008.1.2.2"
    little = ds.original_encoding[1]
    return True if little is None else bool(little)


def _check_segmented(ds: Dataset, keyword: str, nominal_bits: int, path: str) -> None:
    data = ds[keyword].value
    if nominal_bits not in (8, 16):
        raise PixelDataError(
            f"{path}: segmented palette with {nominal_bits}-bit entries (8 or 16 expected)"
        )
    little = _is_little_endian(ds)
    size = nominal_bits // 8
    n = len(data) // size
    fmt = f"{'<' if little else '>'}{n}{'B' if size == 1 else 'H'}"
    words = struct.unpack(fmt, data[: n * size])
    try:
        total = _count_entries(words, size, little, 0, None, [0], path, keyword)
    except RecursionError:
        raise PixelDataError(f"{path}: {keyword}: indirect segments refer to each other "
                             "in a loop") from None
    if total > _MAX_ENTRIES:
        raise PixelDataError(
            f"{path}: {keyword} expands to more than {_MAX_ENTRIES:,} entries (a palette has "
            "at most 65,536): refused"
        )


def _count_entries(words: tuple, size: int, little: bool, start: int, nr_segments: int | None,
                   visits: list[int], path: str, keyword: str) -> int:
    """Entries pydicom's expansion of ``words[start:]`` would produce, without building them.

    Mirrors the segment walk of ``pydicom.pixels.processing._expand_segmented_lut`` (discrete
    0, linear 1, indirect 2); stops as soon as the count passes what a table can hold.
    """
    total, offset, read = 0, start, 0
    while offset + 1 < len(words):
        visits[0] += 1
        if visits[0] > _MAX_SEGMENT_VISITS:
            raise PixelDataError(f"{path}: {keyword}: too many segments (indirect loops?)")
        opcode, length = words[offset], words[offset + 1]
        offset += 2
        if opcode == 0:
            total += length
            offset += length
        elif opcode == 1:
            total += length
            offset += 1
        elif opcode == 2:
            if size == 1:
                b = words[offset:offset + 4]
                if len(b) < 4:
                    break
                ii = (3, 2, 1, 0) if little else (2, 3, 0, 1)  # as pydicom reads them
                byte_offset = (b[ii[0]] << 8 | b[ii[1]]) << 16 | (b[ii[2]] << 8 | b[ii[3]])
                offset += 4
            else:
                if offset + 1 >= len(words):
                    break
                byte_offset = words[offset + 1] << 16 | words[offset]
                offset += 2
            if byte_offset >= len(words):
                break  # pydicom expands nothing from past the end
            total += _count_entries(words, size, little, byte_offset, length, visits, path, keyword)
        else:
            break  # pydicom raises on an unknown opcode; its message is reported then
        if total > _MAX_ENTRIES:
            return total
        read += 1
        if read == nr_segments:
            break
    return total
