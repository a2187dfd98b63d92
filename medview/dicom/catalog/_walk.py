"""Walking folders for the catalog, one listing at a time (see
:mod:`~medview.dicom.catalog._index`)."""

from __future__ import annotations

import operator
import os
from array import array
from collections.abc import Iterator, Sequence

try:  # CPython's own module: importing hashlib loads OpenSSL (start-up time)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import blake2b

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


def listing(folder: str) -> tuple[list[tuple[str, int, int]], list[str]] | None:
    """([(name, size, mtime_ns), ...] of the regular files, [subfolder names]) directly in
    ``folder``, each sorted by name; None when the folder cannot be listed."""
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
        return None
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
    return files, subfolders


def _walk(folder: str, progress: Progress,
          skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """(folder, [(name, size, mtime_ns), ...]) of the regular files under ``folder``, one
    folder at a time (its files sorted by name, as :func:`~medview.dicom.scan.scanner.iter_files`
    finds them, then its subfolders in name order), only folders that hold files: a
    100,000-file tree is never held as one list. Subfolders whose path is in ``skip`` are
    not entered (another process walks them, :mod:`~medview.dicom.catalog._walk_split`).

    Names, not paths: a re-index of an unchanged folder never needs its files' paths (see
    :mod:`medview.dicom.catalog._folders`).
    """
    progress.check()
    found = listing(folder)
    if found is None:
        return
    files, subfolders = found
    del found
    if files:
        yield folder, files
    del files
    base = folder.rstrip(os.sep) + os.sep
    for sub in subfolders:
        path = base + sub
        if path not in skip:
            yield from _walk(path, progress, skip)


def key_of(folder: str) -> str | None:
    """The ``folders`` key of ``folder`` (its path and a trailing separator), None when
    the path is not UTF-8 (no digest for it)."""
    key = folder.rstrip(os.sep) + os.sep
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return key


def digest_of(files: Sequence[tuple[str, int, int]]) -> bytes | None:
    """Digest of (name, size, mtime_ns) sorted by name; None when a name is not UTF-8."""
    names, sizes, mtimes = zip(*files, strict=True) if files else ((), (), ())
    text = "\0".join(names)  # no file name holds a NUL
    try:
        raw = text.encode("utf-8")
        numbers = array("q", sizes).tobytes() + array("q", mtimes).tobytes()
    except (UnicodeEncodeError, OverflowError):
        return None
    h = blake2b(raw, digest_size=16)
    h.update(len(names).to_bytes(8, "little"))
    h.update(numbers)
    return h.digest()


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
