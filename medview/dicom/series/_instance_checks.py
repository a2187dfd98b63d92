"""Checks across the files of one series before it is planned: what the scan read past
(per-file warnings) and files that claim the same SOP Instance UID.

Kept apart from :mod:`medview.dicom.series.assemble` (geometry) so that the assembler calls one
function and every such warning reads the same way: what, which files, what medview did.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence

from medview.dicom.scan.header import InstanceHeader

__all__ = ["check_instances"]

_SHOWN = 5  # files named per warning; the count says how many more


def _name(h: InstanceHeader) -> str:
    return os.path.basename(h.path) or h.path


def check_instances(headers: Sequence[InstanceHeader]) -> tuple[list[InstanceHeader], list[str]]:
    """The headers to plan, and the warnings about the others and about each file.

    Files that share a SOP Instance UID are one instance as far as any reference (SEG, SR,
    presentation state) or PACS is concerned: one is kept (an image before a file without
    usable pixels, then the first by path), the others are left out, and the warning names
    them all and the one kept. Files whose scan noted problems (an invalid value
    or VR, with the tag; an executable preamble) are listed with them.

    Returns
    -------
    kept : list of InstanceHeader
        ``headers`` without the duplicates, in their order.
    warnings : list of str
    """
    warnings: list[str] = []
    by_uid: dict[str, list[InstanceHeader]] = defaultdict(list)
    for h in headers:
        if h.sop_instance_uid:
            by_uid[h.sop_instance_uid].append(h)
    dropped: set[int] = set()
    lines = []
    for uid, group in by_uid.items():
        if len(group) < 2:
            continue
        # an image over a pixel-less (or damaged, no size) copy; then the first by path
        group = sorted(group, key=lambda h: (not (h.has_pixel_data and h.rows > 0
                                                  and h.columns > 0), h.path))
        dropped.update(id(h) for h in group[1:])
        lines.append(f"{uid} in {', '.join(_name(h) for h in group)}: kept {_name(group[0])}")
    if lines:
        n = sum(len(by_uid[u]) - 1 for u in by_uid if len(by_uid[u]) > 1)
        more = f"; … and {len(lines) - _SHOWN} more UIDs" if len(lines) > _SHOWN else ""
        warnings.append(
            f"{n} file(s) repeat the SOP Instance UID of another file (the same instance "
            f"twice, or a writer that reused UIDs): left out, one file kept per UID: "
            + "; ".join(lines[:_SHOWN]) + more
        )
    kept = [h for h in headers if id(h) not in dropped]
    noted = [h for h in headers if h.warnings]
    for h in noted[:_SHOWN]:
        warnings.append(f"{_name(h)}: " + "; ".join(h.warnings))
    if len(noted) > _SHOWN:
        warnings.append(f"… and {len(noted) - _SHOWN} more file(s) with such problems")
    return kept, warnings
