"""The pixel data a header declares: dtype, frame shape, byte counts and the size checks.

Everything here works from the :class:`InstanceHeader` alone; :mod:`medview.dicom.pixels.decoding`
decodes, and checks the declared sizes against the file with :func:`check_pixel_data` before
anything is read or allocated.
"""

from __future__ import annotations

import math
import os

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.scan.header import InstanceHeader

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
RLE = "1.2.840.10008.1.2.5"
_NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE})

# A header-only plausibility bound for compressed data, before the file is parsed: no real
# codec reaches it (RLE ≤ 64×, JPEG lossless ≤ 16×, a blank JPEG 2000 frame a few 1000×),
# while a 100000×100000 claim in a few-kB file exceeds it by orders of magnitude. The exact
# check (codestream dimensions) follows once the file is read.
_MAX_COMPRESSION_RATIO = 100_000

_PALETTE = "PALETTE COLOR"


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
    if n * 8 > file_size:
        # every compressed frame is at least one item: an 8-byte tag and length
        raise PixelDataError(
            f"{h.path}: the header declares {n:,} frame(s) of compressed data, but the whole "
            f"file has {file_size:,} bytes (each frame needs at least 8): NumberOfFrames "
            "does not describe this file"
        )
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
