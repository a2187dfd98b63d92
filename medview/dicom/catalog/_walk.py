"""Walking folders for the catalog, one listing at a time (see
:mod:`~medview.dicom.catalog._index`)."""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Iterator, Sequence

from medview.core.progress import Progress

_JUNK = {"THUMBS.DB", "DESKTOP.INI", "DICOMDIR"}
_name = operator.attrgetter("name")


def skipped_name(name: str) -> bool:
    """True for names a folder walk skips: hidden files and folders (``.*``), OS litter
    (Thumbs.db, desktop.ini) and DICOMDIR files, which index a medium's files rather than
    being images (pass a DICOMDIR explicitly to read its records)."""
    return name.startswith(".") or name.upper() in _JUNK


def _walk(folder: str, progress: Progress) -> Iterator[list[tuple[str, int, int]]]:
    """(path, size, mtime_ns) of the regular files under ``folder``, one list per folder
    (sorted by name, as :func:`~medview.dicom.scan.scanner.iter_files` finds them), one folder
    listing at a time: a 100,000-file tree is never held as one list."""
    progress.check()
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if not (e.name[0] == "." or e.name.upper() in _JUNK)]
    except OSError:
        return
    entries.sort(key=_name)
    subfolders = []
    files = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                subfolders.append(e.path)
            elif e.is_file():
                st = e.stat()
                files.append((e.path, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    del entries
    if files:
        yield files
    del files
    for sub in subfolders:
        yield from _walk(sub, progress)


def _count(folder: str) -> int:
    """Files under ``folder`` (names only, no stat): the denominator of the progress."""
    n = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if skipped_name(e.name):
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            n += 1
                    except OSError:
                        continue
        except OSError:
            continue
    return n


def _chunks(lists: Iterable[list], size: int) -> Iterator[list]:
    """Lists of about ``size`` items (at least ``size``, or the rest) from lists of any
    length: whole folder listings are joined or split without going item by item."""
    chunk: list = []
    for items in lists:
        chunk.extend(items)
        while len(chunk) >= size:
            yield chunk[:size]
            chunk = chunk[size:]
    if chunk:
        yield chunk


def _under(path: str, folders: Sequence[str]) -> bool:
    return any(path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)
