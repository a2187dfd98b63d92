# Over 400 lines on purpose: one hand-written byte-stream parser, read best whole.
"""The hand-written header parser behind :func:`medview.dicom.scan.scanner.scan_file`.

Why one module: one parser with the bounds checks that guard each of its reads.

A small parser for the common case (a Part 10 file, or a bare data set, encoded explicit or
implicit VR little endian). It walks elements with :mod:`struct`, reads only the values it
needs, skips the others by their declared length (checked against the bytes that remain),
steps into the functional-group sequences only, stops at the pixel data and records its
offset. Anything surprising raises :class:`_Fallback`, and the caller hands over to pydicom
(:mod:`medview.dicom.scan._pydicom`).

Corrupt files must never make the scanner allocate more than the file size or recurse without
bound: every declared length is checked against the bytes remaining, nesting is limited to
:data:`MAX_DEPTH` and the number of elements to :data:`MAX_ELEMENTS`.
"""

from __future__ import annotations

import struct

from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan import _skeleton
from medview.dicom.scan._decode import (
    _META_FIELDS,
    _UNDEFINED,
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    PREAMBLE,
    TOP_SCHEMA,
    RawTree,
    Schema,
    _decode,
)

MAX_DEPTH = 16
MAX_ELEMENTS = 2_000_000
_FIRST_READ = 16 * 1024  # most headers (CT, MR with CSA) end before this
_CHUNK = 64 * 1024

_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # pixel, float pixel, double float pixel
_IMAGE_TYPE = 0x00080008

CMP, VAL = _skeleton.CMP, _skeleton.VAL
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
_VR_NAMES = {vr: vr.decode() for vr in _VRS}
_LONG_VR_NAMES = frozenset(vr.decode() for vr in _LONG_VRS)
_unpack_header = struct.Struct("<HH2sH").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from


class _Fallback(Exception):
    """The fast parser met something it leaves to pydicom."""


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _truncated(path: str, tag: int, length: int, remaining: int, size: int
               ) -> UnreadableFileError:
    return UnreadableFileError(
        path,
        f"truncated: the file ends at byte {size:,} inside element {_tag_str(tag)}"
        f"{_keyword(tag)}, which declares {length:,} bytes ({max(remaining, 0):,} present)",
    )


def _keyword(tag: int) -> str:
    """`` PixelData`` for messages (pydicom's dictionary: only read on this error path)."""
    if tag == _ITEM:
        return " (an item)"
    from medview.dicom.scan._checks import keyword_for_tag

    name = keyword_for_tag(tag)
    return f" {name}" if name else ""


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

    def __init__(self, f, size: int, path: str, buf: bytes | None = None):
        self.f = f
        self.size = size
        self.path = path
        self.start = 0
        self.buf = _read(f, min(_FIRST_READ, size)) if buf is None else buf

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
    __slots__ = ("count", "implicit", "pixel", "rec", "w")

    def __init__(self, w: _Window, implicit: bool, rec: list | None = None):
        self.w = w
        self.implicit = implicit
        self.count = 0
        self.pixel: tuple[int, int, int] | None = None  # tag, value offset, declared length
        # (position, length, kind) of every byte span the parse depended on or kept, for a
        # layout (medview.dicom.scan._skeleton) that reads the next file of a series in one go
        self.rec = rec

    def header(self, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
        """Tag, VR (None if implicit), length and header size of the element at ``pos``."""
        w = self.w
        self.count += 1
        off = w.at(pos, 8)
        rec = self.rec
        buf = w.buf
        group, elem = struct.unpack_from("<HH", buf, off)
        tag = (group << 16) | elem
        if self.count > MAX_ELEMENTS:
            raise UnreadableFileError(w.path, f"more than {MAX_ELEMENTS} data elements")
        if implicit or group == 0xFFFE:
            if rec is not None:
                rec.append((pos, 8, CMP))
            return tag, None, struct.unpack_from("<I", buf, off + 4)[0], 8
        vr = buf[off + 4 : off + 6]
        if vr in _LONG_VRS:
            off = w.at(pos, 12)
            if rec is not None:
                rec.append((pos, 12, CMP))
            return tag, vr.decode(), struct.unpack_from("<I", w.buf, off + 8)[0], 12
        if vr in _VRS:
            if rec is not None:
                rec.append((pos, 8, CMP))
            return tag, vr.decode(), struct.unpack_from("<H", buf, off + 6)[0], 8
        raise _Fallback(f"unknown VR {vr!r} at {pos}")

    def dataset(
        self, pos: int, end: int | None, implicit: bool, schema: Schema, depth: int, top: bool
    ) -> tuple[RawTree, int]:
        """Parse elements from ``pos`` to ``end`` (``None``: to an item delimiter)."""
        w = self.w
        rec = self.rec
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
                if rec is not None:
                    rec.append((pos, vpos - pos, CMP))
            else:
                try:
                    tag, vr, length, hsize = self.header(pos, implicit)
                except EOFError:
                    raise UnreadableFileError(
                        w.path, f"truncated: the file ends at byte {w.size:,} inside the "
                        f"header of the element at byte {pos:,}"
                    ) from None
                vpos = pos + hsize
            if tag == _ITEM_DELIM and end is None and not top:
                return out, vpos
            if tag >> 16 == 0xFFFE:
                raise _Fallback(f"unexpected delimiter {_tag_str(tag)} at {pos}")
            if top and tag in _PIXEL_TAGS:
                if length != _UNDEFINED and length > w.size - vpos:
                    raise _truncated(w.path, tag, length, w.size - vpos, w.size)
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
                raise _truncated(w.path, tag, length, w.size - vpos, w.size)
            if vpos + length > stop:
                raise _Fallback(f"element {_tag_str(tag)} overruns its item")
            pos = vpos + length
            if sub is False:
                continue
            if sub is None:
                if tag == _IMAGE_TYPE:
                    mosaic = b"MOSAIC" in w.read(vpos, length)
                    if rec is not None:  # what comes next depends on it
                        rec.append((vpos, length, CMP))
                elif (tag >> 16 == 0x0029) and (tag & 0xFF) == 0x10 and not mosaic:
                    continue  # CSA header: only read for mosaics
                out[tag] = (vr, w.read(vpos, length))
                if rec is not None:
                    rec.append((vpos, length, VAL))
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
                raise _truncated(w.path, _ITEM, length, w.size - pos - 8, w.size)
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
                    raise _truncated(w.path, _ITEM, ilen, w.size - pos, w.size)
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
        try:
            tag, vr, length, hsize = p.header(pos, False)
        except EOFError:
            raise UnreadableFileError(
                w.path, f"truncated: the file ends at byte {w.size:,} inside the header of the "
                f"file meta element at byte {pos:,}") from None
        if length == _UNDEFINED or length > w.size - pos - hsize:
            raise _Fallback("odd file meta information")
        if tag in _META_FIELDS:
            out[tag] = (vr, w.read(pos + hsize, length))
            if p.rec is not None:
                p.rec.append((pos + hsize, length, VAL))
                if tag == 0x00020010:  # the transfer syntax decides how the rest is read
                    p.rec.append((pos + hsize, length, CMP))
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
    """Raw trees (meta, data set), transfer syntax, little endian, pixel element.

    A file laid out like one read before (the next file of a series) is cut up with that
    file's layout (:mod:`medview.dicom.scan._skeleton`) instead of walked element by element.
    """
    head = _read(f, min(size, max(_FIRST_READ, _skeleton.longest())))
    found = _skeleton.find(head, size)
    if found is not None:
        meta, tree, pixel = found
        ts = _decode(meta.get(0x00020010), "UI", "str", True, ())
        return meta, tree, ts, True, pixel
    w = _Window(f, size, path, head)
    kind = _sniff(w.buf[:132])
    if kind is None:
        raise _not_dicom(path)
    rec: list | None = [] if kind == "part10" else None
    p = _FastParser(w, implicit=kind == "implicit", rec=rec)
    pos = 132 if kind == "part10" else 0
    meta: RawTree = {}
    if kind == "part10" or w.buf[:2] == b"\x02\x00":
        meta, pos = _meta(p, pos)
    if kind == "part10":
        meta[PREAMBLE] = (None, bytes(w.buf[:128]))
        rec.append((0, 128, _skeleton.VAL))
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
    if rec is not None and p.pixel is not None and p.pixel[1] <= _skeleton.MAX_END:
        if p.pixel[1] > len(head):
            f.seek(0)
            head = _read(f, p.pixel[1])
        layout = _skeleton.make_layout(rec, head, meta, tree, p.pixel)
        if layout is not None:
            _skeleton.remember(layout)
    return meta, tree, ts, True, p.pixel
