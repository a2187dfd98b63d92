"""Folder digests: a re-index of an unchanged folder without looking up its files one by one.

A re-index must stat every file (a file rewritten in place changes its own size or mtime, not
its folder's), but it need not fetch every file's catalog entry to compare: the ``folders``
table keeps, per folder, a digest of the (name, size, mtime_ns) of its files as the catalog
holds them (instances, errors and documents together), written only after reading those
entries back and finding them equal to what the walk saw. Triggers on the three tables delete
a folder's digest whenever an entry of a file directly in it is deleted or changed, and the
catalog's writes drop the digests of the folders they write to (see
:data:`FOLDER_STATEMENTS`), so a digest present describes the catalog's entries of the
folder's files. A folder whose walked
files hash to its stored digest is therefore unchanged, file for file; any other folder is
compared file by file as before (and gets its digest once it matches again).

Folders whose path or file names are not UTF-8 get no digest (their paths are stored as
BLOBs, which the triggers' text functions do not take apart reliably): they are always
compared file by file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable

# the digest is taken where the walk is (also in the walk's helper process, without SQLite)
from medview.dicom.catalog._walk import digest_of, key_of

__all__ = [
    "FOLDER_SCHEMA",
    "FOLDER_STATEMENTS",
    "digest_of",
    "digested_files",
    "errors_in",
    "forget",
    "key_of",
    "stored",
    "verify_and_store",
]

_SEP = os.sep.replace("'", "''")
# a path's folder with its trailing separator: strip every character but the separator from
# the right (the classic SQLite dirname)
_PARENT = "rtrim({p}, replace({p}, '" + _SEP + "', ''))"

#: the table and its triggers, one statement each (a trigger's body holds semicolons). An
#: entry deleted or changed (UPDATE) drops its folder's digest. Entries written (INSERT OR
#: REPLACE, by :meth:`~medview.dicom.catalog.db.Catalog._write`, the only code that writes
#: them) drop their folders' digests in the same transaction (:func:`forget`): a trigger
#: per insert, or the recursive triggers that make a REPLACE fire the delete trigger, would
#: cost the first import ~0.1-0.15 s per 100,000 files. An entry of a new path that kept
#: the digest would be harmless anyway: the digest would then describe fewer entries than
#: the folder has, which the next index sees. Either the walk finds that file, and the
#: folder's files no longer hash to the digest; or it does not, and the catalog holds more
#: entries under the folders than the walk matched, so the entries of files that are not
#: there are removed (``_forget_vanished``), dropping the digest.
FOLDER_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS folders (folder TEXT PRIMARY KEY, digest BLOB NOT NULL, "
    "files INTEGER NOT NULL, errors INTEGER NOT NULL) WITHOUT ROWID",
    *(f"CREATE TRIGGER IF NOT EXISTS {t}_folder_{event.lower()} AFTER {event} ON {t} BEGIN "
      + "".join(f"DELETE FROM folders WHERE folder = {_PARENT.format(p=row + '.path')}; "
                for row in rows)
      + "END"
      for t in ("instances", "errors", "documents")
      for event, rows in (("DELETE", ("OLD",)), ("UPDATE", ("OLD", "NEW")))),
)
FOLDER_SCHEMA = ";\n".join(FOLDER_STATEMENTS)

# the covering indexes of (path, size, mtime): the wide rows are never read
_TABLES = (("instances", "INDEXED BY instances_stat"), ("errors", ""),
           ("documents", "INDEXED BY documents_stat"))


def forget(conn: sqlite3.Connection, paths: Iterable[str]) -> None:
    """Inside the caller's write transaction: drop the digests of the folders of ``paths``
    (entries about to be written)."""
    keys = {p[: p.rfind(os.sep) + 1] for p in paths}
    keys = {k for k in keys if key_of(k) is not None}  # a folder not UTF-8 has no digest
    if keys:
        conn.executemany("DELETE FROM folders WHERE folder = ?", [(k,) for k in keys])


def stored(conn: sqlite3.Connection, key: str) -> tuple[bytes, int, int] | None:
    """(digest, files, errors) kept for the folder ``key``, or None."""
    return conn.execute("SELECT digest, files, errors FROM folders WHERE folder = ?",
                        (key,)).fetchone()


def digested_files(conn: sqlite3.Connection, folders: Iterable[str]) -> int:
    """How many files the folders under ``folders`` that have a digest hold (0 before a
    first import): a sum over the small ``folders`` table, not a count of the entries."""
    n = 0
    for folder in folders:
        key = key_of(folder)
        if key is not None:
            n += conn.execute("SELECT COALESCE(SUM(files), 0) FROM folders "
                              "WHERE folder >= ? AND folder < ?", _bounds(key)[1:]).fetchone()[0]
    return n


def _bounds(key: str) -> tuple[int, str, str]:
    return len(key) + 1, key, key[:-1] + chr(ord(os.sep) + 1)


# the files directly in a folder: its path range, less what lies in its subfolders (filtered
# inside SQLite, so a big subtree below costs no Python objects)
_DIRECT = "path >= ?2 AND path < ?3 AND instr(substr(path, ?1), '" + _SEP + "') = 0"


def errors_in(conn: sqlite3.Connection, key: str) -> list[tuple[str, str]]:
    """(path, reason) of the failing files directly in the folder ``key``."""
    return conn.execute(f"SELECT path, reason FROM errors WHERE {_DIRECT} ORDER BY path",
                        _bounds(key)).fetchall()


def _entries(conn: sqlite3.Connection, key: str) -> tuple[list[tuple[str, int, int]], int]:
    """(name, size, mtime_ns) of the catalog's entries of files directly in ``key`` (all
    three tables), sorted by name; and how many of them are errors."""
    out: list[tuple[str, int, int]] = []
    n_errors = 0
    bounds = _bounds(key)
    for table, hint in _TABLES:
        rows = conn.execute(f"SELECT substr(path, ?1), file_size, mtime_ns FROM {table} {hint} "
                            f"WHERE {_DIRECT}", bounds).fetchall()
        if table == "errors":
            n_errors = len(rows)
        out += rows
    out.sort()
    return out, n_errors


def verify_and_store(conn: sqlite3.Connection,
                     folders: Iterable[tuple[str, bytes, int]]) -> int:
    """Inside the caller's write transaction: for each (key, digest, files) whose catalog
    entries hash to ``digest`` now, keep that digest; how many were kept.

    Reading the entries back in the same transaction is what makes a stored digest true:
    whatever a file's batch wrote (or failed to), and whatever another connection wrote
    before this transaction, the digest describes the entries as they are, and the triggers
    drop it at the next change.
    """
    kept = 0
    for key, digest, files in folders:
        entries, n_errors = _entries(conn, key)
        if len(entries) != files or digest_of(entries) != digest:
            continue
        conn.execute("INSERT OR REPLACE INTO folders (folder, digest, files, errors) "
                     "VALUES (?, ?, ?, ?)", (key, digest, files, n_errors))
        kept += 1
    return kept
