"""The files a command names: files, folders (recursively) or catalog study/series UIDs.

Used by everything that takes "what to send" from a user — a PACS send, a de-identified share —
so that the same words name the same files everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["collect_files"]


def collect_files(items: Iterable[str | os.PathLike], catalog=None) -> list[Path]:
    """The files named by ``items``, each once, in the order named.

    A file is itself; a folder is every file below it (sorted; names starting with "." left
    out); anything else is a Series Instance UID, else a Study Instance UID, in ``catalog``:
    its instances and the SR/KO documents (annotations, key images) that reference them.

    Raises
    ------
    ValueError
        Naming an item that is neither a path nor a UID in ``catalog``.
    """
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()
                                and not f.name.startswith(".")))
        else:
            uid = str(item)
            found: list[Path] = []
            if catalog is not None:
                found = [Path(h.path) for h in catalog.instances(uid)]
                series = [uid] if found else []
                if not found:
                    for rec in catalog.series(uid):
                        found.extend(Path(h.path) for h in catalog.instances(rec.uid))
                        series.append(rec.uid)
                # the annotations and key images saved on a series (SR, KOS) go with it
                found.extend(Path(d.path) for s in series for d in catalog.documents(s)
                             if os.path.isfile(d.path))
            if not found:
                raise ValueError(f"{uid}: no such file or folder, and no series or study with "
                                 "this UID in the catalog")
            files.extend(found)
    seen: set[Path] = set()
    out = []
    for f in files:
        key = f.resolve()  # once: it costs a system call per path component
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
