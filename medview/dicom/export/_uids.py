"""Invalid UIDs in source headers are replaced before anything is exported.

A UID is at most 64 characters of digits and dots, each component without a leading zero
(PS3.5 9.1). Source files may hold anything there (``../../x``, letters, 80 characters); an
exporter that copies such a value into a SEG or a derived series writes an invalid object
and, with a UID such as ``../../x``, hands a path-like string to whatever files objects by
UID. :func:`replace_invalid_uids` rewrites every invalid UI value of a source header with a
valid one derived from it (``2.25.`` + a name-based UUID of the invalid value), so the same
invalid UID becomes the same valid UID in every slice and every export, and says so.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["is_valid_uid", "quiet_uid_validation", "replace_invalid_uids", "replacement_uid"]

# fixed namespace of medview's replacement UIDs (uuid5 of the invalid value within it)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/medview/invalid-uid")


@contextmanager
def quiet_uid_validation() -> Iterator[None]:
    """Silence pydicom's reading warnings about invalid UI values (they are replaced)."""
    with warnings.catch_warnings():
        for message in (r"Invalid value for VR UI", r".*allowed for VR UI"):
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def is_valid_uid(value: str) -> bool:
    """Whether ``value`` is a valid DICOM UID (PS3.5 9.1)."""
    from pydicom.uid import UID

    return UID(value).is_valid


def replacement_uid(invalid: str) -> str:
    """The valid UID that stands for ``invalid`` (always the same one for the same value)."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, invalid).int}"


def replace_invalid_uids(ds, replaced: dict[str, str]) -> list[str]:
    """Replace, in place, every invalid UI value in ``ds`` (nested sequences included).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A source header (its file meta is not exported and is left alone).
    replaced : dict
        invalid → replacement, shared by every header of one export; updated.

    Returns
    -------
    list of str
        One line per replaced element: its keyword, the invalid value and the new UID.
    """
    lines: list[str] = []

    def visit(dataset, elem) -> None:
        if elem.VR != "UI" or elem.value in (None, ""):
            return
        values = list(elem.value) if elem.VM > 1 else [elem.value]
        fixed = []
        for v in values:
            v = str(v)
            if v and not is_valid_uid(v):
                new = replaced.setdefault(v, replacement_uid(v))
                lines.append(f"{elem.keyword or elem.tag} {v[:80]!r} → {new}")
                v = new
            fixed.append(v)
        if fixed != [str(v) for v in values]:
            elem.value = fixed if elem.VM > 1 else fixed[0]

    ds.walk(visit)
    return lines
