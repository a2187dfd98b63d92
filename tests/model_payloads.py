"""Model-file attack payloads for the tests (built here, harmless: they create a marker file).

The payloads are the ones an attacker used against the old allow-list unpickler: a dotted
global name reaching ``subprocess.Popen`` through ``sklearn.externals.array_api_compat.numpy``
and ``numpy.memmap`` through ``sklearn.base``.
"""

from __future__ import annotations

import hashlib
import json
import struct

MAGIC = b"MEDVIEW-PIXEL-CLASSIFIER\n"


def _text(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def call_pickle(module: str, name: str, *args) -> bytes:
    """A protocol-4 pickle calling ``module``'s dotted attribute ``name`` with ``args``
    (strings, ints, or a list of strings)."""
    parts = []
    for a in args:
        if isinstance(a, int):
            parts.append(b"J" + struct.pack("<i", a))  # BININT
        elif isinstance(a, list):
            parts.append(b"](" + b"".join(_text(x) for x in a) + b"e")
        else:
            parts.append(_text(a))
    return (b"\x80\x04c" + module.encode() + b"\n" + name.encode() + b"\n(" + b"".join(parts)
            + b"tR.")


def popen_payload(marker) -> bytes:
    return call_pickle("sklearn.externals.array_api_compat.numpy", "f2py.subprocess.Popen",
                       ["touch", str(marker)])


def memmap_payload(marker) -> bytes:
    return call_pickle("sklearn.base", "np.memmap", str(marker), "uint8", "w+", 0, 16)


def legacy_file(path, payload: bytes, template: bytes) -> None:
    """``payload`` inside a format-1 model (pickle serializer) with a matching sidecar."""
    head = json.loads(template[len(MAGIC):].split(b"\n", 1)[0])
    head.pop("estimator", None)
    head.update(format=1, serializer="pickle",
                payload_sha256=hashlib.sha256(payload).hexdigest())
    data = MAGIC + json.dumps(head).encode() + b"\n" + payload
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "  m\n")


def legacy_bytes(payload: bytes) -> bytes:
    """``payload`` inside a format-1 model (pickle serializer), as old medview wrote them."""
    head = {"format": 1, "kind": "random_forest", "labels": [1, 2],
            "features": {"sigmas_mm": [1.0], "mode": "2d"}, "serializer": "pickle",
            "payload_sha256": hashlib.sha256(payload).hexdigest()}
    return MAGIC + json.dumps(head).encode() + b"\n" + payload
