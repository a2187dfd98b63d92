"""What the header scan reads past: values it cannot use and VRs of the wrong kind.

Each problem becomes one line of ``InstanceHeader.warnings`` naming the tag and its keyword,
so that a value dropped from a file is never dropped silently (the series lists them with the
file's name).
"""

from __future__ import annotations

__all__ = ["value_problem"]

TXT = "txt"  # the pseudo-VR of values pydicom had already converted to text (_scan_decode)

_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UI", "UR", "UT"})
_NUMERIC_KINDS = frozenset({"int", "float", "ints", "vec2", "vec3", "vec6"})


def _tag_name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword_for_tag(tag) or 'element'}"


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
