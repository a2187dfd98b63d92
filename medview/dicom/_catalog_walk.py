"""Walking folders for the catalog, one listing at a time (see :mod:`._catalog_index`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from medview.core.progress import Progress


def _walk(folder: str, progress: Progress) -> Iterator[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every regular file under ``folder``, as
    :func:`~medview.dicom.scan.iter_files` finds them (sorted by name in each folder), one
    folder listing at a time: a 100,000-file tree is never held as one list."""
    from medview.dicom.scan import skipped_name

    progress.check()
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not skipped_name(e.name)), key=lambda e: e.name)
    except OSError:
        return
    subfolders = []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                subfolders.append(e.path)
            elif e.is_file():
                st = e.stat()
                yield e.path, st.st_size, st.st_mtime_ns
        except OSError:
            continue
    del entries
    for sub in subfolders:
        yield from _walk(sub, progress)


def _count(folder: str) -> int:
    """Files under ``folder`` (names only, no stat): the denominator of the progress."""
    from medview.dicom.scan import skipped_name

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


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _under(path: str, folders: Sequence[str]) -> bool:
    return any(path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)
