"""The profile: DICOM PS3.15 Table E.1-1's action for each attribute under the chosen options.

The table itself is generated (:mod:`medview.deid._table`, from the standard's edition named in
:data:`EDITION`); this module only resolves it for a set of :class:`Options`:

- an option's column, where it has an entry, overrides the Basic Profile; of two options with an
  entry, the one that keeps more wins (K over C);
- a combined Basic Profile action (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``) has to be resolved
  without knowing each IOD's attribute types: medview takes ``D`` (a dummy value) when it is
  allowed — valid in every IOD, identifying nothing — else ``Z`` (empty, valid for Type 2);
  ``X/Z/U*`` (the reference sequences) keeps the sequence and remaps the UIDs inside.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from medview.deid import _table

__all__ = ["EDITION", "Options", "action_table", "method_codes", "method_text"]

EDITION = _table.EDITION

#: option → (code value of CID 7050, its meaning) — PS3.16 CID 7050 "De-identification Method"
_CID7050 = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_pixel_data": ("113101", "Clean Pixel Data Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "retain_dates_full": ("113106",
                          "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_dates_modified": ("113107",
                              "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}


@dataclass(frozen=True)
class Options:
    """The options of PS3.15 E.3 chosen for one share (all off = the Basic Profile).

    ``retain_safe_private`` of the table is not offered: medview removes every private
    attribute (it has no list of private attributes known to be safe).
    """

    retain_dates_modified: bool = False
    retain_dates_full: bool = False
    retain_patient_characteristics: bool = False
    clean_descriptors: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_uids: bool = False
    clean_structured_content: bool = False
    clean_graphics: bool = False
    clean_pixel_data: bool = False

    def __post_init__(self):
        if self.retain_dates_modified and self.retain_dates_full:
            raise ValueError("retain_dates_modified and retain_dates_full exclude each other: "
                             "choose one")

    def chosen(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]

    def label(self) -> str:
        """``basic`` or ``basic+clean_descriptors+...`` (for the audit log and the report)."""
        return "+".join(["basic", *self.chosen()])


def _resolve_combined(action: str) -> str:
    if action == "X/Z/U*":
        return "U*"
    if "/" not in action:
        return action
    return "D" if "D" in action else "Z"


@lru_cache(maxsize=32)
def action_table(options: Options) -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    """(tag → action, ((mask, value, action), ...)) with every action one of D Z X K C U U*."""
    chosen = set(options.chosen())

    def resolve(basic: str, opts: dict[str, str]) -> str:
        hits = {a for o, a in opts.items() if o in chosen}
        if "K" in hits:
            return "K"
        if "C" in hits:
            return "C"
        return _resolve_combined(basic)

    exact = {tag: resolve(basic, opts) for tag, (_n, basic, opts) in _table.TABLE.items()}
    patterns = tuple((m, v, resolve(basic, opts)) for m, v, _n, basic, opts in _table.PATTERNS)
    return exact, patterns


def attribute_name(tag: int) -> str:
    """The table's name of ``tag`` (or pydicom's keyword, or the tag in hex)."""
    row = _table.TABLE.get(tag)
    if row:
        return row[0]
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def method_codes(options: Options) -> list[tuple[str, str]]:
    """(code value, meaning) of CID 7050 for the profile and each chosen option."""
    return [_CID7050["basic"], *(_CID7050[o] for o in options.chosen() if o in _CID7050)]


def method_text(options: Options) -> str:
    """Free text for De-identification Method (0012,0063), at most 64 characters."""
    text = f"PS3.15 E.1-1 {EDITION} Basic" + "".join(
        f"+{''.join(w[0].upper() for w in o.split('_'))}" for o in options.chosen())
    return f"medview: {text}"[:64]
