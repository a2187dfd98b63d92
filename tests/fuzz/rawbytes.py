"""Byte-level mutations of an encoded DICOM file, and garbage files.

Each mutation is ``fn(data, rng) -> bytes``; all randomness comes from ``rng`` so a case is
reproduced from its seed. The DICOM structure is found with a small walker of the top-level
elements (explicit or implicit VR little endian) so that length fields, the file meta
information and encapsulated fragments can be hit on purpose, not only by chance.
"""

from __future__ import annotations

import io
import random
import struct

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT",
             b"SV", b"UV"}
_PIXEL_TAG = b"\xe0\x7f\x10\x00"
_ITEM = b"\xfe\xff\x00\xe0"
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

_SYNTAXES = [
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.100", "1.2.3.4.5.6.7", "", "not-a-uid",
]
_PREAMBLES = {
    "elf": b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00",
    "pe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\0" * 46 + b"\x80\0\0\0",
    "script": b"#!/bin/sh\necho owned\nexit 0\n",
}


# ---------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------
def split_part10(data: bytes) -> tuple[int, int, bool]:
    """(start of the meta group, start of the dataset, implicit VR) of a Part 10 file.

    Without the ``DICM`` prefix the whole file is taken as a dataset (meta at 0, empty).
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        return 0, 0, False
    pos = 132
    implicit = False
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        tag = data[pos:pos + 4]
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length = struct.unpack_from("<I", data, pos + 8)[0] if pos + 12 <= len(data) else 0
            value_at = pos + 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            value_at = pos + 8
        if tag == b"\x02\x00\x10\x00":
            implicit = data[value_at:value_at + length].rstrip(b"\0 ") == b"1.2.840.10008.1.2"
        pos = value_at + length
    return 132, pos, implicit


def walk(data: bytes, start: int, implicit: bool, limit: int = 400) -> list[tuple[int, int, int]]:
    """Top-level elements from ``start``: (offset, offset of the length field, its size)."""
    out = []
    pos = start
    while pos + 8 <= len(data) and len(out) < limit:
        group = struct.unpack_from("<H", data, pos)[0]
        explicit = not implicit or group == 2
        vr = data[pos + 4:pos + 6]
        if explicit and vr in _LONG_VRS:
            if pos + 12 > len(data):
                break
            lf, size = pos + 8, 4
        elif explicit:
            lf, size = pos + 6, 2
        else:
            lf, size = pos + 4, 4
        length = struct.unpack_from("<I" if size == 4 else "<H", data, lf)[0]
        out.append((pos, lf, size))
        if length == 0xFFFFFFFF:
            if data[pos:pos + 4] == _PIXEL_TAG:
                break
            end = data.find(_SEQ_END, lf + size)  # good enough: nested ends are rare here
            if end < 0:
                break
            pos = end + len(_SEQ_END)
        else:
            pos = lf + size + length
    return out


def pixel_items(data: bytes) -> list[tuple[int, int]] | None:
    """(offset, length) of each item of encapsulated Pixel Data (BOT first), or None."""
    at = data.rfind(_PIXEL_TAG)
    if at < 0:
        return None
    if data[at + 4:at + 6] in (b"OB", b"OW"):
        if data[at + 8:at + 12] != b"\xff\xff\xff\xff":
            return None
        pos = at + 12
    elif data[at + 4:at + 8] == b"\xff\xff\xff\xff":
        pos = at + 8
    else:
        return None
    items = []
    while pos + 8 <= len(data) and data[pos:pos + 4] == _ITEM:
        length = struct.unpack_from("<I", data, pos + 4)[0]
        items.append((pos, length))
        pos += 8 + length
    return items


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------
def flip(data: bytes, rng: random.Random) -> bytes:
    """XOR 1–50 bytes, mostly in the first 4 KiB (the header)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 50)):
        end = min(len(b), 4096) if rng.random() < 0.7 else len(b)
        if end:
            b[rng.randrange(end)] ^= rng.randint(1, 255)
    return bytes(b)


def run(data: bytes, rng: random.Random) -> bytes:
    """Overwrite a run of 2–4096 bytes with zeros, 0xFF or noise."""
    if not data:
        return data
    n = 2 ** rng.randint(1, 12)
    at = rng.randrange(len(data))
    fill = rng.choice([b"\0" * n, b"\xff" * n, rng.randbytes(n)])
    return data[:at] + fill[: len(data) - at] + data[at + n:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut the file: in the header, anywhere, or near the end (short pixel data)."""
    where = rng.choice(["header", "any", "end", "preamble"])
    if len(data) < 2:
        return b""
    if where == "header" and len(data) > 134:
        cut = rng.randrange(132, min(len(data), 2048))
    elif where == "end":
        cut = len(data) - rng.randint(1, max(1, len(data) // 10))
    elif where == "preamble":
        cut = rng.randrange(0, min(133, len(data)))
    else:
        cut = rng.randrange(len(data))
    return data[:max(0, cut)]


def huge_length(data: bytes, rng: random.Random) -> bytes:
    """Set one element's length field to a huge or odd value (meta or dataset)."""
    meta, start, implicit = split_part10(data)
    elements = walk(data, meta or start, implicit)
    if not elements:
        return flip(data, rng)
    _, lf, size = rng.choice(elements)
    old = struct.unpack_from("<I" if size == 4 else "<H", data, lf)[0]
    if size == 4:
        value = rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 0xFFFFFFFE, old + 1, old * 1000 + 7])
        value &= 0xFFFFFFFF
        packed = struct.pack("<I", 0xFFFFFFFF if value == old else value)
    else:
        value = rng.choice([0xFFFF, 0xFFFE, old + 1, 0x8001])
        packed = struct.pack("<H", value & 0xFFFF)
    return data[:lf] + packed + data[lf + size:]


def swap_syntax(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the file meta with another TransferSyntaxUID; the dataset bytes stay as they are."""
    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta_at, ds_at, _ = split_part10(data)
    if not meta_at:
        return flip(data, rng)
    try:
        meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True).file_meta
    except Exception:  # a broken meta group (earlier mutation): flip bytes instead
        return flip(data, rng)
    current = str(meta.get("TransferSyntaxUID", ""))
    meta.TransferSyntaxUID = rng.choice([s for s in _SYNTAXES if s != current])
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=False)
    return data[:132] + buf.getvalue() + data[ds_at:]


def fragments(data: bytes, rng: random.Random) -> bytes:
    """Damage encapsulated Pixel Data; for native data, its length field."""
    items = pixel_items(data)
    if not items:
        at = data.rfind(_PIXEL_TAG)
        if at < 0:
            return truncate(data, rng)
        lf = at + 8 if data[at + 4:at + 6] in (b"OB", b"OW") else at + 4
        old = struct.unpack_from("<I", data, lf)[0]
        new = rng.choice([old // 2, old - 1, old + 2, 0, 0xFFFFFFF0]) & 0xFFFFFFFF
        return data[:lf] + struct.pack("<I", new) + data[lf + 4:]
    frags = items[1:] or items
    pos, length = rng.choice(frags)
    what = rng.choice(["noise", "header", "length", "cut", "empty", "bot", "no_end"])
    body = pos + 8
    length = min(length, len(data) - body)  # the declared length may run past the end
    if what == "noise" and length > 0:
        b = bytearray(data)
        for _ in range(rng.randint(1, 64)):
            b[body + rng.randrange(length)] ^= rng.randint(1, 255)
        return bytes(b)
    if what == "header" and length > 0:
        n = min(length, rng.choice([2, 16, 64, 256]))
        return data[:body] + rng.randbytes(n) + data[body + n:]
    if what == "length":
        new = rng.choice([0xFFFFFFF0, 0x7FFFFFFF, length * 3 + 1, max(0, length - 3)])
        return data[:pos + 4] + struct.pack("<I", new) + data[pos + 8:]
    if what == "cut" and length > 4:
        keep = rng.randrange(2, length // 2 + 2) & ~1
        return (data[:pos + 4] + struct.pack("<I", keep) + data[body:body + keep]
                + data[body + length:])
    if what == "empty":
        return data[:pos + 4] + struct.pack("<I", 0) + data[body + length:]
    if what == "bot":
        bot_pos, bot_len = items[0]
        offsets = struct.pack("<4I", 0, 0xFFFFFF00, 7, 0x7FFFFFFF)
        return (data[:bot_pos + 4] + struct.pack("<I", len(offsets)) + offsets
                + data[bot_pos + 8 + bot_len:])
    return data[:len(data) - 8] if data.endswith(_SEQ_END) else data[:-9]


def preamble(data: bytes, rng: random.Random) -> bytes:
    """Replace the preamble (ELF / PE / script / noise), or drop preamble and ``DICM``."""
    what = rng.choice([*_PREAMBLES, "noise", "no_dicm", "bad_magic"])
    if len(data) < 132:
        return data
    if what == "no_dicm":
        return data[132:]
    if what == "bad_magic":
        return data[:128] + b"DICN" + data[132:]
    head = rng.randbytes(128) if what == "noise" else _PREAMBLES[what].ljust(128, b"\0")
    return head + data[128:]


def garbage_file(rng: random.Random) -> bytes:
    """A file that is not DICOM, or barely: empty, noise, text, a bare prefix."""
    what = rng.choice(["empty", "noise", "text", "prefix", "prefix_noise"])
    if what == "empty":
        return b""
    if what == "noise":
        return rng.randbytes(rng.choice([1, 100, 4096, 100_000]))
    if what == "text":
        return b"this is not a DICOM file\n" * rng.randint(1, 100)
    if what == "prefix":
        return b"\0" * 128 + b"DICM"
    return b"\0" * 128 + b"DICM" + rng.randbytes(rng.choice([10, 1000, 50_000]))


#: byte mutation kind → (weight, function)
BYTE_MUTATIONS = {
    "flip": (4, flip),
    "run": (3, run),
    "truncate": (3, truncate),
    "huge_length": (3, huge_length),
    "tsuid": (3, swap_syntax),
    "fragments": (4, fragments),
    "preamble": (2, preamble),
}
