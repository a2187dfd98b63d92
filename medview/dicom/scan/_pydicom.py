"""The pydicom path of the header scan: everything the fast parser hands over.

:func:`pydicom.dcmread` with deferred reading, for big endian, deflate, writers that switch VR
encoding mid-file, sequences encoded as UN. It produces the same raw tree as
:mod:`medview.dicom.scan._fastparse`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan._decode import (
    _META_FIELDS,
    _TXT,
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
from medview.dicom.scan._fastparse import (
    _CHUNK,
    _PIXEL_TAGS,
    _Fallback,
    _FastParser,
    _meta,
    _truncated,
    _Window,
)

_MAX_INFLATED = 512 * 1024 * 1024


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
        if ds.preamble:
            meta[PREAMBLE] = (None, bytes(ds.preamble))
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
                    raise _truncated(path, el.tag, el.length, size - el.value_tell, size)
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
