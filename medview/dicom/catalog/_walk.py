"""Walking folders for the catalog, one listing at a time (see
:mod:`~medview.dicom.catalog._index`)."""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator, Sequence

from medview.core.progress import Progress

_JUNK = {"THUMBS.DB", "DESKTOP.INI", "DICOMDIR"}
_name = operator.attrgetter("name")


def skipped_name(name: str) -> bool:
    """True for names a folder walk skips: hidden files and folders (``.*``), OS litter
    (Thumbs.db, desktop.ini) and DICOMDIR files, which index a medium's files rather than
    being images (pass a DICOMDIR explicitly to read its records)."""
    return name.startswith(".") or name.upper() in _JUNK


#: folders can be listed by descriptor: each file's stat is then relative to its folder
#: (fstatat), not a walk of the whole path again; elsewhere (Windows) by path
_BY_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


def _walk(folder: str, progress: Progress) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """(folder, [(name, size, mtime_ns), ...]) of the regular files under ``folder``, one
    folder at a time (its files sorted by name, as :func:`~medview.dicom.scan.scanner.iter_files`
    finds them, then its subfolders in name order), only folders that hold files: a
    100,000-file tree is never held as one list.

    Names, not paths: a re-index of an unchanged folder never needs its files' paths (see
    :mod:`medview.dicom.catalog._folders`).
    """
    progress.check()
    fd = -1
    try:
        if _BY_FD:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            it = os.scandir(fd)
        else:
            it = os.scandir(folder)
        with it:
            entries = [e for e in it if not (e.name[0] == "." or e.name.upper() in _JUNK)]
    except OSError:
        if fd >= 0:
            os.close(fd)
        return
    try:
        entries.sort(key=_name)
        subfolders = []
        files = []
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    subfolders.append(e.name)
                elif e.is_file():
                    st = e.stat()  # by descriptor: fstatat(fd, name)
                    files.append((e.name, st.st_size, st.st_mtime_ns))
            except OSError:
                continue
    finally:
        if fd >= 0:
            os.close(fd)
    del entries
    if files:
        yield folder, files
    del files
    base = folder.rstrip(os.sep) + os.sep
    for sub in subfolders:
        yield from _walk(base + sub, progress)


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


def _under(path: str, folders: Sequence[str]) -> bool:
    return any(path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)
