"""Looking up walked files in the catalog: what a (re-)index compares each file's stat with.

See :mod:`medview.dicom.catalog._index`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from medview.dicom.catalog._schema import db_path, py_path

__all__ = ["lookup"]


def lookup(
    conn: sqlite3.Connection, files: list[str]
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[str, int, int]]]:
    """Catalog entries of ``files`` (walked in order, a chunk of them): instances and errors.

    A chunk of one folder listing is read as one range of the path index
    (:func:`_lookup_range`), any other one path by path; both through the covering index of
    (path, size, mtime), so the wide rows are never read.
    """
    known: dict[str, tuple[int, int]] = {}
    failed: dict[str, tuple[str, int, int]] = {}
    for i in range(0, len(files), 500):
        paths = files[i : i + 500]
        if _lookup_range(conn, paths, known, failed):
            continue
        chunk = [p if p.isascii() else db_path(p) for p in paths]
        marks = ",".join("?" * len(chunk))
        # the covering index answers from its own pages (no look-up of the wide rows)
        rows = conn.execute(
            f"SELECT path, file_size, mtime_ns FROM instances INDEXED BY instances_stat "
            f"WHERE path IN ({marks})", chunk
        ).fetchall()
        known.update({(p if p.__class__ is str else py_path(p)): (size, mtime)
                      for p, size, mtime in rows})
        for p, size, mtime in conn.execute(  # SR/KO documents are known files too
                f"SELECT path, file_size, mtime_ns FROM documents WHERE path IN ({marks})",
                chunk):
            known[py_path(p)] = (size, mtime)
        for p, reason, size, mtime in conn.execute(
            f"SELECT path, reason, file_size, mtime_ns FROM errors WHERE path IN ({marks})",
            chunk,
        ):
            failed[py_path(p)] = (reason, size, mtime)
    return known, failed


def _lookup_range(conn: sqlite3.Connection, paths: Sequence[str],
                  known: dict, failed: dict) -> bool:
    """Catalog entries of ``paths`` (sorted text paths of one folder listing) read as one
    range of the path index rather than one search per path; False (nothing read) when
    the paths are not such a run or the range holds many other entries (subfolders)."""
    lo, hi = paths[0], paths[-1]
    if not (lo <= hi and lo.isascii() and hi.isascii()):
        return False
    parent = os.path.dirname(lo)
    if os.path.dirname(hi) != parent:
        return False
    limit = 2 * len(paths) + 16
    rows = conn.execute(
        "SELECT path, file_size, mtime_ns FROM instances INDEXED BY instances_stat "
        "WHERE path >= ? AND path <= ? LIMIT ?", (lo, hi, limit)).fetchall()
    errs = conn.execute(
        "SELECT path, reason, file_size, mtime_ns FROM errors WHERE path >= ? AND path <= ? "
        "LIMIT ?", (lo, hi, limit)).fetchall()
    docs = conn.execute(
        "SELECT path, file_size, mtime_ns FROM documents WHERE path >= ? AND path <= ? "
        "LIMIT ?", (lo, hi, limit)).fetchall()
    if len(rows) >= limit or len(errs) >= limit or len(docs) >= limit:
        return False  # a big subfolder sorts among these names: search them one by one
    rows += docs
    wanted = set(paths)
    known.update({p: (size, mtime) for p, size, mtime in rows if p in wanted})
    failed.update({p: (reason, size, mtime) for p, reason, size, mtime in errs
                   if p in wanted})
    return True
