"""Fast header scan: one DICOM file in, one :class:`InstanceHeader` out.

Two readers produce the same *raw tree* (the undecoded bytes of the elements medview needs)
and one builder turns it into an :class:`InstanceHeader`, so they cannot disagree on how a
value is decoded:

- a small hand-written parser for the common case (a Part 10 file, or a bare data set, encoded
  explicit or implicit VR little endian). It walks elements with :mod:`struct`, reads only the
  values it needs, skips the others by their declared length (checked against the bytes that
  remain), steps into the functional-group sequences only, stops at the pixel data and records
  its offset. Anything surprising makes it hand over to pydicom.
- pydicom (:func:`pydicom.dcmread` with deferred reading) for everything else: big endian,
  deflate, writers that switch VR encoding mid-file, sequences encoded as UN.

Corrupt files must never make the scanner allocate more than the file size or recurse without
bound: every declared length is checked against the bytes remaining, nesting is limited to
:data:`MAX_DEPTH` and the number of elements to :data:`MAX_ELEMENTS`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import warnings
import zlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed

from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom.errors import UnreadableFileError
from medview.dicom.header import FrameInfo, InstanceHeader

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "iter_files",
    "scan_file",
    "scan_file_pydicom",
    "scan_paths",
    "skipped_name",
]

log = logging.getLogger(__name__)

MAX_DEPTH = 16
MAX_ELEMENTS = 2_000_000
_FIRST_READ = 16 * 1024  # most headers (CT, MR with CSA) end before this
_CHUNK = 64 * 1024
_MAX_INFLATED = 512 * 1024 * 1024

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE = {IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE}

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # pixel, float pixel, double float pixel
_CHARSET = 0x00080005
_IMAGE_TYPE = 0x00080008
_SHARED_FG = 0x52009229
_PER_FRAME_FG = 0x52009230
_SIEMENS_MR = "SIEMENS MR HEADER"
_SIEMENS_CSA = "SIEMENS CSA HEADER"

_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
_VR_NAMES = {vr: vr.decode() for vr in _VRS}
_LONG_VR_NAMES = frozenset(vr.decode() for vr in _LONG_VRS)
_unpack_header = struct.Struct("<HH2sH").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_BINARY_FORMAT = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "FL": "f",
    "FD": "d",
    "UV": "Q",
    "SV": "q",
}
_TXT = "txt"  # pseudo-VR of values pydicom had already converted to text

# The data elements medview reads: tag -> (field, default VR, kind). Kinds: "str" (whole
# text, stripped), "strs" (tuple of values), "int"/"float" (first value), "vec2/3/6" (tuple of
# exactly n floats), "ints" (tuple of ints).
_TOP_FIELDS: dict[int, tuple[str, str, str]] = {
    0x00080008: ("image_type", "CS", "strs"),
    0x00080016: ("sop_class_uid", "UI", "str"),
    0x00080018: ("sop_instance_uid", "UI", "str"),
    0x00080020: ("study_date", "DA", "str"),
    0x00080030: ("study_time", "TM", "str"),
    0x00080032: ("acquisition_time", "TM", "str"),
    0x00080050: ("accession_number", "SH", "str"),
    0x00080060: ("modality", "CS", "str"),
    0x00080070: ("manufacturer", "LO", "str"),
    0x00081030: ("study_description", "LO", "str"),
    0x0008103E: ("series_description", "LO", "str"),
    0x00100010: ("patient_name", "PN", "str"),
    0x00100020: ("patient_id", "LO", "str"),
    0x00100030: ("patient_birth_date", "DA", "str"),
    0x00100040: ("patient_sex", "CS", "str"),
    0x00180015: ("body_part", "CS", "str"),
    0x00180050: ("slice_thickness", "DS", "float"),
    0x00180081: ("echo_time", "DS", "float"),
    0x00180086: ("echo_number", "IS", "int"),
    0x00180088: ("spacing_between_slices", "DS", "float"),
    0x00181060: ("trigger_time", "DS", "float"),
    0x00181120: ("gantry_tilt", "DS", "float"),
    0x0020000D: ("study_instance_uid", "UI", "str"),
    0x0020000E: ("series_instance_uid", "UI", "str"),
    0x00200011: ("series_number", "IS", "int"),
    0x00200012: ("acquisition_number", "IS", "int"),
    0x00200013: ("instance_number", "IS", "int"),
    0x00200032: ("image_position", "DS", "vec3"),
    0x00200037: ("image_orientation", "DS", "vec6"),
    0x00200052: ("frame_of_reference_uid", "UI", "str"),
    0x00200100: ("temporal_position", "IS", "int"),
    0x00280002: ("samples_per_pixel", "US", "int"),
    0x00280004: ("photometric_interpretation", "CS", "str"),
    0x00280006: ("planar_configuration", "US", "int"),
    0x00280008: ("number_of_frames", "IS", "int"),
    0x00280010: ("rows", "US", "int"),
    0x00280011: ("columns", "US", "int"),
    0x00280030: ("pixel_spacing", "DS", "vec2"),
    0x00280100: ("bits_allocated", "US", "int"),
    0x00280101: ("bits_stored", "US", "int"),
    0x00280102: ("high_bit", "US", "int"),
    0x00280103: ("pixel_representation", "US", "int"),
    0x00281050: ("window_center", "DS", "float"),
    0x00281051: ("window_width", "DS", "float"),
    0x00281052: ("rescale_intercept", "DS", "float"),
    0x00281053: ("rescale_slope", "DS", "float"),
    0x00281054: ("rescale_type", "LO", "str"),
}
_META_FIELDS: dict[int, tuple[str, str, str]] = {
    0x00020002: ("media_sop_class_uid", "UI", "str"),
    0x00020003: ("media_sop_instance_uid", "UI", "str"),
    0x00020010: ("transfer_syntax_uid", "UI", "str"),
}

# Functional groups: group sequence -> {leaf tag: (FrameInfo field, default VR, kind)}.
_FRAME_GROUPS: dict[int, dict[int, tuple[str, str, str]]] = {
    0x00209113: {0x00200032: ("image_position", "DS", "vec3")},  # PlanePositionSequence
    0x00209116: {0x00200037: ("image_orientation", "DS", "vec6")},  # PlaneOrientationSequence
    0x00289110: {  # PixelMeasuresSequence
        0x00280030: ("pixel_spacing", "DS", "vec2"),
        0x00180050: ("slice_thickness", "DS", "float"),
    },
    0x00289145: {  # PixelValueTransformationSequence
        0x00281053: ("rescale_slope", "DS", "float"),
        0x00281052: ("rescale_intercept", "DS", "float"),
    },
    0x00209111: {  # FrameContentSequence
        0x00209056: ("stack_id", "SH", "str"),
        0x00209057: ("in_stack_position", "UL", "int"),
        0x00209128: ("temporal_position", "UL", "int"),
        0x00209157: ("dimension_index", "UL", "ints"),
    },
    0x00189114: {0x00189082: ("echo_time", "FD", "float")},  # MREchoSequence
}

# Schema of the raw tree: tag -> None for a value to keep, a dict for a sequence to step into.
Schema = dict[int, "Schema | None"]
_GROUP_SCHEMA: Schema = {sq: dict.fromkeys(leaves) for sq, leaves in _FRAME_GROUPS.items()}
_PRIVATE_TAGS = (
    [(g << 16) | e for g in (0x0019, 0x0029) for e in range(0x10, 0x100)]  # creators
    + [(0x0019 << 16) | (b << 8) | 0x0A for b in range(0x10, 0x100)]  # NumberOfImagesInMosaic
    + [(0x0029 << 16) | (b << 8) | 0x10 for b in range(0x10, 0x100)]  # CSA image header
)
TOP_SCHEMA: Schema = {
    **dict.fromkeys(_TOP_FIELDS),
    _CHARSET: None,
    **dict.fromkeys(_PRIVATE_TAGS),
    _SHARED_FG: _GROUP_SCHEMA,
    _PER_FRAME_FG: _GROUP_SCHEMA,
}

# A raw tree maps tags to (VR or None, value bytes) or to a list of item trees.
RawTree = dict[int, "tuple[str | None, bytes] | list[RawTree]"]


class _Fallback(Exception):
    """The fast parser met something it leaves to pydicom."""


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _truncated(path: str, tag: int, length: int, remaining: int) -> UnreadableFileError:
    return UnreadableFileError(
        path,
        f"truncated: element {_tag_str(tag)} declares {length} bytes but only "
        f"{max(remaining, 0)} remain",
    )


# --------------------------------------------------------------------------- fast parser


def _read(f, n: int) -> bytes:
    """``n`` bytes from ``f`` (fewer only at end of file): raw reads may come back short."""
    data = f.read(n)
    if data is None or len(data) >= n or not data:
        return data or b""
    parts = [data]
    got = len(data)
    while got < n:
        more = f.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Window:
    """Random access to a file through one buffer, reading only what is asked for."""

    __slots__ = ("buf", "f", "path", "size", "start")

    def __init__(self, f, size: int, path: str):
        self.f = f
        self.size = size
        self.path = path
        self.start = 0
        self.buf = _read(f, min(_FIRST_READ, size))

    def at(self, pos: int, n: int, small: bool = False) -> int:
        """Offset in ``self.buf`` of ``n`` bytes at file position ``pos`` (read if needed).

        A miss reads a chunk of :data:`_CHUNK` bytes ahead, or just ``n`` bytes if ``small``.
        """
        off = pos - self.start
        if off >= 0 and off + n <= len(self.buf):
            return off
        if pos + n > self.size:
            raise EOFError
        self.f.seek(pos)
        self.buf = _read(self.f, n if small else min(max(n, _CHUNK), self.size - pos))
        self.start = pos
        if len(self.buf) < n:  # the file shrank under us
            raise EOFError
        return 0

    def read(self, pos: int, n: int) -> bytes:
        off = self.at(pos, n)
        return self.buf[off : off + n]


class _FastParser:
    __slots__ = ("count", "implicit", "pixel", "w")

    def __init__(self, w: _Window, implicit: bool):
        self.w = w
        self.implicit = implicit
        self.count = 0
        self.pixel: tuple[int, int, int] | None = None  # tag, value offset, declared length

    def header(self, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
        """Tag, VR (None if implicit), length and header size of the element at ``pos``."""
        w = self.w
        self.count += 1
        off = w.at(pos, 8)
        buf = w.buf
        group, elem = struct.unpack_from("<HH", buf, off)
        tag = (group << 16) | elem
        if self.count > MAX_ELEMENTS:
            raise UnreadableFileError(w.path, f"more than {MAX_ELEMENTS} data elements")
        if implicit or group == 0xFFFE:
            return tag, None, struct.unpack_from("<I", buf, off + 4)[0], 8
        vr = buf[off + 4 : off + 6]
        if vr in _LONG_VRS:
            off = w.at(pos, 12)
            return tag, vr.decode(), struct.unpack_from("<I", w.buf, off + 8)[0], 12
        if vr in _VRS:
            return tag, vr.decode(), struct.unpack_from("<H", buf, off + 6)[0], 8
        raise _Fallback(f"unknown VR {vr!r} at {pos}")

    def dataset(
        self, pos: int, end: int | None, implicit: bool, schema: Schema, depth: int, top: bool
    ) -> tuple[RawTree, int]:
        """Parse elements from ``pos`` to ``end`` (``None``: to an item delimiter)."""
        w = self.w
        out: RawTree = {}
        stop = w.size if end is None else end
        mosaic = False
        while pos < stop:
            if top and w.size - pos < 8:
                break  # trailing bytes too few for an element: pydicom ignores them too
            off = pos - w.start
            buf = w.buf
            if off >= 0 and off + 12 <= len(buf):  # the common case, inlined for speed
                self.count += 1
                if self.count > MAX_ELEMENTS:
                    raise UnreadableFileError(w.path, f"more than {MAX_ELEMENTS} data elements")
                group, elem, vrb, length = _unpack_header(buf, off)
                tag = (group << 16) | elem
                if implicit or group == 0xFFFE:
                    vr = None
                    length = _unpack_u32(buf, off + 4)[0]
                    vpos = pos + 8
                else:
                    vr = _VR_NAMES.get(vrb)
                    if vr is None:
                        raise _Fallback(f"unknown VR {vrb!r} at {pos}")
                    if vr in _LONG_VR_NAMES:
                        length = _unpack_u32(buf, off + 8)[0]
                        vpos = pos + 12
                    else:
                        vpos = pos + 8
            else:
                try:
                    tag, vr, length, hsize = self.header(pos, implicit)
                except EOFError:
                    raise UnreadableFileError(
                        w.path, f"truncated: element header at byte {pos}"
                    ) from None
                vpos = pos + hsize
            if tag == _ITEM_DELIM and end is None and not top:
                return out, vpos
            if tag >> 16 == 0xFFFE:
                raise _Fallback(f"unexpected delimiter {_tag_str(tag)} at {pos}")
            if top and tag in _PIXEL_TAGS:
                if length != _UNDEFINED and length > w.size - vpos:
                    raise _truncated(w.path, tag, length, w.size - vpos)
                if length == _UNDEFINED:
                    self.fragments(vpos)
                self.pixel = (tag, vpos, length)
                return out, vpos
            sub = schema.get(tag, False)
            if length == _UNDEFINED:
                if vr not in (None, "SQ", "UN"):
                    raise _Fallback(f"undefined length on {vr} element {_tag_str(tag)}")
                if vr == "UN" and sub is not False:
                    raise _Fallback(f"sequence {_tag_str(tag)} encoded as UN")
                items, pos = self.items(vpos, None, implicit or vr == "UN", sub or {}, depth + 1)
                if sub:
                    out[tag] = items
                continue
            if length > w.size - vpos:
                raise _truncated(w.path, tag, length, w.size - vpos)
            if vpos + length > stop:
                raise _Fallback(f"element {_tag_str(tag)} overruns its item")
            pos = vpos + length
            if sub is False:
                continue
            if sub is None:
                if tag == _IMAGE_TYPE:
                    mosaic = b"MOSAIC" in w.read(vpos, length)
                elif (tag >> 16 == 0x0029) and (tag & 0xFF) == 0x10 and not mosaic:
                    continue  # CSA header: only read for mosaics
                out[tag] = (vr, w.read(vpos, length))
            elif vr not in (None, "SQ"):
                raise _Fallback(f"sequence {_tag_str(tag)} encoded as {vr}")
            else:
                out[tag] = self.items(vpos, length, implicit, sub, depth + 1)[0]
        if end is None and not top:
            raise _Fallback("item without delimiter")
        return out, pos

    def fragments(self, pos: int) -> None:
        """Check the item structure of encapsulated pixel data, reading item headers only."""
        w = self.w
        while True:
            if w.size - pos < 8:
                raise UnreadableFileError(
                    w.path,
                    "truncated: encapsulated pixel data ends before its sequence delimiter",
                )
            off = w.at(pos, 8, small=True)
            group, elem, length = struct.unpack_from("<HHI", w.buf, off)
            tag = (group << 16) | elem
            if tag == _SEQ_DELIM:
                return
            if tag != _ITEM:
                raise UnreadableFileError(
                    w.path,
                    f"corrupt encapsulated pixel data: {_tag_str(tag)} at byte {pos} where "
                    "an item was expected",
                )
            if length > w.size - pos - 8:
                raise _truncated(w.path, _ITEM, length, w.size - pos - 8)
            pos += 8 + length

    def items(
        self, pos: int, length: int | None, implicit: bool, schema: Schema, depth: int
    ) -> tuple[list[RawTree], int]:
        """Parse the items of a sequence; returns them and the position after the sequence."""
        w = self.w
        if depth > MAX_DEPTH:
            raise UnreadableFileError(w.path, f"sequences nested deeper than {MAX_DEPTH}")
        end = None if length is None else pos + length
        items: list[RawTree] = []
        while end is None or pos < end:
            try:
                tag, _, ilen, _ = self.header(pos, True)
            except EOFError:
                raise UnreadableFileError(
                    w.path, f"truncated: sequence item at byte {pos}"
                ) from None
            pos += 8
            if tag == _SEQ_DELIM:
                if end is None:
                    return items, pos
                raise _Fallback("sequence delimiter in a sequence of defined length")
            if tag != _ITEM:
                raise _Fallback(f"{_tag_str(tag)} where a sequence item was expected")
            if ilen == _UNDEFINED:
                item, pos = self.dataset(pos, None, implicit, schema, depth, False)
            else:
                if ilen > w.size - pos:
                    raise _truncated(w.path, _ITEM, ilen, w.size - pos)
                if end is not None and pos + ilen > end:
                    raise _Fallback("item overruns its sequence")
                item, _ = self.dataset(pos, pos + ilen, implicit, schema, depth, False)
                pos += ilen
            if schema:
                items.append(item)
        return items, pos


def _meta(p: _FastParser, pos: int) -> tuple[RawTree, int]:
    """Parse the file meta group (always explicit VR little endian) from ``pos``."""
    w = p.w
    out: RawTree = {}
    while w.size - pos >= 8:
        off = w.at(pos, 8)
        if struct.unpack_from("<H", w.buf, off)[0] != 0x0002:
            break
        tag, vr, length, hsize = p.header(pos, False)
        if length == _UNDEFINED or length > w.size - pos - hsize:
            raise _Fallback("odd file meta information")
        if tag in _META_FIELDS:
            out[tag] = (vr, w.read(pos + hsize, length))
        pos += hsize + length
    return out, pos


def _sniff(head: bytes) -> str | None:
    """``"part10"``, ``"implicit"``/``"explicit"`` for a bare data set, or None."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "part10"
    if len(head) < 8:
        return None
    group, elem = struct.unpack_from("<HH", head)
    if group not in (0x0002, 0x0008) or elem > 0x1200:
        return None
    if head[4:6] in _VRS:
        return "explicit"
    length = struct.unpack_from("<I", head, 4)[0]
    return "implicit" if length < 0x10000 else None


def _not_dicom(path: str) -> UnreadableFileError:
    return UnreadableFileError(
        path, "not a DICOM file (no DICM prefix and no valid group 0008 element)"
    )


def _scan_fast(path: str, f, size: int) -> tuple[RawTree, RawTree, str, bool, tuple | None]:
    """Raw trees (meta, data set), transfer syntax, little endian, pixel element."""
    w = _Window(f, size, path)
    kind = _sniff(w.buf[:132])
    if kind is None:
        raise _not_dicom(path)
    p = _FastParser(w, implicit=kind == "implicit")
    pos = 132 if kind == "part10" else 0
    meta: RawTree = {}
    if kind == "part10" or w.buf[:2] == b"\x02\x00":
        meta, pos = _meta(p, pos)
    ts = _decode(meta.get(0x00020010), "UI", "str", True, ()) or ""
    if ts in (EXPLICIT_BE, DEFLATED_LE) or (kind == "part10" and not ts):
        raise _Fallback(f"transfer syntax {ts or 'missing'}")
    if ts == IMPLICIT_LE:
        implicit = True
    elif ts:
        implicit = False
    elif w.size - pos >= 8:
        implicit = w.read(pos + 4, 2) not in _VRS
    else:
        implicit = True
    tree, _ = p.dataset(pos, None, implicit, TOP_SCHEMA, 0, True)
    if not ts:
        ts = IMPLICIT_LE if implicit else EXPLICIT_LE
    return meta, tree, ts, True, p.pixel


# --------------------------------------------------------------------------- pydicom path


def _raw_from_element(elem) -> tuple[str | None, bytes]:
    value = elem.value
    if getattr(elem, "is_raw", False):
        return elem.VR, value or b""
    if value is None:
        return _TXT, b""
    if isinstance(value, bytes):
        return elem.VR, value
    if isinstance(value, str):
        return _TXT, value.encode("utf-8")
    if isinstance(value, Iterable):
        return _TXT, "\\".join(str(v) for v in value).encode("utf-8")
    return _TXT, str(value).encode("utf-8")


def _tree_from_dataset(ds, schema: Schema) -> RawTree:
    out: RawTree = {}
    for tag in sorted(set(ds.keys()) & schema.keys()):
        sub = schema[tag]
        if sub is None:
            out[int(tag)] = _raw_from_element(ds.get_item(tag))
        else:
            elem = ds[tag]
            if elem.VR == "SQ":
                out[int(tag)] = [_tree_from_dataset(item, sub) for item in elem.value]
    return out


def _check_inflated_size(path: str, data: bytes) -> None:
    """Refuse a deflated data set that inflates to more than :data:`_MAX_INFLATED` bytes."""
    p = _FastParser(_Window(_BytesFile(data), len(data), path), implicit=False)
    _, pos = _meta(p, 132)
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        d.decompress(data[pos:], _MAX_INFLATED)
    except zlib.error as exc:
        raise UnreadableFileError(path, f"deflated data set is corrupt: {exc}") from None
    if d.unconsumed_tail:
        raise UnreadableFileError(
            path, f"deflated data set inflates to more than {_MAX_INFLATED} bytes"
        )


class _BytesFile:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk


def _scan_pydicom(path: str, size: int, kind: str) -> tuple[RawTree, RawTree, str, bool, tuple]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    deflated = False
    with open(path, "rb") as f:
        head = f.read(_CHUNK)
    if kind == "part10":
        try:
            p = _FastParser(_Window(_BytesFile(head), len(head), path), implicit=False)
            meta_raw, _ = _meta(p, 132)
            deflated = _decode(meta_raw.get(0x00020010), "UI", "str", True, ()) == DEFLATED_LE
        except (_Fallback, EOFError):
            pass
    if deflated:
        with open(path, "rb") as f:
            _check_inflated_size(path, f.read())
    try:
        ds = pydicom.dcmread(path, force=kind != "part10", defer_size=None if deflated else 4096)
        implicit, little = ds.original_encoding
        meta: RawTree = {}
        fm = getattr(ds, "file_meta", None)
        if fm is not None:
            meta = _tree_from_dataset(fm, dict.fromkeys(_META_FIELDS))
        pixel = None
        for tag in _PIXEL_TAGS:
            if tag in ds:
                el = ds.get_item(tag, keep_deferred=True)
                pixel = (tag, None if deflated else el.value_tell, el.length)
                break
        if not deflated:
            for t in sorted(ds.keys()):
                el = ds.get_item(t, keep_deferred=True)
                raw = getattr(el, "is_raw", False) and el.length != _UNDEFINED
                if raw and el.value_tell + el.length > size:
                    raise _truncated(path, el.tag, el.length, size - el.value_tell)
        tree = _tree_from_dataset(ds, TOP_SCHEMA)
    except UnreadableFileError:
        raise
    except InvalidDicomError as exc:
        raise UnreadableFileError(path, f"not a DICOM file ({exc})") from None
    except RecursionError:
        raise UnreadableFileError(path, "sequences nested too deeply") from None
    except Exception as exc:  # a scanner must survive any file: turn failures into reasons
        raise UnreadableFileError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})") from None
    ts = _decode(meta.get(0x00020010), "UI", "str", True, ()) or ""
    if not ts:
        ts = IMPLICIT_LE if implicit else (EXPLICIT_LE if little else EXPLICIT_BE)
    return meta, tree, ts, bool(little), pixel


# --------------------------------------------------------------------------- decoding


_PLAIN_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100", "ISO 2022 IR 6", "ISO 2022 IR 100"}


def _text(raw: bytes, charsets: tuple[str, ...]) -> str:
    if all(c in _PLAIN_CHARSETS for c in charsets):
        return raw.decode("latin-1")
    if charsets == ("ISO_IR 192",):
        return raw.decode("utf-8", "replace")
    from pydicom.charset import convert_encodings, decode_bytes

    try:
        return decode_bytes(raw, convert_encodings(list(charsets)), {0x5C, 0x3D, 0x5E})
    except (ValueError, LookupError, UnicodeError):
        return raw.decode("latin-1")  # a damaged Specific Character Set: keep the bytes


def _values(raw: tuple[str | None, bytes], default_vr: str, little: bool, charsets) -> list:
    vr, data = raw
    if vr in (None, "UN", "OB", "OW"):
        vr = default_vr
    fmt = _BINARY_FORMAT.get(vr) if vr != _TXT else None
    if fmt is not None:
        size = struct.calcsize(fmt)
        n = len(data) // size
        return list(struct.unpack(f"{'<' if little else '>'}{n}{fmt}", data[: n * size]))
    text = _text(data, charsets) if charsets else data.decode("latin-1")
    return [v.strip(" \x00") for v in text.split("\\")]


def _to_int(v) -> int | None:
    if isinstance(v, int):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return int(f) if f.is_integer() else None


def _to_float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _decode(raw, default_vr: str, kind: str, little: bool, charsets):
    """Decode one raw value as ``kind``; None when absent or unusable."""
    if raw is None or isinstance(raw, list):
        return None
    if kind == "str":
        vr, data = raw
        if vr in _BINARY_FORMAT:
            return "\\".join(str(v) for v in _values(raw, default_vr, little, charsets))
        text = _text(data, charsets) if charsets else data.decode("latin-1")
        return text.strip(" \x00")
    values = _values(raw, default_vr, little, charsets)
    if kind == "strs":
        return tuple(values) if values != [""] else ()
    if kind == "int":
        return _to_int(values[0]) if values else None
    if kind == "float":
        return _to_float(values[0]) if values else None
    if kind == "ints":
        ints = [_to_int(v) for v in values if v != ""]
        return tuple(ints) if ints and None not in ints else None
    n = int(kind[3:])  # vecN
    floats = [_to_float(v) for v in values]
    return tuple(floats) if len(floats) == n and None not in floats else None


def _charsets(tree: RawTree) -> tuple[str, ...]:
    raw = tree.get(_CHARSET)
    if raw is None or isinstance(raw, list):
        return ()
    charsets = tuple(v.strip(" \x00") for v in raw[1].decode("latin-1").split("\\"))
    # the plain ones decode as latin-1, which is what an empty tuple means to _text's callers
    return () if all(c in _PLAIN_CHARSETS for c in charsets) else charsets


def _private(tree: RawTree, group: int, creator: str, elem: int) -> tuple | None:
    for block in range(0x10, 0x100):
        raw = tree.get((group << 16) | block)
        if isinstance(raw, tuple) and raw[1].decode("latin-1").strip(" \x00") == creator:
            value = tree.get((group << 16) | (block << 8) | elem)
            return value if isinstance(value, tuple) else None
    return None


_csareader = None


def _csa():
    global _csareader
    if _csareader is None:
        with warnings.catch_warnings():
            # nibabel.nicom warns on import that its DICOM readers are experimental; we only
            # use its CSA header parser
            warnings.simplefilter("ignore", UserWarning)
            from nibabel.nicom import csareader
        _csareader = csareader
    return _csareader


def _siemens_mosaic(tree: RawTree, little: bool) -> tuple[int | None, tuple | None]:
    count = None
    raw = _private(tree, 0x0019, _SIEMENS_MR, 0x0A)
    if raw is not None:
        count = _decode(raw, "US", "int", little, ())
    normal = None
    raw = _private(tree, 0x0029, _SIEMENS_CSA, 0x10)
    if raw is not None and raw[1]:
        csa = _csa()
        try:
            info = csa.read(raw[1])
            if count is None:
                n = csa.get_n_mosaic(info)
                count = None if n is None else int(n)
            vec = csa.get_slice_normal(info)
            if vec is not None and len(vec) == 3:
                normal = tuple(float(x) for x in vec)
        except (
            csa.CSAError,
            AssertionError,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            UnicodeDecodeError,
            OverflowError,
            struct.error,
        ) as exc:
            # nibabel asserts on damaged CSA headers; they only cost us the mosaic hints
            log.debug("damaged Siemens CSA header ignored: %r", exc)
    return count, normal


def _frames(tree: RawTree, little: bool, charsets) -> tuple[FrameInfo, ...]:
    per_frame = tree.get(_PER_FRAME_FG)
    if not isinstance(per_frame, list):
        return ()
    shared_items = tree.get(_SHARED_FG)
    shared = shared_items[0] if isinstance(shared_items, list) and shared_items else {}
    frames = []
    for item in per_frame:
        values: dict = {}
        for sq, leaves in _FRAME_GROUPS.items():
            group = item.get(sq)
            if not (isinstance(group, list) and group):
                group = shared.get(sq)
            if not (isinstance(group, list) and group):
                continue
            for tag, (name, vr, kind) in leaves.items():
                values[name] = _decode(group[0].get(tag), vr, kind, little, charsets)
        frames.append(FrameInfo(**values))
    return tuple(frames)


def _build(
    path: str,
    st: os.stat_result,
    meta: RawTree,
    tree: RawTree,
    ts: str,
    little: bool,
    pixel: tuple | None,
) -> InstanceHeader:
    charsets = _charsets(tree)
    h = InstanceHeader(path=path, file_size=st.st_size, mtime_ns=st.st_mtime_ns)
    h.transfer_syntax_uid = ts
    fields = _TOP_FIELDS
    for tag, raw in tree.items():
        spec = fields.get(tag)
        if spec is not None:
            value = _decode(raw, spec[1], spec[2], little, charsets)
            if value is not None:
                setattr(h, spec[0], value)
    if not h.sop_class_uid:
        h.sop_class_uid = _decode(meta.get(0x00020002), "UI", "str", True, ()) or ""
    if not h.sop_instance_uid:
        h.sop_instance_uid = _decode(meta.get(0x00020003), "UI", "str", True, ()) or ""
    if h.number_of_frames < 1:
        h.number_of_frames = 1
    if pixel is None:
        from pydicom.uid import UID

        name = UID(h.sop_class_uid).name if h.sop_class_uid else "unknown SOP class"
        raise UnreadableFileError(
            path, f"no pixel data (a DICOMDIR/SR/presentation state? SOP class: {name})"
        )
    tag, offset, length = pixel
    h.has_pixel_data = True
    h.pixel_data_length = -1 if length == _UNDEFINED else int(length)
    if tag == _PIXEL_DATA and ts in _NATIVE and length != _UNDEFINED and offset is not None:
        h.pixel_data_offset = int(offset)
    if "MOSAIC" in h.image_type:
        h.mosaic_count, h.csa_slice_normal = _siemens_mosaic(tree, little)
    h.frames = _frames(tree, little, charsets)
    return h


# --------------------------------------------------------------------------- public API


def _stat(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not os.path.isfile(path):
        raise UnreadableFileError(path, "not a regular file")
    if st.st_size == 0:
        raise UnreadableFileError(path, "empty file (0 bytes)")
    return st


def scan_file(path: str | os.PathLike) -> InstanceHeader:
    """Read the header of one DICOM file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    InstanceHeader
        Everything medview needs of the file, including the byte offset of native pixel data.

    Raises
    ------
    UnreadableFileError
        The file is not DICOM, is truncated, has no pixel data or cannot be parsed; its
        ``reason`` says which.
    """
    path = os.fspath(path)
    st = _stat(path)
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: _Window does the buffering
            meta, tree, ts, little, pixel = _scan_fast(path, f, st.st_size)
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    except _Fallback:
        with open(path, "rb") as f:
            kind = _sniff(f.read(132))
        meta, tree, ts, little, pixel = _scan_pydicom(path, st.st_size, kind or "part10")
    return _build(path, st, meta, tree, ts, little, pixel)


def scan_file_pydicom(path: str | os.PathLike) -> InstanceHeader:
    """Like :func:`scan_file` but always through pydicom (reference for tests, fallback).

    Raises
    ------
    UnreadableFileError
        As :func:`scan_file`.
    """
    path = os.fspath(path)
    st = _stat(path)
    try:
        with open(path, "rb") as f:
            kind = _sniff(f.read(132))
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if kind is None:
        raise _not_dicom(path)
    meta, tree, ts, little, pixel = _scan_pydicom(path, st.st_size, kind)
    return _build(path, st, meta, tree, ts, little, pixel)


_JUNK = {"THUMBS.DB", "DESKTOP.INI", "DICOMDIR"}


def skipped_name(name: str) -> bool:
    """True for names a folder walk skips: hidden files and folders (``.*``), OS litter
    (Thumbs.db, desktop.ini) and DICOMDIR files, which index a medium's files rather than
    being images (pass a DICOMDIR explicitly to read its records)."""
    return name.startswith(".") or name.upper() in _JUNK


def iter_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """All regular files under ``paths`` (folders recursively, sorted, without the names
    :func:`skipped_name` rejects).

    A path naming a file is returned as given, hidden or not; missing paths are ignored.
    """
    out: list[str] = []

    def walk(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if skipped_name(e.name):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path)
                elif e.is_file():
                    out.append(e.path)
            except OSError:
                continue

    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            walk(p)
        elif os.path.isfile(p):
            out.append(p)
    return out


def _scan_batch(paths: list[str]) -> tuple[list[InstanceHeader], list[tuple[str, str]]]:
    headers: list[InstanceHeader] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        try:
            headers.append(scan_file(p))
        except UnreadableFileError as exc:
            errors.append((exc.path, exc.reason))
    return headers, errors


_FIELDS = tuple(f.name for f in dataclasses.fields(InstanceHeader))
_FRAME_FIELDS = tuple(f.name for f in dataclasses.fields(FrameInfo))


def _pack(h: InstanceHeader) -> tuple:
    """A header as plain tuples: pickles 3× faster than the dataclass, for the pool."""
    values = [getattr(h, name) for name in _FIELDS]
    if h.frames:
        values[_FIELDS.index("frames")] = tuple(
            tuple(getattr(f, name) for name in _FRAME_FIELDS) for f in h.frames
        )
    return tuple(values)


def _unpack(values: tuple) -> InstanceHeader:
    h = InstanceHeader(*values)
    if h.frames:
        h.frames = tuple(FrameInfo(*f) for f in h.frames)
    return h


def _scan_batch_packed(paths: list[str]) -> tuple[list[tuple], list[tuple[str, str]]]:
    headers, errors = _scan_batch(paths)
    return [_pack(h) for h in headers], errors


POOL_MIN_FILES = 4000  # measured: below this, spawning the pool costs what it saves
_BATCH = 200


def default_workers(n_files: int) -> int:
    """Processes worth using for ``n_files`` files: 1 below :data:`POOL_MIN_FILES`."""
    if n_files < POOL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def scan_batches(
    files: list[str],
    *,
    workers: int | None = None,
    batch_size: int | None = None,
) -> Iterable[tuple[list[InstanceHeader], list[tuple[str, str]], int]]:
    """Scan ``files`` in batches; yields (headers, errors, files done) per batch.

    With ``workers`` > 1 the batches run in a spawn process pool and arrive in completion
    order. Stop iterating to cancel: pending batches are dropped.
    """
    workers = default_workers(len(files)) if workers is None else max(1, int(workers))
    if batch_size is None:
        # several batches per worker keep the processes busy to the end
        per_worker = -(-len(files) // (workers * 4)) if workers > 1 else _BATCH
        batch_size = max(16, min(_BATCH, per_worker))
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    if workers <= 1 or len(batches) <= 1:
        for b in batches:
            yield (*_scan_batch(b), len(b))
        return
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    pending = dict(enumerate(batches))
    try:
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        try:
            futures = {pool.submit(_scan_batch_packed, b): i for i, b in pending.items()}
            for fut in as_completed(futures):
                packed, errors = fut.result()
                i = futures[fut]
                del pending[i]
                yield [_unpack(v) for v in packed], errors, len(batches[i])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    except (BrokenProcessPool, OSError) as exc:
        # e.g. a __main__ that cannot be re-imported (python - < script): finish here
        log.warning("header scan process pool failed (%s); scanning in this process", exc)
    for i in sorted(pending):
        yield (*_scan_batch(batches[i]), len(batches[i]))


def scan_paths(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    progress: Progress = NO_PROGRESS,
    workers: int | None = None,
) -> tuple[list[InstanceHeader], list[tuple[str, str]]]:
    """Scan every file under ``paths`` (folders recursively).

    Parameters
    ----------
    paths : path or iterable of paths
        Files and folders.
    progress : Progress, optional
        Receives ``update(fraction, message)`` per batch; cancellation is checked per batch.
    workers : int, optional
        Processes to use; default: one below :data:`POOL_MIN_FILES` files, else up to the
        number of CPUs (at most 4).

    Returns
    -------
    headers : list of InstanceHeader
        The readable files, in path order.
    errors : list of (path, reason)
        The files that could not be used, in path order.

    Raises
    ------
    Cancelled
        When ``progress`` was cancelled.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    progress = progress if progress is not None else NO_PROGRESS
    files = iter_files(paths)
    headers: list[InstanceHeader] = []
    errors: list[tuple[str, str]] = []
    done = 0
    progress.check()
    for h, e, n in scan_batches(files, workers=workers):
        headers.extend(h)
        errors.extend(e)
        done += n
        progress.update(done / max(len(files), 1), f"scanned {done}/{len(files)} files")
        progress.check()
    headers.sort(key=lambda h: h.path)
    errors.sort()
    return headers, errors
