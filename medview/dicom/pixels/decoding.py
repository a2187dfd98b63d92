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

Where the parts live
    Dtype, frame shape, byte counts and :func:`check_pixel_data` in
    :mod:`medview.dicom.pixels._layout`; the pydicom path and its checks of the parsed file in
    :mod:`medview.dicom.pixels._compressed`; the entry points, the fast path and the bit fixing
    here.
"""

from __future__ import annotations

import io
import os

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.pixels._compressed import _check_dataset, _decode_dataset, _read_dataset
from medview.dicom.pixels._layout import (
    _NATIVE,
    _PALETTE,
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    RLE,
    _bits_stored,
    _is_palette,
    _native_nbytes,
    check_pixel_data,
    frame_shape,
    stored_dtype,
)
from medview.dicom.scan.header import InstanceHeader

__all__ = [
    "DECODER_GROUPS",
    "check_pixel_data",
    "decode",
    "decode_dataset",
    "decode_file",
    "decode_into",
    "decoders_available",
    "frame_shape",
    "reads_frames_at_offset",
    "stored_dtype",
]

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

_HAVE_PREADV = hasattr(os, "preadv")


# --------------------------------------------------------------------------------------------
# argument checks


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


def decode_file(path: str | os.PathLike) -> np.ndarray:
    """The stored pixel values of the DICOM file at ``path``, decoded the checked way.

    For callers that hold a file, not a header (de-identification masking burned-in text,
    backup verification): the header is scanned first, so the declared sizes are checked
    against the file before anything is allocated, and GDCM decodes only in the decoder
    process. Same values as :func:`decode` (all frames).

    Raises
    ------
    PixelDataError
        The file is not DICOM, has no pixel data, lies about its sizes, or cannot be decoded;
        the message names the path and the reason.
    """
    from medview.dicom.errors import UnreadableFileError
    from medview.dicom.scan.scanner import scan_file

    try:
        h = scan_file(path)
    except UnreadableFileError as exc:
        raise PixelDataError(str(exc)) from None
    return decode(h)


def decode_dataset(ds) -> np.ndarray:
    """:func:`decode_file` for a pydicom dataset held in memory (e.g. read back from an
    archive): it is written to a private temporary file (0600, removed after) and decoded
    from there, with the same checks and the same decoder process.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(suffix=".dcm", prefix="medview-decode-")
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                ds.save_as(f, enforce_file_format=True)
            except Exception as exc:  # pydicom raises many kinds on inconsistent datasets
                raise PixelDataError(f"cannot write the dataset to decode it: "
                                     f"{type(exc).__name__}: {exc}") from None
        return decode_file(tmp)
    finally:
        os.unlink(tmp)


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


def reads_frames_at_offset(h: InstanceHeader) -> bool:
    """True when each frame of ``h``'s file can be read on its own, at its byte offset
    (native syntax, offset known from the scan): no need to decode the whole file."""
    return _fast_path(h)


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
