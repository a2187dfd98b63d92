"""The pixel classifier's file: magic line, JSON header line, the estimator's arrays (NPZ).

``MEDVIEW-PIXEL-CLASSIFIER`` + newline, one line of JSON (format, kind, labels, features,
segments, the estimator's parameters, the arrays' SHA-256), then the NPZ of
:mod:`medview.core.segmentation.model_file`. Beside the file, ``NAME.sha256`` holds the SHA-256 of
the whole file. Format 1 (medview before issue 13) held a pickle instead of the NPZ: it is refused
(:class:`LegacyModelError`) and read only by :func:`read_legacy`, for a user who trusts it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "MAGIC", "LegacyModelError", "ModelFileError", "checked_bytes",
           "is_legacy_model", "read_legacy", "split_model"]

MAGIC = b"MEDVIEW-PIXEL-CLASSIFIER\n"
FORMAT = 2


class ModelFileError(ValueError):
    """A model file that is not one, is damaged, or fails its SHA-256 check."""


class LegacyModelError(ModelFileError):
    """A format-1 model: a pickle, refused unless the user trusts it (see
    :func:`medview.core.segmentation.classifier.convert_legacy_model`)."""


def checked_bytes(path: Path) -> bytes:
    """The file's bytes once its SHA-256 sidecar matches."""
    data = path.read_bytes()
    side = path.with_name(path.name + ".sha256")
    if not side.is_file():
        raise ModelFileError(f"model_path: {path} has no SHA-256 sidecar {side.name}; "
                             "medview only loads models saved with their sidecar")
    words = side.read_text().split()
    if hashlib.sha256(data).hexdigest() != (words[0].lower() if words else ""):
        raise ModelFileError(f"model_path: {path} does not match {side.name} (the file "
                             "was changed or damaged); refusing to load it")
    return data


def split_model(data: bytes) -> tuple[dict, bytes]:
    """The header and payload of a model's bytes, the payload checked against its SHA-256."""
    if not data.startswith(MAGIC):
        raise ModelFileError("model: not a medview pixel-classifier model")
    head_line, sep, payload = data[len(MAGIC):].partition(b"\n")
    try:
        head = json.loads(head_line)
    except (ValueError, RecursionError):  # not JSON, bad UTF-8, huge numbers, deep nesting
        raise ModelFileError("model: damaged header") from None
    if not sep or not isinstance(head, dict):
        raise ModelFileError("model: damaged header")
    if head.get("format") == 1:
        raise LegacyModelError(
            "an old medview model (format 1) holds a Python pickle, which can run code when "
            "it is loaded, so medview refuses it. If you made it yourself or trust its "
            "source, convert it once (the GUI asks; in Python: "
            "medview.core.segmentation.classifier.convert_legacy_model(path, trust=True)) or train "
            "it "
            "again")
    if head.get("format") != FORMAT:
        raise ModelFileError(f"model: format {head.get('format')!r} is not {FORMAT}; "
                             "it was written by another medview version")
    if hashlib.sha256(payload).hexdigest() != head.get("payload_sha256"):
        raise ModelFileError("model: the payload does not match its SHA-256 (damaged)")
    return head, payload


def is_legacy_model(path) -> bool:
    """True when ``path`` is a format-1 medview model (a pickle); reads only its header."""
    with open(path, "rb") as f:
        start = f.read(len(MAGIC) + (64 << 10))
    if not start.startswith(MAGIC):
        return False
    line = start[len(MAGIC):].partition(b"\n")[0]
    try:
        head = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(head, dict) and head.get("format") == 1


def read_legacy(path: Path) -> tuple[dict, bytes, Any]:
    """The header, the file's bytes and the unpickled estimator of a format-1 model.

    Unpickling runs whatever the file says: call this only after the user confirmed the
    file's source (``convert_legacy_model(path, trust=True)``).

    Raises
    ------
    ModelFileError
        If the file is not a format-1 pickle model or fails its SHA-256 checks.
    """
    import pickle

    data = checked_bytes(path)
    if not data.startswith(MAGIC):
        raise ModelFileError(f"model_path: {path}: not a medview pixel-classifier model")
    head_line, _, payload = data[len(MAGIC):].partition(b"\n")
    try:
        head = json.loads(head_line)
    except (ValueError, RecursionError):
        raise ModelFileError(f"model_path: {path}: damaged header") from None
    if not isinstance(head, dict) or head.get("format") != 1 or \
            head.get("serializer") != "pickle":
        raise ModelFileError(f"model_path: {path}: not an old (format 1, pickle) model")
    if hashlib.sha256(payload).hexdigest() != head.get("payload_sha256"):
        raise ModelFileError(f"model_path: {path}: the payload does not match its SHA-256")
    return head, data, pickle.loads(payload)  # the user confirmed the source
