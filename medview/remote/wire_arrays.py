"""Arrays on the wire: a bundle's ``raw`` and ``blosc2`` blobs (see :mod:`medview.remote.wire`).

Both directions side by side; the decoder checks every declared length against what was sent
and never writes more than the shape the header declares.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["DTYPES", "ENCODINGS", "WireError", "available_encodings", "decode_array",
           "encode_array"]

_U64 = struct.Struct("<Q")
ENCODINGS = ("raw", "blosc2")
_CHUNK = 16 << 20
#: the array types that travel (little-endian)
DTYPES = {"|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8"}


class WireError(ValueError):
    """A bundle that is damaged or does not follow the format."""


def available_encodings() -> list[str]:
    """The encodings this installation can read and write (``blosc2`` needs the package).

    The package is looked for, not imported: importing it took 70 ms of a client's first
    job, which on loopback never uses it."""
    import importlib.util

    if importlib.util.find_spec("blosc2") is None:  # pragma: no cover - a dependency
        return ["raw"]
    return list(ENCODINGS)


def encode_array(arr: np.ndarray, encoding: str) -> tuple[str, list[bytes | memoryview]]:
    a = np.ascontiguousarray(arr)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    a = a.astype(dt, copy=False)
    if dt.str not in DTYPES:
        raise WireError(f"array dtype {a.dtype} cannot travel; use an integer, bool or float type")
    flat = memoryview(a.reshape(-1).view(np.uint8))
    if encoding == "raw":
        return dt.str, [flat]
    if encoding != "blosc2":
        raise WireError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    import blosc2

    parts: list[bytes | memoryview] = []
    step = _CHUNK - (_CHUNK % max(1, a.itemsize))
    for start in range(0, len(flat), step):
        c = blosc2.compress2(flat[start:start + step], typesize=a.itemsize, clevel=1,
                             codec=blosc2.Codec.ZSTD, filter=blosc2.Filter.SHUFFLE)
        parts += [_U64.pack(len(c)), c]
    return dt.str, parts


def decode_array(blob: memoryview, dtype: str, shape: list[int], encoding: str,
                  name: str, copy: bool = True) -> np.ndarray:
    if dtype not in DTYPES:
        raise WireError(f"{name}: dtype {dtype!r} is not allowed")
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if encoding == "raw":
        if len(blob) != n:
            raise WireError(f"{name}: {len(blob)} bytes for shape {shape} {dtype} ({n} expected)")
        arr = np.frombuffer(blob, dt).reshape(shape)
        return arr.copy() if copy or not arr.flags.aligned else arr
    if encoding != "blosc2":
        raise WireError(f"{name}: unknown encoding {encoding!r}")
    import blosc2

    out = np.empty(n, np.uint8)  # n was checked against the reader's limit (declared_nbytes)
    pos = done = 0
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise WireError(f"{name}: truncated blosc2 chunk header")
        (clen,) = _U64.unpack_from(blob, pos)
        pos += 8
        chunk = bytes(blob[pos:pos + clen])
        if len(chunk) != clen:
            raise WireError(f"{name}: truncated blosc2 chunk")
        try:
            size, cbytes, _ = blosc2.get_cbuffer_sizes(chunk)
            # the chunk's own header says how much it decodes to: check it before decoding,
            # and decode into a buffer of exactly that size, so nothing can write past it
            if cbytes != clen:
                raise WireError(f"{name}: a blosc2 chunk says it is {cbytes} bytes long, "
                                f"{clen} were sent")
            if done + size > n:
                raise WireError(f"{name}: more data than shape {shape} {dtype} holds")
            blosc2.decompress2(chunk, dst=out[done:done + size])
        except (RuntimeError, ValueError) as exc:
            raise WireError(f"{name}: damaged blosc2 chunk ({exc})") from None
        done += size
        pos += clen
    if done != n:
        raise WireError(f"{name}: {done} bytes decoded for shape {shape} {dtype} ({n} expected)")
    return out.view(dt).reshape(shape)
