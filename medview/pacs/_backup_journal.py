"""The backup journal: what medview sent to which archive, and what it verified there.

One SQLite file, ``backup-journal.sqlite`` in the user data folder (0600: it holds UIDs and
paths of the user's studies). A row per (archive, SOP Instance UID) with a state:

``sending``
    written (and committed) before a STOW-RS request leaves: after a crash or a dropped
    connection medview does not know whether the archive stored it, so the next run asks the
    archive (QIDO-RS) and verifies what it has instead of sending it again;
``stored``
    the archive answered that it stored the instance;
``verified``
    read back with WADO-RS and found equal; the hashes and the local file's size and mtime
    are kept, so a later run skips reading back an unchanged file the archive still lists.

The archive's own answer decides what is there; the journal only saves work (and says what
was in flight). Each change is one transaction, so a process killed at any point leaves a
consistent journal (SQLite's rollback journal).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Journal", "JournalRow", "default_journal_path"]

FILE_NAME = "backup-journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    archive TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    pixel_sha TEXT NOT NULL DEFAULT '',
    identity_sha TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL,
    PRIMARY KEY (archive, sop_uid)
);
CREATE INDEX IF NOT EXISTS by_study ON instances (archive, study_uid)
"""


def default_journal_path() -> Path:
    """``backup-journal.sqlite`` in the user data folder (``$MEDVIEW_DATA_DIR`` overrides)."""
    from medview.userconfig import data_dir

    return data_dir() / FILE_NAME


@dataclass(frozen=True)
class JournalRow:
    state: str
    size: int
    mtime_ns: int
    pixel_sha: str
    identity_sha: str


class Journal:
    """The journal file, opened (and created 0600) at ``path``."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_journal_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # create it private before SQLite does (SQLite gives its -journal file the same mode)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA.split(";"):
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rows(self, archive: str, study_uid: str) -> dict[str, JournalRow]:
        """SOP Instance UID → what the journal says, for one study on one archive."""
        cur = self._db.execute(
            "SELECT sop_uid, state, size, mtime_ns, pixel_sha, identity_sha FROM instances "
            "WHERE archive = ? AND study_uid = ?", (archive, study_uid))
        return {r[0]: JournalRow(*r[1:]) for r in cur}

    def mark(self, archive: str, items, state: str) -> None:
        """Set ``state`` for ``items`` (objects with sop_uid, study_uid, series_uid, path,
        size, mtime_ns) in one transaction; the hashes of a verified row are cleared."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO instances (archive, sop_uid, study_uid, series_uid, path, size, "
                "mtime_ns, state, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (archive, sop_uid) DO UPDATE SET study_uid = excluded.study_uid, "
                "series_uid = excluded.series_uid, path = excluded.path, size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, state = excluded.state, pixel_sha = '', "
                "identity_sha = '', updated = excluded.updated",
                [(archive, i.sop_uid, i.study_uid, i.series_uid, str(i.path), i.size, i.mtime_ns,
                  state, now) for i in items])

    def mark_verified(self, archive: str, verified) -> None:
        """``verified``: (item, pixel hash, identity hash) triples, in one transaction."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO instances (archive, sop_uid, study_uid, series_uid, "
                "path, size, mtime_ns, state, pixel_sha, identity_sha, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'verified', ?, ?, ?)",
                [(archive, i.sop_uid, i.study_uid, i.series_uid, str(i.path), i.size,
                  i.mtime_ns, px, ident, now) for i, px, ident in verified])
