"""The wire format shared by the offload client and server: a *bundle*.

Why one module: encoding and decoding of one format side by side, so they cannot drift (the
arrays' blobs in :mod:`medview.remote.wire_arrays`, likewise both ways).

A bundle carries a JSON header and binary blobs in one stream, so a job's inputs upload in one
request and its results download in one response::

    b"MVB1" | u64 little-endian header length | header (UTF-8 JSON) | blob 0 | blob 1 | …

A result may instead come *header last*, so a worker can write each step's output as soon as
that step has made it (the server streams it to the client while the later steps compute)::

    b"MVB2" + zeros to 64 bytes | blob 0 | blob 1 | … | header | u64 header length | b"MVB2"

The header is ``{"meta": {...}, "items": [item, ...]}``; each item has ``name``, ``kind`` and,
when it has a blob, ``nbytes`` (the blob's length on the wire; blobs follow in item order):

- ``volume`` / ``labelmap``: ``dtype`` (little-endian numpy string), ``geometry`` (shape,
  spacing (x, y, z) mm, origin LPS mm, direction 3×3 columns = index axes), ``metadata`` (JSON
  values only), ``segments`` for label maps and ``encoding``: ``raw`` (C-order bytes) or
  ``blosc2`` (chunks of at most 16 MiB, each ``u64 length | blosc2 chunk``; zstd + shuffle).
- ``table``: ``table`` (rows, title, units) inline, no blob.
- ``model``: a trained pixel classifier's bytes (``PixelClassifier.to_bytes``: JSON and plain
  arrays, never a pickle). The server does not even parse them: no step takes a model input.
- ``file``: a file a parameter refers to (``filename``), e.g. a saved classifier model.

Every array's decoded size (shape × dtype) is known from the header before any blob is read:
:func:`declared_nbytes` sums it, so a reader can refuse a bundle that would decode to more
than it accepts before it decompresses anything, and the blosc2 decoder never writes more than
the declared size. The header's JSON is at most :data:`MAX_HEADER_BYTES` and nested at most
:data:`MAX_JSON_DEPTH` deep.

Floats go through JSON exactly (``repr``), so the geometry that comes back can be compared
with the geometry sent without a tolerance.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medview.core.labelmap import LabelMap, Segment
from medview.core.table import Table
from medview.core.volume import Volume
from medview.remote.bounded_json import MAX_JSON_DEPTH, JSONLimitError, json_depth, loads_bounded
from medview.remote.wire_arrays import (
    DTYPES,
    ENCODINGS,
    WireError,
    available_encodings,
    decode_array,
    encode_array,
)

__all__ = [
    "ENCODINGS",
    "MAX_JSON_DEPTH",
    "Bundle",
    "EncodedModel",
    "WireError",
    "available_encodings",
    "declared_nbytes",
    "decode_bundle",
    "encode_bundle",
    "encode_item",
    "geometry_of",
    "json_depth",
    "same_geometry",
    "stream_footer",
    "stream_prefix",
]

MAGIC = b"MVB1"
#: the header-last layout (:func:`stream_prefix`, :func:`stream_footer`)
MAGIC_LAST = b"MVB2"
#: where the first blob of a header-last bundle starts (aligned: arrays map in place)
STREAM_PREFIX_BYTES = 64
_HEAD = struct.Struct("<4sQ")
_FOOT = struct.Struct("<Q4s")
#: the largest header a reader accepts (a header is JSON: geometry, names, small tables)
MAX_HEADER_BYTES = 64 << 20
_MAX_DIMS = 4


# -- geometry -------------------------------------------------------------------------------
def geometry_of(volume: Volume) -> dict:
    """The geometry header of ``volume``: array shape, spacing, origin, direction."""
    return {"shape": [int(s) for s in volume.array.shape],
            "spacing": [float(s) for s in volume.spacing],
            "origin": [float(o) for o in volume.origin],
            "direction": [[float(v) for v in row] for row in np.asarray(volume.direction)]}


def same_geometry(a: Mapping, b: Mapping) -> bool:
    """True when two geometry headers describe the same grid (spatial shape and placement).

    Exact comparison: both sides went through the same JSON encoding of the same floats.
    """
    return (list(a["shape"])[:3] == list(b["shape"])[:3] and list(a["spacing"]) ==
            list(b["spacing"]) and list(a["origin"]) == list(b["origin"]) and
            [list(r) for r in a["direction"]] == [list(r) for r in b["direction"]])


# -- values ---------------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def json_metadata(meta: Mapping[str, Any]) -> dict:
    """The JSON-representable part of a metadata mapping (other values are dropped)."""
    out = {}
    for k, v in meta.items():
        v = _plain(v)
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = v
    return out


def _segments(labels: LabelMap) -> list[dict]:
    return [{"number": s.number, "name": s.name, "color": list(s.color),
             "category": list(s.category), "type": list(s.type)} for s in labels.segments]


@dataclass(frozen=True)
class EncodedModel:
    """A model item's bytes, not yet parsed (a reader parses only what it uses)."""

    data: bytes

    def load(self):
        """The :class:`~medview.core.segmentation.classifier.PixelClassifier` (safe format only).

        Raises
        ------
        medview.core.segmentation.classifier.ModelFileError
            If the bytes are not a model in the safe format.
        """
        from medview.core.segmentation.classifier import PixelClassifier

        return PixelClassifier.from_bytes(self.data)


@dataclass
class Bundle:
    """A decoded bundle: ``meta`` and named values (Volume, LabelMap, Table, bytes)."""

    meta: dict = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    #: name → item header as it came over the wire (geometry, kind, encoding, nbytes …)
    items: dict[str, dict] = field(default_factory=dict)


def encode_item(name: str, value: Any, *, encoding: str = "raw",
                metadata: Mapping | None = None) -> tuple[dict, list[bytes | memoryview]]:
    """One value of a bundle: its header item and its blob's parts (see :func:`encode_bundle`;
    ``metadata`` replaces a volume's own).

    Raises
    ------
    WireError
        On a value that cannot travel.
    """
    item: dict[str, Any] = {"name": name}
    parts: list[bytes | memoryview] = []
    if isinstance(value, Volume):
        item["kind"] = "labelmap" if isinstance(value, LabelMap) else "volume"
        item["encoding"] = encoding
        item["dtype"], parts = encode_array(value.array, encoding)
        item["geometry"] = geometry_of(value)
        item["metadata"] = json_metadata(value.metadata if metadata is None else metadata)
        if isinstance(value, LabelMap):
            item["segments"] = _segments(value)
    elif isinstance(value, Table):
        item["kind"] = "table"
        item["table"] = {"rows": _plain(list(value.rows)), "title": value.title,
                         "units": dict(value.units)}
    elif isinstance(value, tuple) and len(value) == 3 and value[0] == "file":
        item["kind"], item["filename"] = "file", str(value[1])
        parts = [bytes(value[2])]
    elif isinstance(value, EncodedModel):
        item["kind"], parts = "model", [value.data]
    elif hasattr(value, "to_bytes") and hasattr(value, "predict"):
        item["kind"] = "model"
        try:
            parts = [value.to_bytes()]
        except ValueError as exc:  # a model kind without a safe format
            raise WireError(f"{name}: {exc}") from None
    else:
        raise WireError(f"{name}: a {type(value).__name__} cannot be sent")
    if parts:
        item["nbytes"] = sum(len(p) for p in parts)
    return item, parts


def stream_prefix() -> bytes:
    """The first bytes of a header-last bundle (the blobs follow)."""
    return MAGIC_LAST + bytes(STREAM_PREFIX_BYTES - len(MAGIC_LAST))


def stream_footer(meta: Mapping[str, Any], items: list[dict]) -> bytes:
    """The end of a header-last bundle whose blobs (of ``items``, in order) were written."""
    header = json.dumps({"meta": dict(meta), "items": items}, allow_nan=False).encode()
    return header + _FOOT.pack(len(header), MAGIC_LAST)


def encode_bundle(meta: Mapping[str, Any], values: Mapping[str, Any], *,
                  encoding: str = "raw", metadata: Mapping[str, Mapping] | None = None
                  ) -> list[bytes | memoryview]:
    """Encode ``values`` with ``meta`` as a bundle; returns the parts to send in order.

    Parameters
    ----------
    meta : mapping
        JSON header data (the chain, the job's options, the main result's name …).
    values : mapping
        name → Volume, LabelMap, Table, ``PixelClassifier`` (kind ``model``), or
        ``("file", filename, bytes)``.
    encoding : {"raw", "blosc2"}
        How arrays travel.
    metadata : mapping, optional
        name → the metadata to send for that volume instead of its own (the client sends
        de-identified metadata this way).

    Raises
    ------
    WireError
        On a value that cannot travel.
    """
    items: list[dict] = []
    blobs: list[list[bytes | memoryview]] = []
    for name, value in values.items():
        meta_v = None if metadata is None else metadata.get(name)
        item, parts = encode_item(name, value, encoding=encoding, metadata=meta_v)
        items.append(item)
        blobs.append(parts)
    header = json.dumps({"meta": dict(meta), "items": items}, allow_nan=False).encode()
    # spaces after the JSON put the first blob on a 64-byte boundary: a reader can map the
    # arrays in place (aligned) instead of copying them
    header += b" " * (-(_HEAD.size + len(header)) % 64)
    out: list[bytes | memoryview] = [_HEAD.pack(MAGIC, len(header)), header]
    for parts in blobs:
        out.extend(parts)
    return out


def bundle_bytes(parts: Iterable[bytes | memoryview]) -> bytes:
    """Join the parts of :func:`encode_bundle` into one bytes object."""
    buf = io.BytesIO()
    for p in parts:
        buf.write(p)
    return buf.getvalue()


def iter_chunks(parts: Iterable[bytes | memoryview], size: int = 4 << 20) -> Iterator[bytes]:
    """The parts as chunks of at most ``size`` bytes (for a streamed upload)."""
    for p in parts:
        mv = memoryview(p)
        for start in range(0, len(mv), size):
            yield bytes(mv[start:start + size])


def read_header(data: bytes | memoryview, *, max_bytes: int = MAX_HEADER_BYTES) -> tuple[dict, int]:
    """The header of a bundle (either layout) and the offset of its first blob.

    Raises
    ------
    WireError
        If it is not a bundle, or its header is larger than ``max_bytes``, deeper than
        :data:`MAX_JSON_DEPTH` or not JSON.
    """
    header, start, _ = _layout(data, max_bytes)
    return header, start


def _layout(data: bytes | memoryview, max_bytes: int = MAX_HEADER_BYTES
            ) -> tuple[dict, int, int]:
    """``(header, first blob's offset, end of the last blob)`` of a bundle."""
    mv = memoryview(data)
    if len(mv) < _HEAD.size:
        raise WireError("not a medview bundle: too short")
    magic = bytes(mv[:4])
    if magic == MAGIC:
        _, hlen = _HEAD.unpack_from(mv, 0)
        where, start = _HEAD.size, _HEAD.size + hlen
    elif magic == MAGIC_LAST:  # header last: the footer says its length
        if len(mv) < STREAM_PREFIX_BYTES + _FOOT.size:
            raise WireError("not a medview bundle: too short")
        hlen, end_magic = _FOOT.unpack_from(mv, len(mv) - _FOOT.size)
        if end_magic != MAGIC_LAST:
            raise WireError("the bundle is incomplete (its header-last footer is missing)")
        where = len(mv) - _FOOT.size - hlen
        start = STREAM_PREFIX_BYTES
    else:
        raise WireError("not a medview bundle (bad magic)")
    if hlen > max_bytes:
        raise WireError(f"bundle header of {hlen} bytes exceeds the limit of {max_bytes} bytes")
    if where < _HEAD.size or where + hlen > len(mv) or (magic == MAGIC_LAST and
                                                        where < start):
        raise WireError(f"bundle header of {hlen} bytes is truncated")
    try:
        header = loads_bounded(bytes(mv[where:where + hlen]), "bundle header",
                               max_bytes=max_bytes)
    except JSONLimitError as exc:
        raise WireError(str(exc)) from None
    if not isinstance(header, dict) or not isinstance(header.get("items"), list):
        raise WireError("bundle header has no item list")
    return header, start, (len(mv) if magic == MAGIC else where)


def declared_nbytes(header: Mapping) -> int:
    """The bytes the header's arrays decode to (shape × dtype), before anything is decoded.

    Raises
    ------
    WireError
        If an array item has no valid shape or dtype.
    """
    total = 0
    for item in header.get("items") or []:
        if not isinstance(item, dict) or item.get("kind") not in ("volume", "labelmap"):
            continue
        name = str(item.get("name"))
        dtype = item.get("dtype")
        shape = (item.get("geometry") or {}).get("shape") if isinstance(
            item.get("geometry"), dict) else None
        if dtype not in DTYPES:
            raise WireError(f"{name}: dtype {dtype!r} is not allowed")
        if (not isinstance(shape, list) or not 1 <= len(shape) <= _MAX_DIMS
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40
                           for d in shape)):
            raise WireError(f"{name}: shape {shape!r} is not a list of 1–{_MAX_DIMS} sizes")
        n = np.dtype(dtype).itemsize
        for d in shape:  # Python ints: no overflow however large the claim
            n *= d
        total += n
    return total


def decode_bundle(data: bytes | memoryview, *, max_decoded_bytes: int | None = None,
                  load_models: bool = True, copy: bool = True) -> Bundle:
    """Decode a whole bundle.

    Parameters
    ----------
    data : bytes-like
        The bundle.
    max_decoded_bytes : int, optional
        Refuse (before decoding anything) a bundle whose arrays decode to more bytes.
    load_models : bool
        Parse ``model`` items into classifiers; with False they stay
        :class:`EncodedModel` (a server, which never uses them, never parses them).
    copy : bool
        With False, raw arrays are views of ``data`` (read-only if ``data`` is), not copies.

    Raises
    ------
    WireError
        Naming the item and what is wrong with it.
    """
    mv = memoryview(data)
    header, pos, end = _layout(mv)
    decoded = declared_nbytes(header)
    if max_decoded_bytes is not None and decoded > max_decoded_bytes:
        raise WireError(f"the arrays decode to {decoded} bytes, more than the limit of "
                        f"{max_decoded_bytes} bytes")
    out = Bundle(dict(header.get("meta") or {}))
    for item in header["items"]:
        if not isinstance(item, dict) or "name" not in item or "kind" not in item:
            raise WireError("each bundle item needs a name and a kind")
        name, kind = str(item["name"]), item["kind"]
        n = int(item.get("nbytes", 0))
        if n < 0 or pos + n > end:
            raise WireError(f"{name}: blob of {n} bytes runs past the end of the bundle")
        blob = mv[pos:pos + n]
        pos += n
        out.items[name] = item
        if kind in ("volume", "labelmap"):
            g = item.get("geometry") or {}
            try:
                shape = [int(s) for s in g["shape"]]
                arr = decode_array(blob, str(item.get("dtype")), shape,
                                    str(item.get("encoding", "raw")), name, copy)
                args = (arr, tuple(g["spacing"]), tuple(g["origin"]),
                        np.array(g["direction"], dtype=np.float64),
                        dict(item.get("metadata") or {}))
                if kind == "labelmap":
                    segs = tuple(Segment(int(s["number"]), str(s["name"]), tuple(s["color"]),
                                         tuple(s["category"]), tuple(s["type"]))
                                 for s in item.get("segments") or [])
                    out.values[name] = LabelMap(*args, (), segs)
                else:
                    out.values[name] = Volume(*args)
            except (KeyError, TypeError) as exc:
                raise WireError(f"{name}: incomplete geometry header ({exc})") from None
        elif kind == "table":
            t = item.get("table") or {}
            out.values[name] = Table(tuple(t.get("rows") or ()), str(t.get("title", "")),
                                     dict(t.get("units") or {}))
        elif kind == "model":
            model = EncodedModel(bytes(blob))
            out.values[name] = model.load() if load_models else model
        elif kind == "file":
            out.values[name] = ("file", str(item.get("filename", name)), bytes(blob))
        else:
            raise WireError(f"{name}: unknown kind {kind!r}")
    if pos != end:
        raise WireError(f"{end - pos} unexpected bytes after the last item")
    return out
