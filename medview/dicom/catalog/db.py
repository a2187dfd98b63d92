"""The catalog: one SQLite file that remembers every scanned DICOM file.

Tables: ``patients``, ``studies``, ``series``, ``instances`` (one row per file holding every
field of :class:`~medview.dicom.scan.header.InstanceHeader`: scalars in columns, tuples and frames
as JSON), ``errors`` (files that could not be used, with their reason, size and mtime) and,
since schema version 2, ``documents``/``document_refs``: SR and KO documents (annotations,
key images) with the series they reference (:mod:`medview.dicom.catalog._documents`).

Indexing reads only files that are new or whose (size, mtime) changed; files that vanished
from an indexed folder are removed; a failing file that did not change keeps its error
without being read again. Every batch of files is one transaction, so a cancelled or crashed
import never leaves half a record. The catalog is a cache of the files: when its layout
changes (schema version, InstanceHeader fields) the tables are rebuilt empty and the next
import reads the files again; a version 1 catalog is migrated in place (the document tables
added, the pixel-less files it had refused read again at the next import).

Threads: each thread gets its own SQLite connection (WAL mode), so the GUI can read while a
worker thread imports.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from medview.dicom.catalog._documents import DocumentRecord, documents_of
from medview.dicom.catalog._folders import FOLDER_STATEMENTS
from medview.dicom.catalog._index import _IndexingMixin
from medview.dicom.catalog._schema import (
    _FIELDS,
    _LAYOUT,
    _LAYOUT_V1,
    _LAYOUT_V2,
    _SCHEMA,
    _TABLES,
    DOCUMENT_SCHEMA,
    PATH_RANGE,
    SCHEMA_VERSION,
    IndexReport,
    PatientRecord,
    SeriesRecord,
    StudyRecord,
    _from_row,
    _like,
    db_path,
    path_range_params,
    py_path,
    write_transaction,
)
from medview.dicom.scan.header import InstanceHeader

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "DocumentRecord",
    "IndexReport",
    "PatientRecord",
    "SeriesRecord",
    "StudyRecord",
    "default_catalog_path",
]


def default_catalog_path() -> Path:
    """``$MEDVIEW_DB`` if set, else ``catalog.sqlite`` in the user's medview data folder
    (``$MEDVIEW_DATA_DIR`` or platformdirs')."""
    from medview.privatedirs import catalog_path

    return catalog_path()


def _open_private(path: Path) -> None:
    """The catalog holds names, IDs, birth dates: its file (and SQLite's -wal/-shm, which
    SQLite creates with the database's mode) is 0600; medview's data folder is 0700. A
    folder the user chose (``--db``, ``MEDVIEW_DB``) is not changed, only made 0700 when
    missing."""
    from medview.privatedirs import private_file, private_folder
    from medview.userconfig import data_dir

    parent = path.parent
    try:
        private = stat.S_IMODE(parent.stat().st_mode) == 0o700  # nothing to tighten
    except OSError:
        private = False
    # (data_dir() costs the platformdirs import: asked only when the answer can matter)
    if not private and (not parent.exists() or parent.resolve() == data_dir().resolve()):
        private_folder(parent)
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # an empty file is a new db
    for suffix in ("", "-wal", "-shm", "-journal"):
        private_file(f"{path}{suffix}")


def _migrate_v1_documents(conn: sqlite3.Connection) -> None:
    """Version 1 → 2 inside the caller's transaction: add the document tables and forget
    the files refused for having no pixel data, so the next import reads the SR and KO
    documents among them (the images stay as they are)."""
    for statement in DOCUMENT_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("DELETE FROM errors WHERE reason LIKE 'no pixel data%'")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (_LAYOUT_V2,))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _add_folder_digests(conn: sqlite3.Connection) -> None:
    """Layout 2 → with folder digests, inside the caller's transaction: the ``folders``
    table and its triggers (:mod:`medview.dicom.catalog._folders`). A ``folders`` table
    left by a medview that rebuilt the catalog without knowing it may hold digests of
    another catalog's entries: it is dropped first."""
    conn.execute("DROP TABLE IF EXISTS folders")
    for statement in FOLDER_STATEMENTS:
        conn.execute(statement)
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (_LAYOUT,))


# --------------------------------------------------------------------------- the catalog


class Catalog(_IndexingMixin):
    """The SQLite catalog of scanned DICOM files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The database file; default :func:`default_catalog_path`. Its folder is created.

    Raises
    ------
    RuntimeError
        The file was written by a newer medview (a higher schema version).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_catalog_path()
        _open_private(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._migrate(self._conn())

    # -- connections --------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError(f"catalog {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # one connection per thread; check_same_thread=False only so close() can close
            # them all from whichever thread calls it
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"catalog {self.path} has schema version {version}, newer than this medview's "
                f"{SCHEMA_VERSION}: upgrade medview or use another catalog (MEDVIEW_DB)"
            )
        with write_transaction(conn):
            layout = None
            if version >= 1:
                try:
                    row = conn.execute("SELECT value FROM meta WHERE key='layout'").fetchone()
                    layout = row[0] if row else None
                except sqlite3.OperationalError:
                    layout = None
            if version == 1 and layout == _LAYOUT_V1:
                _migrate_v1_documents(conn)
                layout = _LAYOUT_V2
            if layout == _LAYOUT_V2:
                _add_folder_digests(conn)
            elif layout != _LAYOUT:
                # the catalog is a cache of the files: rebuild it rather than migrate
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in (_SCHEMA + DOCUMENT_SCHEMA).split(";"):
                    if statement.strip():
                        conn.execute(statement)  # (executescript would COMMIT first)
                for statement in FOLDER_STATEMENTS:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (_LAYOUT,)
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close every connection this catalog opened (from any thread)."""
        with self._lock:
            conns, self._connections = self._connections, []
            self._closed = True
        for c in conns:
            c.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r})"

    # -- indexing: index() and its helpers are in medview.dicom.catalog._index ---------

    # -- queries ------------------------------------------------------------------------

    def patients(self) -> list[PatientRecord]:
        """Every patient that has at least one instance, by name then ID."""
        rows = (
            self._conn()
            .execute(
                """
            SELECT p.patient_key, p.patient_id, p.patient_name, p.birth_date, p.sex,
                   COUNT(DISTINCT st.study_uid), COUNT(DISTINCT s.series_uid), SUM(c.n)
            FROM patients p
            JOIN studies st ON st.patient_key = p.patient_key
            JOIN series s ON s.study_uid = st.study_uid
            JOIN (SELECT series_instance_uid AS uid, COUNT(*) AS n FROM instances
                  GROUP BY series_instance_uid) c ON c.uid = s.series_uid
            GROUP BY p.patient_key
            ORDER BY p.patient_name, p.patient_id
            """
            )
            .fetchall()
        )
        return [PatientRecord(*r) for r in rows]

    def studies(self, patient_id: str | None = None) -> list[StudyRecord]:
        """Studies (of the patient with this ID or patient key if given), by date."""
        sql = """
            SELECT st.study_uid, st.patient_key, p.patient_id, p.patient_name, st.study_date,
                   st.study_time, st.description, st.accession_number,
                   GROUP_CONCAT(DISTINCT s.modality), COUNT(DISTINCT s.series_uid), SUM(c.n)
            FROM studies st
            JOIN patients p ON p.patient_key = st.patient_key
            JOIN series s ON s.study_uid = st.study_uid
            JOIN (SELECT series_instance_uid AS uid, COUNT(*) AS n FROM instances
                  GROUP BY series_instance_uid) c ON c.uid = s.series_uid
        """
        args: tuple = ()
        if patient_id is not None:
            sql += " WHERE p.patient_id = ? OR p.patient_key = ?"
            args = (patient_id, patient_id)
        sql += " GROUP BY st.study_uid ORDER BY st.study_date, st.study_time, st.study_uid"
        out = []
        for r in self._conn().execute(sql, args):
            modalities = tuple(sorted({m for m in (r[8] or "").split(",") if m}))
            out.append(StudyRecord(*r[:8], modalities, r[9], r[10]))
        return out

    _SERIES_SQL = """
        SELECT s.series_uid, s.study_uid, st.patient_key, p.patient_id, p.patient_name,
               st.study_date, st.description, s.modality, s.description, s.series_number,
               c.n, c.frames, c.rows, c.cols
        FROM series s
        JOIN studies st ON st.study_uid = s.study_uid
        JOIN patients p ON p.patient_key = st.patient_key
        JOIN (SELECT series_instance_uid AS uid, COUNT(*) AS n,
                     SUM(number_of_frames) AS frames, MAX(rows) AS rows, MAX(columns) AS cols
              FROM instances {where} GROUP BY series_instance_uid) c ON c.uid = s.series_uid
    """

    def series(self, study_uid: str | None = None) -> list[SeriesRecord]:
        """Series (of one study if given), by study, series number and description."""
        sql = self._SERIES_SQL.format(where="")
        args: tuple = ()
        if study_uid is not None:
            sql += " WHERE s.study_uid = ?"
            args = (study_uid,)
        sql += " ORDER BY st.study_date, s.study_uid, s.series_number, s.description"
        return [SeriesRecord(*r) for r in self._conn().execute(sql, args)]

    def find_series(self, text: str) -> list[SeriesRecord]:
        """Series whose patient name or ID, study or series description or modality contains
        ``text`` (case-insensitive for ASCII)."""
        sql = self._SERIES_SQL.format(where="") + (
            " WHERE p.patient_name LIKE ?1 ESCAPE '\\' OR p.patient_id LIKE ?1 ESCAPE '\\'"
            " OR s.description LIKE ?1 ESCAPE '\\' OR st.description LIKE ?1 ESCAPE '\\'"
            " OR s.modality LIKE ?1 ESCAPE '\\'"
            " ORDER BY st.study_date, s.study_uid, s.series_number, s.description"
        )
        return [SeriesRecord(*r) for r in self._conn().execute(sql, (_like(text),))]

    def instances(self, series_uid: str) -> list[InstanceHeader]:
        """Every instance of the series, exactly as scanned, by path."""
        rows = self._conn().execute(
            f"SELECT {', '.join(_FIELDS)} FROM instances WHERE series_instance_uid = ? "
            "ORDER BY path",
            (series_uid,),
        )
        return [_from_row(r) for r in rows]

    def instance(self, path: str | os.PathLike) -> InstanceHeader | None:
        """The instance stored for ``path``, or None."""
        row = (
            self._conn()
            .execute(
                f"SELECT {', '.join(_FIELDS)} FROM instances WHERE path = ?",
                (db_path(os.path.abspath(os.fspath(path))),),
            )
            .fetchone()
        )
        return None if row is None else _from_row(row)

    def series_under(self, paths: Iterable[str | os.PathLike]) -> list[str]:
        """UIDs of the series with at least one instance in ``paths`` (folders, recursively,
        or files; a DICOMDIR stands for its folder), sorted."""
        conn = self._conn()
        uids: set[str] = set()
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if os.path.basename(p).upper() == "DICOMDIR" and not os.path.isdir(p):
                p = os.path.dirname(p)
            rows = conn.execute(
                "SELECT DISTINCT series_instance_uid FROM instances "
                f"WHERE path = ? OR {PATH_RANGE}",
                (db_path(p), *path_range_params(p)),
            )
            uids.update(r[0] for r in rows)
        return sorted(uids)

    def errors(self) -> list[tuple[str, str]]:
        """Every file that could not be used, with its reason, by path."""
        return [
            (py_path(p), reason)
            for p, reason in self._conn().execute("SELECT path, reason FROM errors ORDER BY path")
        ]

    def remove_series(self, uid: str) -> int:
        """Forget a series (its files stay on disk); returns the number of instances removed.

        The series' instance rows go, and with them the series row and any study or patient
        left without a series, in one transaction. Importing the files again brings it back.
        """
        conn = self._conn()
        with write_transaction(conn):
            n = conn.execute("DELETE FROM instances WHERE series_instance_uid = ?", (uid,)).rowcount
            conn.execute("DELETE FROM series WHERE series_uid = ?", (uid,))
            self._delete_orphans(conn)
        return n

    def documents(self, series_uid: str | None = None, *,
                  modality: str | None = None) -> list[DocumentRecord]:
        """SR and KO documents (annotations, key images) that reference ``series_uid`` (every
        document when None), of ``modality`` ("SR", "KO") if given, oldest first."""
        return documents_of(self._conn(), series_uid, modality)

    def counts(self) -> dict[str, int]:
        """Rows per table (patients, studies, series, instances, errors, documents)."""
        conn = self._conn()
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("patients", "studies", "series", "instances", "errors", "documents")
        }

    def __iter__(self) -> Iterator[SeriesRecord]:
        return iter(self.series())
