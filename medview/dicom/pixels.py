"""Pixel decoding: the stored values of one DICOM file, written into an array the caller owns.

One function does the work, :func:`decode_into`; :func:`decode` allocates and calls it.

Fast path
    Native little-endian pixel data (Implicit/Explicit VR Little Endian) whose byte offset the
    header scan recorded (``InstanceHeader.pixel_data_offset``) is read with one ``seek`` and
    one ``readinto`` straight into the caller's array: no intermediate buffer, no pydicom
    parse. Explicit VR Big Endian (16/32-bit) takes the same path and is byte-swapped in place.
Everything else
    (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE, deflated, colour that
    needs converting, palette colour, 1-bit, unknown offset) goes through pydicom's decoders
    (``pydicom.pixels``), which use the installed plugins (pylibjpeg + libjpeg/openjpeg/rle,
    python-gdcm, pillow, pyjpegls).

What the values are
    *Stored values* (before Rescale Slope/Intercept), with the bits above Bits Stored cleared
    for unsigned data and sign-extended from the High Bit for signed data (PS3.5 8.1.1: the
    unused bits may hold anything; see ``dcm_qa_12bit``). MONOCHROME1 is **not** inverted
    here: the series assembler inverts after rescale, where the physical range is known.
    Colour comes out as interleaved RGB, shape ``(..., rows, cols, 3)``: YBR_FULL and
    YBR_FULL_422 are converted to RGB, planar configuration 1 is interleaved, YBR_ICT/RCT are
    undone by the JPEG 2000 decoder; PALETTE COLOR is looked up to RGB and returned as uint8
    (16-bit palette entries keep their high byte, which is how 8-bit palettes are stored in
    16-bit LUTs: 0xFF00 → 255).

Lies
    Before anything is read or allocated the declared sizes are checked against the file:
    a truncated file, a Pixel Data length shorter than Rows × Columns × frames needs, or a
    compressed frame whose codestream says another size raise :class:`PixelDataError` with
    the path and both byte counts. Nothing is ever allocated from a declared size the file
    cannot back.
"""

from __future__ import annotations

import io
import math
import os
import struct
from typing import TYPE_CHECKING

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.header import InstanceHeader

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "DECODER_GROUPS",
    "check_pixel_data",
    "decode",
    "decode_into",
    "decoders_available",
    "frame_shape",
    "stored_dtype",
]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
RLE = "1.2.840.10008.1.2.5"
_NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})

#: Transfer syntaxes by decoder family, as reported by :func:`decoders_available`.
DECODER_GROUPS: dict[str, tuple[str, ...]] = {
    "native": (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE),
    "deflated": (DEFLATED_LE,),
    "rle": (RLE,),
    "jpeg_baseline": ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"),
    "jpeg_lossless": ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"),
    "jpeg_ls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "jpeg_2000": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "htj2k": ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"),
}

# A header-only plausibility bound for compressed data, before the file is parsed: no real
# codec reaches it (RLE ≤ 64×, JPEG lossless ≤ 16×, a blank JPEG 2000 frame a few 1000×),
# while a 100000×100000 claim in a few-kB file exceeds it by orders of magnitude. The exact
# check (codestream dimensions) follows once the file is read.
_MAX_COMPRESSION_RATIO = 100_000
# RLE: a two-byte replicate run expands to at most 128 bytes.
_MAX_RLE_RATIO = 64

_PALETTE = "PALETTE COLOR"
_HAVE_PREADV = hasattr(os, "preadv")
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                       0xCE, 0xCF, 0xF7})  # F7 = SOF55, JPEG-LS


# --------------------------------------------------------------------------------------------
# shapes and types


def stored_dtype(h: InstanceHeader) -> np.dtype:
    """Return the dtype :func:`decode` produces for `h`.

    Parameters
    ----------
    h : InstanceHeader
        The file's header.

    Returns
    -------
    numpy.dtype
        Monochrome: ``uint8/int8/uint16/int16/uint32/int32`` from Bits Allocated and Pixel
        Representation (Bits Allocated 1 gives uint8 0/1). Colour (Samples per Pixel 3): the
        unsigned type of Bits Allocated (uint8 for ordinary RGB). Palette colour: uint8 RGB.

    Raises
    ------
    PixelDataError
        Bits Allocated other than 1, 8, 16 or 32, or an unusable image size.
    """
    _check_geometry(h)
    if _is_palette(h):
        return np.dtype(np.uint8)
    ba = h.bits_allocated
    if ba == 1:
        return np.dtype(np.uint8)
    if h.samples_per_pixel == 3:
        return np.dtype(f"u{ba // 8}")
    return np.dtype(f"{'i' if h.pixel_representation == 1 else 'u'}{ba // 8}")


def frame_shape(h: InstanceHeader) -> tuple[int, ...]:
    """Return the shape of one decoded frame: ``(rows, cols)`` or ``(rows, cols, 3)`` for colour.

    Raises
    ------
    PixelDataError
        Samples per Pixel other than 1 or 3, or rows/columns not positive.
    """
    _check_geometry(h)
    if h.samples_per_pixel == 3 or _is_palette(h):
        return (h.rows, h.columns, 3)
    return (h.rows, h.columns)


def _check_geometry(h: InstanceHeader) -> None:
    if h.rows <= 0 or h.columns <= 0:
        raise PixelDataError(
            f"{h.path}: image size {h.rows}×{h.columns}: Rows and Columns must be positive"
        )
    if h.number_of_frames < 1:
        raise PixelDataError(f"{h.path}: Number of Frames {h.number_of_frames} is not positive")
    if h.samples_per_pixel not in (1, 3):
        raise PixelDataError(
            f"{h.path}: Samples per Pixel {h.samples_per_pixel} is not supported (expected 1 or 3)"
        )
    if h.bits_allocated not in (1, 8, 16, 32):
        raise PixelDataError(
            f"{h.path}: Bits Allocated {h.bits_allocated} is not supported "
            "(expected 1, 8, 16 or 32)"
        )


def _is_palette(h: InstanceHeader) -> bool:
    return h.photometric_interpretation.strip().upper() == _PALETTE


def _bits_stored(h: InstanceHeader) -> int:
    bs = h.bits_stored
    return h.bits_allocated if bs <= 0 or bs > h.bits_allocated else bs


def _native_nbytes(h: InstanceHeader, n_frames: int) -> int:
    """Bytes that `n_frames` frames occupy in native (uncompressed) encoding."""
    samples = h.samples_per_pixel
    if h.photometric_interpretation.strip().upper() == "YBR_FULL_422" and samples == 3:
        samples = 2  # two chroma samples shared by each pair of pixels (PS3.3 C.7.6.3.1.2)
    bits = h.rows * h.columns * samples * h.bits_allocated * n_frames
    return math.ceil(bits / 8)


def _decoded_nbytes(h: InstanceHeader, n_frames: int) -> int:
    return math.prod(frame_shape(h)) * stored_dtype(h).itemsize * n_frames


# --------------------------------------------------------------------------------------------
# checks


def check_pixel_data(h: InstanceHeader, *, file_size: int | None = None) -> None:
    """Check, from the header alone, that the file can hold the pixel data it declares.

    Cheap (one ``stat`` at most): call it before allocating a volume from headers.

    Parameters
    ----------
    h : InstanceHeader
        The file's header.
    file_size : int, optional
        The file's current size in bytes; ``stat`` is called when omitted.

    Raises
    ------
    PixelDataError
        Native data: the declared Pixel Data length is shorter than Rows × Columns × Samples
        × frames × bytes needs, or the file ends before the pixel data does (truncated).
        Compressed data: the declared decoded size is implausibly large for the file.
        The message names the path and both byte counts.
    """
    _check_geometry(h)
    if file_size is None:
        try:
            file_size = os.stat(h.path).st_size
        except OSError as exc:
            raise PixelDataError(f"{h.path}: cannot open the file: {exc}") from exc
    n = h.number_of_frames
    if h.transfer_syntax_uid in _NATIVE:
        needed = _native_nbytes(h, n)
        declared = h.pixel_data_length
        if 0 <= declared < needed:
            raise PixelDataError(
                f"{h.path}: the header declares {_describe(h, needed)}, but the Pixel Data "
                f"element holds "
                f"{declared:,} bytes: sizes are inconsistent"
            )
        if h.pixel_data_offset is None:
            if needed > file_size:
                raise PixelDataError(
                    f"{h.path}: the header declares {_describe(h, needed)}, but the whole file has "
                    f"{file_size:,} bytes: truncated or inconsistent"
                )
            return
        available = file_size - h.pixel_data_offset
        wanted = max(needed, declared)
        if wanted > available:
            raise PixelDataError(
                f"{h.path}: truncated: pixel data of {wanted:,} bytes expected from byte "
                f"{h.pixel_data_offset:,}, but only {max(available, 0):,} bytes follow "
                f"(file size {file_size:,}; {_describe(h, needed)})"
            )
        return
    decoded = _decoded_nbytes(h, n)
    if decoded > file_size * _MAX_COMPRESSION_RATIO:
        raise PixelDataError(
            f"{h.path}: the header declares {_describe(h, decoded)} decoded, but the whole "
            f"file has {file_size:,} bytes (ratio beyond {_MAX_COMPRESSION_RATIO:,}:1): "
            "the header does not describe this file"
        )


def _describe(h: InstanceHeader, nbytes: int) -> str:
    colour = f"×{h.samples_per_pixel} samples" if h.samples_per_pixel != 1 else ""
    return (
        f"{h.number_of_frames} frame(s) of {h.rows}×{h.columns}{colour} at "
        f"{h.bits_allocated} bits = {nbytes:,} bytes"
    )


def _frame_range(h: InstanceHeader, frames: range | None) -> range:
    n = h.number_of_frames
    if frames is None:
        return range(n)
    if not isinstance(frames, range):
        raise TypeError(f"frames: expected a range or None, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames: the range is empty")
    if min(frames) < 0 or max(frames) >= n:
        raise ValueError(f"frames: {frames} is outside the file's {n} frame(s) (0..{n - 1})")
    return frames


def _check_out(h: InstanceHeader, out: np.ndarray, frames: range) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy array, got {type(out).__name__}")
    shape = (len(frames), *frame_shape(h))
    if out.shape != shape:
        raise ValueError(f"out: expected shape {shape} for {h.path}, got {out.shape}")
    dtype = stored_dtype(h)
    if out.dtype != dtype:
        raise ValueError(f"out: expected dtype {dtype} (stored_dtype), got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out: the array is read-only")


# --------------------------------------------------------------------------------------------
# public entry points


def decode_into(h: InstanceHeader, out: np.ndarray, frames: range | None = None) -> None:
    """Fill `out` with the stored pixel values of the file `h` describes.

    Parameters
    ----------
    h : InstanceHeader
        The file's header (from the header scan or the catalog).
    out : ndarray, shape (n, rows, cols) or (n, rows, cols, 3), dtype ``stored_dtype(h)``
        Where the values go; ``n = len(frames)``. May be a view into a larger preallocated
        volume (e.g. ``volume[z0:z0 + n]``); C-contiguous views are filled without any
        intermediate copy on the fast path.
    frames : range, optional
        Which frames of the file (0-based); all of them when omitted.

    Notes
    -----
    Values are stored values (no rescale), masked to Bits Stored and sign-extended for
    signed data. MONOCHROME1 is not inverted (the assembler does it after rescale). Colour is
    interleaved RGB; palette colour is converted to uint8 RGB. See the module docstring.

    Raises
    ------
    PixelDataError
        The file is truncated or its sizes are inconsistent, it changed since the header was
        scanned, no installed package decodes its transfer syntax (the message names the
        syntax and the packages to install), or the decoder failed.
    ValueError, TypeError
        `out` or `frames` do not fit the header.
    """
    frames = _frame_range(h, frames)
    _check_out(h, out, frames)
    if _fast_path(h):
        _read_native(h, out, frames)
    else:
        ds = _read_dataset(h)
        _check_dataset(h, ds)
        _decode_dataset(h, ds, out, frames)
    _fix_unused_bits(h, out)


def decode(h: InstanceHeader, frames: range | None = None) -> np.ndarray:
    """Return the stored pixel values of the file `h` describes.

    Same values as :func:`decode_into`; the array is allocated only after the declared sizes
    were checked against the file.

    Returns
    -------
    ndarray, shape (n_frames, rows, cols) or (n_frames, rows, cols, 3)
        dtype ``stored_dtype(h)``; ``n_frames = len(frames)``, all frames by default.

    Raises
    ------
    PixelDataError
        As :func:`decode_into`.
    """
    frames = _frame_range(h, frames)
    shape = (len(frames), *frame_shape(h))
    dtype = stored_dtype(h)
    if _fast_path(h):
        check_pixel_data(h)
        out = np.empty(shape, dtype)
        _read_native(h, out, frames)
    else:
        ds = _read_dataset(h)
        _check_dataset(h, ds)
        out = np.empty(shape, dtype)
        _decode_dataset(h, ds, out, frames)
    _fix_unused_bits(h, out)
    return out


def decoders_available() -> dict[str, bool]:
    """Return, per transfer-syntax family of :data:`DECODER_GROUPS`, whether it can be decoded.

    A family counts as available when pydicom has a usable plugin for every syntax in it.
    """
    from pydicom.pixels import get_decoder

    result = {}
    for group, uids in DECODER_GROUPS.items():
        ok = True
        for uid in uids:
            try:
                ok = ok and get_decoder(uid).is_available
            except NotImplementedError:
                ok = False
        result[group] = ok
    return result


# --------------------------------------------------------------------------------------------
# fast path


def _fast_path(h: InstanceHeader) -> bool:
    if h.transfer_syntax_uid not in _NATIVE or h.pixel_data_offset is None:
        return False
    ba = h.bits_allocated
    if ba not in (8, 16, 32):
        return False
    if ba == 8 and h.transfer_syntax_uid == EXPLICIT_BE:
        return False  # 8-bit OW data is word-swapped in big endian; pydicom knows the VR
    pi = h.photometric_interpretation.strip().upper()
    if h.samples_per_pixel == 1:
        return pi != _PALETTE
    return pi == "RGB" and h.planar_configuration == 0


def _read_native(h: InstanceHeader, out: np.ndarray, frames: range) -> None:
    # The header's own file size is enough to refuse lies before any read; a file that is
    # shorter than its header says shows up as a short read below (no fstat per file: it
    # costs ~10% of a warm 512×512 slice).
    check_pixel_data(h, file_size=h.file_size or None)
    frame_nbytes = _native_nbytes(h, 1)
    start = h.pixel_data_offset
    try:
        fd = os.open(h.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise PixelDataError(f"{h.path}: cannot open the file: {exc}") from exc
    try:
        if frames.step == 1 and out.flags.c_contiguous:
            view = memoryview(out).cast("B")
            _pread_exact(fd, view, start + frames.start * frame_nbytes, h.path)
        else:
            spare = None
            for k, index in enumerate(frames):
                target = out[k]
                if not target.flags.c_contiguous:
                    if spare is None:
                        spare = np.empty(target.shape, target.dtype)
                    target = spare
                view = memoryview(target).cast("B")
                _pread_exact(fd, view, start + index * frame_nbytes, h.path)
                if target is spare:
                    out[k] = spare
    finally:
        os.close(fd)
    if h.transfer_syntax_uid == EXPLICIT_BE and out.dtype.itemsize > 1:
        out.byteswap(inplace=True)


def _pread_exact(fd: int, view: memoryview, position: int, path: str) -> None:
    """Fill `view` from byte `position` of `fd`, straight into its memory."""
    filled, total = 0, len(view)
    while filled < total:
        if _HAVE_PREADV:
            n = os.preadv(fd, [view[filled:]], position + filled)
        else:  # Windows: no preadv; FileIO.readinto is just as direct
            with io.FileIO(fd, closefd=False) as f:
                f.seek(position + filled)
                n = f.readinto(view[filled:])
        if not n:
            raise PixelDataError(
                f"{path}: truncated: {total:,} bytes of pixel data expected from byte "
                f"{position:,}, only {filled:,} found"
            )
        filled += n


# --------------------------------------------------------------------------------------------
# pydicom path


def _read_dataset(h: InstanceHeader) -> Dataset:
    import pydicom

    check_pixel_data(h)
    try:
        ds = pydicom.dcmread(h.path, force=True)
    except Exception as exc:  # pydicom raises many types on broken files; all mean the same
        raise PixelDataError(f"{h.path}: cannot read the DICOM file: {exc}") from exc
    if "PixelData" not in ds:
        size = os.path.getsize(h.path)
        if h.has_pixel_data:
            raise PixelDataError(
                f"{h.path}: truncated or damaged: the Pixel Data element the header scan "
                f"found cannot be read to its end (the file has {size:,} bytes)"
            )
        raise PixelDataError(
            f"{h.path}: no Pixel Data (7FE0,0010) element (float/double pixel data and "
            "waveforms are not images medview decodes)"
        )
    meta = ds.file_meta
    if not meta.get("TransferSyntaxUID") and h.transfer_syntax_uid:
        meta.TransferSyntaxUID = h.transfer_syntax_uid
    return ds


def _check_dataset(h: InstanceHeader, ds: Dataset) -> None:
    """The parsed file must agree with the header the output was shaped from."""
    found = {
        "Rows": ds.get("Rows"),
        "Columns": ds.get("Columns"),
        "SamplesPerPixel": ds.get("SamplesPerPixel", 1),
        "BitsAllocated": ds.get("BitsAllocated"),
        "NumberOfFrames": _as_int(ds.get("NumberOfFrames"), default=1),
    }
    expected = {
        "Rows": h.rows,
        "Columns": h.columns,
        "SamplesPerPixel": h.samples_per_pixel,
        "BitsAllocated": h.bits_allocated,
        "NumberOfFrames": h.number_of_frames,
    }
    differ = [f"{k} {found[k]} (header {expected[k]})" for k in found if found[k] != expected[k]]
    if differ:
        raise PixelDataError(
            f"{h.path}: the file no longer matches its scanned header: {', '.join(differ)}; "
            "scan it again"
        )
    ts = str(ds.file_meta.get("TransferSyntaxUID", h.transfer_syntax_uid))
    data = ds.PixelData
    if ts in _NATIVE or ts == DEFLATED_LE:
        needed = _native_nbytes(h, h.number_of_frames)
        if len(data) < needed:
            raise PixelDataError(
                f"{h.path}: truncated or inconsistent: the header declares "
                f"{_describe(h, needed)}, the Pixel Data element holds {len(data):,} bytes"
            )
        return
    _check_encapsulated(h, ts, data)


def _as_int(value, *, default: int) -> object:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return value  # reported as a mismatch with the header, verbatim


def _check_encapsulated(h: InstanceHeader, ts: str, data: bytes) -> None:
    from pydicom.encaps import generate_frames

    n_fragments = _count_fragments(data)
    if n_fragments < h.number_of_frames:
        raise PixelDataError(
            f"{h.path}: the header declares {h.number_of_frames} frame(s), but the "
            f"encapsulated Pixel Data holds {n_fragments} fragment(s) "
            f"({len(data):,} bytes): truncated or inconsistent"
        )
    try:
        first = next(generate_frames(data, number_of_frames=h.number_of_frames))
    except (StopIteration, ValueError) as exc:
        raise PixelDataError(f"{h.path}: cannot find the first compressed frame: {exc}") from exc
    if ts == RLE:
        bound = _MAX_RLE_RATIO * len(first) + 1024
        need = _native_nbytes(h, 1)
        if need > bound:
            raise PixelDataError(
                f"{h.path}: the header declares frames of {h.rows}×{h.columns} pixels "
                f"({need:,} bytes), but the first RLE frame has {len(first):,} bytes, which "
                f"decode to at most {bound:,}: the header does not describe this data"
            )
        return
    dims = _codestream_dims(first)
    if dims is not None:
        rows, cols = dims
        if cols != h.columns or (rows and rows != h.rows):
            raise PixelDataError(
                f"{h.path}: the header declares {h.rows}×{h.columns} pixels, but the first "
                f"compressed frame is {rows}×{cols}: the header does not describe this data"
            )


def _count_fragments(data: bytes) -> int:
    """Number of items after the Basic Offset Table in encapsulated pixel data."""
    count, pos, end = 0, 0, len(data)
    first = True
    while pos + 8 <= end:
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        if (group, elem) != (0xFFFE, 0xE000):
            break  # sequence delimiter or garbage: stop counting
        pos += 8 + length
        if first:
            first = False  # the Basic Offset Table item
            continue
        if pos > end:
            break  # a fragment that runs past the end is not a whole fragment
        count += 1
    return count


def _codestream_dims(data: bytes) -> tuple[int, int] | None:
    """(rows, cols) from a JPEG, JPEG-LS or JPEG 2000 codestream header, None if not found."""
    soc = data.find(b"\xff\x4f\xff\x51", 0, 4096)  # JPEG 2000 SOC + SIZ (also inside a JP2)
    if soc >= 0 and soc + 24 <= len(data):
        xsiz, ysiz, x0, y0 = struct.unpack_from(">IIII", data, soc + 8)
        return ysiz - y0, xsiz - x0
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            rows, cols = struct.unpack_from(">HH", data, pos + 5)
            return rows, cols
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None


def _decoder_for(h: InstanceHeader, ts: str):
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    name = UID(ts).name if ts else "none given"
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise PixelDataError(
            f"{h.path}: transfer syntax {ts} ({name}) cannot be decoded: pydicom has no "
            "decoder for it; convert the file to an uncompressed syntax with another tool "
            "(e.g. `gdcmconv --raw` or `dcmdjpeg`)"
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin"
        raise PixelDataError(
            f"{h.path}: transfer syntax {ts} ({name}) cannot be decoded: no installed "
            f"package can decode it. Install one of the plugins: {missing}"
        )
    return decoder


def _decode_dataset(h: InstanceHeader, ds: Dataset, out: np.ndarray, frames: range) -> None:
    ts = str(ds.file_meta.TransferSyntaxUID)
    decoder = _decoder_for(h, ts)
    k = -1
    try:
        # Always with explicit indices: pydicom 3.0's all-frames iterator hands read-only
        # frames to its sign correction (fails on J2K_pixelrep_mismatch.dcm).
        frame_iter = decoder.iter_array(ds, indices=list(frames))
        for k, (arr, meta) in enumerate(frame_iter):
            _store_frame(h, ds, arr, meta, out[k])
    except PixelDataError:
        raise
    except Exception as exc:  # decoder plugins raise arbitrary types; keep the cause attached
        raise PixelDataError(
            f"{h.path}: decoding {_ts_name(ts)} pixel data failed: {exc}"
        ) from exc
    if k + 1 < len(frames):
        raise PixelDataError(
            f"{h.path}: {len(frames)} frame(s) expected, the decoder gave {k + 1}"
        )


def _ts_name(ts: str) -> str:
    from pydicom.uid import UID

    return f"{ts} ({UID(ts).name})"


def _store_frame(h: InstanceHeader, ds: Dataset, arr: np.ndarray, meta: dict,
                 dst: np.ndarray) -> None:
    from pydicom.pixels import apply_color_lut, convert_color_space

    if arr.dtype.kind not in "iub":
        raise PixelDataError(f"{h.path}: decoded values of type {arr.dtype} are not integers")
    pi = str(meta.get("photometric_interpretation", h.photometric_interpretation)).upper()
    if pi == _PALETTE:
        rgb = apply_color_lut(arr, ds)[..., :3]  # drop an alpha LUT if present
        if rgb.dtype.itemsize > 1:
            rgb = np.right_shift(rgb, 8)  # 16-bit entries: keep the high byte
        dst[...] = rgb
        return
    if pi in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(arr, pi, "RGB")
    elif arr.ndim == 3 and pi != "RGB":
        raise PixelDataError(
            f"{h.path}: colour space {pi} is not supported (expected RGB, YBR_FULL, "
            "YBR_FULL_422 or PALETTE COLOR)"
        )
    if arr.shape != dst.shape:
        raise PixelDataError(
            f"{h.path}: a decoded frame has shape {arr.shape}, the header says {dst.shape}"
        )
    dst[...] = arr  # same size, possibly other signedness/byte order: values wrap as stored


# --------------------------------------------------------------------------------------------
# bits


def _fix_unused_bits(h: InstanceHeader, out: np.ndarray) -> None:
    """Clear (unsigned) or sign-extend (signed) the bits above Bits Stored, in place."""
    if _is_palette(h) or h.bits_allocated == 1:
        return
    if h.samples_per_pixel == 3 and h.photometric_interpretation.upper().startswith("YBR"):
        return  # converted to RGB: the stored bit layout no longer applies
    stored = _bits_stored(h)
    unused = out.dtype.itemsize * 8 - stored
    if unused <= 0:
        return
    # Most files keep the unused bits clean: a read-only range check is about half the cost
    # of rewriting every value, and the volume's load time is dominated by such passes.
    if out.dtype.kind == "i":
        if out.min() >= -(1 << (stored - 1)) and out.max() < (1 << (stored - 1)):
            return
        np.left_shift(out, unused, out=out)
        np.right_shift(out, unused, out=out)  # arithmetic shift: copies the sign bit down
    elif out.max() >= (1 << stored):
        np.bitwise_and(out, (1 << stored) - 1, out=out)
