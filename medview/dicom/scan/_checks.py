"""What the header scan reads past: values it cannot use and VRs of the wrong kind.

Each problem becomes one line of ``InstanceHeader.warnings`` naming the tag and its keyword,
so that a value dropped from a file is never dropped silently (the series lists them with the
file's name).
"""

from __future__ import annotations

import functools
import sys

__all__ = ["keyword_for_tag", "sop_class_name", "value_problem"]

TXT = "txt"  # the pseudo-VR of values pydicom had already converted to text (_scan_decode)

_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"})
_NUMERIC_KINDS = frozenset({"int", "float", "ints", "vec2", "vec3", "vec6"})


def _tag_name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword_for_tag(tag) or 'element'}"


@functools.cache
def _pydicom_table(module: str, name: str) -> dict:
    """A dictionary of pydicom's (``_uid_dict``, ``_dicom_dict``) without importing pydicom:
    its package import pulls NumPy and costs ~0.2 s, which a folder with one DICOMDIR or one
    truncated file in it would pay at every import just to name a tag or a SOP class."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("pydicom")
    folders = list(spec.submodule_search_locations or ()) if spec else []
    for folder in folders:
        path = os.path.join(folder, f"{module}.py")
        if os.path.isfile(path):
            file_spec = importlib.util.spec_from_file_location(f"_medview{module}", path)
            loaded = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(loaded)
            return getattr(loaded, name)
    return {}


def _uid_names() -> dict:
    return _pydicom_table("_uid_dict", "UID_dictionary")


def keyword_for_tag(tag: int) -> str:
    """The keyword of a public tag ("" when unknown), as pydicom names it."""
    if "pydicom.datadict" in sys.modules:  # already paid for
        from pydicom.datadict import keyword_for_tag as pydicom_keyword

        return pydicom_keyword(tag)
    entry = _pydicom_table("_dicom_dict", "DicomDictionary").get(tag)
    return entry[4] if entry else ""


def sop_class_name(uid: str) -> str:
    """The name of a SOP class UID (``uid`` itself when unknown)."""
    if "pydicom.uid" in sys.modules:  # already paid for
        from pydicom.uid import UID

        return UID(uid).name
    entry = _uid_names().get(uid)
    return entry[0] if entry else uid


def _shown(data: bytes) -> str:
    text = data[:40].decode("latin-1").strip(" \x00")
    return repr(text + ("…" if len(data) > 40 else ""))


def value_problem(tag: int, raw, spec: tuple[str, str, str], value) -> str | None:
    """Why the raw value of a field cannot be used as it stands, or None."""
    if not isinstance(raw, tuple):
        return None
    vr, data = raw
    expected = spec[1]
    if vr not in (None, "UN", TXT, expected) and (vr in _TEXT_VRS) != (expected in _TEXT_VRS):
        what = "ignored" if value is None else "read anyway"
        return f"{_tag_name(tag)}: VR {vr} where {expected} is defined; value {what}"
    if value is None and spec[2] in _NUMERIC_KINDS and data.strip(b" \x00"):
        return f"{_tag_name(tag)}: invalid value {_shown(data)} for VR {expected}; ignored"
    return None


def orientation_problem(iop: tuple[float, ...] | None) -> str | None:
    """Why ImageOrientationPatient cannot give a slice's axes, or None when it can.

    The row and column directions must be unit vectors at right angles (PS3.3 C.7.6.2.1.1).
    Writers round them (0.99999, a dot product of 1e-4), so only what cannot be an orientation
    is refused: a vector far from unit length (0\\0\\0\\0\\0\\0) or two directions far from
    perpendicular (1\\0\\0\\1\\0\\0), which would make a singular volume direction.
    """
    if iop is None:
        return None
    import math

    row, col = iop[:3], iop[3:]
    nr = math.sqrt(sum(v * v for v in row))
    nc = math.sqrt(sum(v * v for v in col))
    if not (0.9 < nr < 1.1 and 0.9 < nc < 1.1):
        return (f"direction lengths {nr:.3g} and {nc:.3g} (unit vectors expected)")
    cos = sum(a * b for a, b in zip(row, col, strict=True)) / (nr * nc)
    if abs(cos) > 0.1:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        return f"row and column directions {angle:.3g}° apart (90° expected)"
    return None
