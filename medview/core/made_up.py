"""Slices medview made up, as a volume's metadata records them.

When a series is loaded, some slices of the volume may hold no acquired image: slices
interpolated onto a uniform grid (missing slices, varying spacing) and stand-ins for files
that could not be decoded. ``volume.metadata["made_up_slices"]`` lists them as
``(z_index, reason)`` pairs sorted by z (``reason`` is a short sentence for the reader, e.g.
"interpolated between acquired slices at 12.0 and 18.0 mm" or "unreadable file NAME: …").
The views mark these slices on the image and every export says how many there were.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["describe", "made_up_note", "made_up_slices"]


def made_up_slices(metadata: Mapping) -> tuple[tuple[int, str], ...]:
    """The ``(z, reason)`` pairs of ``metadata["made_up_slices"]`` (empty if none)."""
    entries = metadata.get("made_up_slices") or ()
    return tuple(sorted(((int(z), str(reason)) for z, reason in entries), key=lambda e: e[0]))


def _is_interpolated(reason: str) -> bool:
    return reason.lower().startswith("interpolated")


def made_up_note(metadata: Mapping, n_slices: int, *, short: bool = False) -> str:
    """What an export says about made-up slices ('' if none).

    ``"23 of 37 slices interpolated"``, ``"2 of 54 slices stand-ins for unreadable files"``
    or both; ``short=True`` gives ``"23/37 interp."`` for fields of 64 characters.
    """
    entries = made_up_slices(metadata)
    if not entries:
        return ""
    n_interp = sum(_is_interpolated(r) for _, r in entries)
    n_other = len(entries) - n_interp
    parts = []
    if short:
        if n_interp:
            parts.append(f"{n_interp}/{n_slices} interp.")
        if n_other:
            parts.append(f"{n_other}/{n_slices} stand-in")
        return ", ".join(parts)
    if n_interp:
        parts.append(f"{n_interp} of {n_slices} slices interpolated")
    if n_other:
        parts.append(f"{n_other} of {n_slices} slices stand-ins for unreadable files")
    return "; ".join(parts)


def describe(description: str, metadata: Mapping, n_slices: int, *, limit: int = 64) -> str:
    """``description`` with the short made-up note appended in brackets, within ``limit``
    characters (the description is shortened, never the note)."""
    description = str(description or "").strip()
    note = made_up_note(metadata, n_slices, short=True)
    if not note:
        return description[:limit]
    tail = f" [{note}]"
    return (description[: max(limit - len(tail), 0)].rstrip() + tail).strip()[:limit]
