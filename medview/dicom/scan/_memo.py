"""Per-file checks of the header scan answered once per value.

The files of a series repeat their preamble, orientation and character set byte for byte;
each check runs once per distinct value (a bounded memo), as the decoded values are memoised
in :mod:`medview.dicom.scan._decode`.
"""

from __future__ import annotations

from medview.dicom.scan._checks import orientation_problem

__all__ = ["memo_check", "orientation_problem_of", "preamble_warning_of"]

_MEMO_SIZE = 4096
_CHECKS: dict = {}


def memo_check(kind: str, value, check):
    """``check(value)``, remembered under (``kind``, ``value``) when the value is hashable."""
    try:
        key = (kind, value)
        if key in _CHECKS:
            return _CHECKS[key]
    except TypeError:  # unhashable: checked each time
        return check(value)
    result = check(value)
    if len(_CHECKS) >= _MEMO_SIZE:
        _CHECKS.clear()
    _CHECKS[key] = result
    return result


def preamble_warning_of(preamble: bytes | None) -> str | None:
    """:func:`medview.dicom.scan.preamble.preamble_warning`, once per preamble."""
    from medview.dicom.scan.preamble import preamble_warning

    return memo_check("preamble", preamble, preamble_warning)


def orientation_problem_of(iop) -> str | None:
    """:func:`medview.dicom.scan._checks.orientation_problem`, once per orientation."""
    return memo_check("orientation", iop, orientation_problem)
