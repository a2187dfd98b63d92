"""The pydicom path of pixel decoding: compressed, deflated and unusual native data.

The file is parsed with :func:`pydicom.dcmread`, checked against the header the output was
shaped from (sizes, fragments, the first codestream's dimensions), then decoded frame by frame
with pydicom's decoder plugins into the caller's array; colour is converted to RGB here.
"""

from __future__ import annotations

import os
import re
import struct
from typing import TYPE_CHECKING

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.pixels._layout import (
    _NATIVE,
    _PALETTE,
    DEFLATED_LE,
    RLE,
    _describe,
    _native_nbytes,
    check_pixel_data,
)
from medview.dicom.scan.header import InstanceHeader

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# RLE: a two-byte replicate run expands to at most 128 bytes.
_MAX_RLE_RATIO = 64

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                       0xCE, 0xCF, 0xF7})  # F7 = SOF55, JPEG-LS


# --------------------------------------------------------------------------------------------
# pydicom path


def _read_dataset(h: InstanceHeader) -> Dataset:
    import pydicom

    check_pixel_data(h)
    if h.transfer_syntax_uid and h.transfer_syntax_uid not in _NATIVE | {DEFLATED_LE}:
        _decoder_for(h, h.transfer_syntax_uid)  # name an unsupported syntax before anything
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
    if not isinstance(data, bytes | bytearray):
        # pydicom keeps an element it could not read as None (a damaged length or syntax)
        raise PixelDataError(
            f"{h.path}: the Pixel Data element has no readable value (damaged, or its "
            f"transfer syntax {_ts_label(ts)} does not match how it is encoded)"
        )
    if ts in _NATIVE or ts == DEFLATED_LE:
        needed = _native_nbytes(h, h.number_of_frames)
        if len(data) < needed:
            raise PixelDataError(
                f"{h.path}: truncated or inconsistent: the header declares "
                f"{_describe(h, needed)}, the Pixel Data element holds {len(data):,} bytes"
            )
        return
    _decoder_for(h, ts)
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
        # PS3.5 G.2: one segment per byte of each sample; another count is another image,
        # which pylibjpeg-rle decodes into plausible-looking garbage
        segments = struct.unpack_from("<I", first, 0)[0] if len(first) >= 64 else -1
        expected = h.samples_per_pixel * max(h.bits_allocated // 8, 1)
        if segments != expected:
            raise PixelDataError(
                f"{h.path}: the first RLE frame has {segments} segment(s), but the header's "
                f"{h.samples_per_pixel} sample(s) of {h.bits_allocated} bits need {expected}: "
                "the header does not describe this data"
            )
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


#: names pydicom 3.0 does not know, for messages
_TS_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}
#: pip names of the import names pydicom lists as plugin dependencies
_PIP_NAMES = {"gdcm": "python-gdcm", "PIL": "pillow", "jpeg_ls": "pyjpegls"}
_CONVERT = ("convert the files to an uncompressed transfer syntax with a tool that reads it "
            "(e.g. `gdcmconv --raw IN OUT` or dcmtk's `dcmdjpeg`/`dcmdjpls`)")


def _ts_label(ts: str) -> str:
    """``JPEG 2000 (1.2.840.10008.1.2.4.91)``: the syntax's name and UID, for messages."""
    from pydicom.uid import UID

    if not ts:
        return "(no transfer syntax given)"
    name = _TS_NAMES.get(ts) or UID(ts).name
    return f"{name} ({ts})" if name and name != ts else f"unknown ({ts})"


def _decoder_for(h: InstanceHeader, ts: str):
    """pydicom's decoder for ``ts``, or a PixelDataError that names the syntax and the fix."""
    from pydicom.pixels import get_decoder

    label = _ts_label(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        if ts.startswith("1.2.840.10008.1.2.4.10"):
            what = "it holds video (MPEG/HEVC), not image slices medview reads"
        else:
            what = f"no Python decoder medview uses supports it; {_CONVERT}"
        raise PixelDataError(
            f"{h.path}: transfer syntax {label} has no decoder here: {what}") from exc
    if not decoder.is_available:
        options = [_pip_install(d) for d in decoder.missing_dependencies]
        options = [o for o in dict.fromkeys(options) if o] or ["a pydicom decoder plugin"]
        raise PixelDataError(
            f"{h.path}: transfer syntax {label} has no decoder here: install one of "
            + " or ".join(f"`{o}`" for o in options) + f" into medview's environment, or "
            f"{_CONVERT}"
        )
    return decoder


def _pip_install(missing: str) -> str:
    """``pip install pylibjpeg pylibjpeg-openjpeg`` from pydicom's "pylibjpeg - requires
    numpy, pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0" (numpy is always there)."""
    _, _, deps = missing.partition(" - requires ")
    names = []
    for dep in re.split(r",\s*|\s+and\s+", deps):
        name = re.split(r"[<>=!~ ]", dep.strip(), maxsplit=1)[0]
        if name and name != "numpy":
            names.append(_PIP_NAMES.get(name, name))
    return "pip install " + " ".join(names) if names else ""


def _is_fatal(exc: BaseException) -> bool:
    """Exceptions that must pass through a decoder boundary (the user or Python stopping)."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


def _decode_dataset(h: InstanceHeader, ds: Dataset, out: np.ndarray, frames: range) -> None:
    """Decode ``frames`` into ``out``: in-process plugins first, GDCM in the sandbox last.

    Every plugin that pydicom has for the syntax is tried in pydicom's order, except those of
    :data:`~medview.dicom.pixels._sandbox.SANDBOX_PLUGINS`, which run in the decoder process (they
    can abort the process). A plugin that fails on a frame hands that frame and the rest to
    the next plugin. Rust plugin panics (``pyo3_runtime.PanicException``, a BaseException)
    are caught like errors.
    """
    from medview.dicom.pixels._sandbox import SANDBOX_PLUGINS

    ts = str(ds.file_meta.TransferSyntaxUID)
    decoder = _decoder_for(h, ts)
    # pydicom's own order of preference (its registration order: pylibjpeg before pydicom's
    # pure-Python RLE), not ``available_plugins``, which is sorted by name; native and
    # deflated data have no plugins: "" is pydicom's own decoding
    plugins = list(getattr(decoder, "_available", None) or decoder.available_plugins) or [""]
    if "pyjpegls" in plugins:  # JPEG-LS: CharLS decodes ~7× faster than pylibjpeg's libjpeg
        plugins.insert(0, plugins.pop(plugins.index("pyjpegls")))
    local = [p for p in plugins if p not in SANDBOX_PLUGINS]
    isolated = [p for p in plugins if p in SANDBOX_PLUGINS]
    todo = list(frames)
    done = 0  # frames of `todo` stored in out[...]
    errors: list[str] = []
    for plugin in local:
        try:
            # Always with explicit indices: pydicom 3.0's all-frames iterator hands read-only
            # frames to its sign correction (fails on J2K_pixelrep_mismatch.dcm).
            for arr, meta in decoder.iter_array(ds, indices=todo[done:], decoding_plugin=plugin):
                _store_frame(h, ds, arr, meta, out[done])
                done += 1
        except PixelDataError:
            raise
        except BaseException as exc:  # plugins raise anything, Rust panics included
            if _is_fatal(exc):
                raise
            errors.append(f"{plugin or 'pydicom'}: {type(exc).__name__}: {exc}")
            continue
        if done == len(todo):
            return
        errors.append(f"{plugin}: gave {done} of {len(todo)} frame(s)")
    for plugin in isolated:
        from medview.dicom.pixels._layout import _native_nbytes
        from medview.dicom.pixels._sandbox import decode_in_sandbox

        cap = max(_native_nbytes(h, 1), int(out[0].nbytes)) * 2  # pydicom may widen dtypes
        try:
            decoded = decode_in_sandbox(h.path, ts, plugin, todo[done:], cap)
        except PixelDataError as exc:
            errors.append(f"{plugin} (in the decoder process): "
                          + str(exc).removeprefix(f"{h.path}: "))
            continue
        for arr, pi in decoded:
            _store_frame(h, ds, arr, {"photometric_interpretation": pi or
                                      h.photometric_interpretation}, out[done])
            done += 1
        return
    tried = "; ".join(errors) or "no plugin was tried"
    raise PixelDataError(f"{h.path}: decoding {_ts_label(ts)} pixel data failed: {tried}")


def _store_frame(h: InstanceHeader, ds: Dataset, arr: np.ndarray, meta: dict,
                 dst: np.ndarray) -> None:
    from pydicom.pixels import convert_color_space

    if arr.dtype.kind not in "iub":
        raise PixelDataError(f"{h.path}: decoded values of type {arr.dtype} are not integers")
    pi = str(meta.get("photometric_interpretation", h.photometric_interpretation)).upper()
    if pi == _PALETTE:
        from medview.dicom.pixels.palette import palette_to_rgb

        dst[...] = palette_to_rgb(arr, ds, h.path)
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
