"""The catalog: one SQLite file that remembers every scanned DICOM file.

Tables: ``patients``, ``studies``, ``series``, ``instances`` (one row per file holding every
field of :class:`~medview.dicom.header.InstanceHeader`: scalars in columns, tuples and frames
as JSON) and ``errors`` (files that could not be used, with their reason, size and mtime).

Indexing reads only files that are new or whose (size, mtime) changed; files that vanished
from an indexed folder are removed; a failing file that did not change keeps its error
without being read again. Every batch of files is one transaction, so a cancelled or crashed
import never leaves half a record. The catalog is a cache of the files: when its layout
changes (schema version, InstanceHeader fields) the tables are rebuilt empty and the next
import reads the files again.

Threads: each thread gets its own SQLite connection (WAL mode), so the GUI can read while a
worker thread imports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom.errors import UnreadableFileError
from medview.dicom.header import FrameInfo, InstanceHeader

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "IndexReport",
    "PatientRecord",
    "SeriesRecord",
    "StudyRecord",
    "default_catalog_path",
]

SCHEMA_VERSION = 1
_BATCH = 250

_FIELDS = tuple(f.name for f in dataclasses.fields(InstanceHeader))
_FRAME_FIELDS = tuple(f.name for f in dataclasses.fields(FrameInfo))
_JSON_FIELDS = {
    "image_type",
    "image_position",
    "image_orientation",
    "pixel_spacing",
    "csa_slice_normal",
}


def default_catalog_path() -> Path:
    """``$MEDVIEW_DB`` if set, else ``catalog.sqlite`` in the user's medview data folder."""
    env = os.environ.get("MEDVIEW_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("medview")) / "catalog.sqlite"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient: ``patient_key`` (ID and name) identifies it in the catalog."""

    patient_key: str
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    studies: int
    series: int
    instances: int


@dataclass(frozen=True, slots=True)
class StudyRecord:
    uid: str
    patient_key: str
    patient_id: str
    patient_name: str
    date: str
    time: str
    description: str
    accession_number: str
    modalities: tuple[str, ...]
    series: int
    instances: int

    @property
    def study_uid(self) -> str:
        return self.uid


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """A series as the browser lists it; ``rows``/``columns`` are the largest in the series."""

    uid: str
    study_uid: str
    patient_key: str
    patient_id: str
    patient_name: str
    study_date: str
    study_description: str
    modality: str
    description: str
    series_number: int | None
    instances: int
    frames: int
    rows: int
    columns: int

    @property
    def series_uid(self) -> str:
        return self.uid


@dataclass
class IndexReport:
    """What :meth:`Catalog.index` did.

    ``added``/``updated`` count files read into instances (new / changed), ``unchanged`` the
    files not read again (images and known failures), ``removed`` the catalog entries whose
    files vanished, ``scanned`` the files actually read; ``errors`` lists every file under the
    indexed paths that cannot be used, with its reason.
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    scanned: int = 0


# --------------------------------------------------------------------------- rows


def _to_row(h: InstanceHeader) -> tuple:
    row = []
    for name in _FIELDS:
        v = getattr(h, name)
        if name == "frames":
            v = json.dumps([[getattr(f, n) for n in _FRAME_FIELDS] for f in v]) if v else None
        elif name in _JSON_FIELDS:
            v = None if v is None else json.dumps(v)
        elif name == "has_pixel_data":
            v = int(v)
        row.append(v)
    return tuple(row)


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _from_row(row: Sequence) -> InstanceHeader:
    values = dict(zip(_FIELDS, row, strict=True))
    for name in _JSON_FIELDS:
        if values[name] is not None:
            values[name] = tuple(json.loads(values[name]))
    if values["image_type"] is None:
        values["image_type"] = ()
    values["has_pixel_data"] = bool(values["has_pixel_data"])
    frames = values["frames"]
    values["frames"] = (
        tuple(FrameInfo(*[_tuple(x) for x in f]) for f in json.loads(frames)) if frames else ()
    )
    return InstanceHeader(**values)


def _column_type(name: str) -> str:
    f = {f.name: f for f in dataclasses.fields(InstanceHeader)}[name]
    t = str(f.type)
    if name in _JSON_FIELDS or name == "frames" or t == "str":
        return "TEXT"
    if "float" in t:
        return "REAL"
    return "INTEGER"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    patient_key TEXT PRIMARY KEY, patient_id TEXT, patient_name TEXT,
    birth_date TEXT, sex TEXT);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_key TEXT, study_date TEXT, study_time TEXT,
    description TEXT, accession_number TEXT);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT, modality TEXT, series_number INTEGER,
    description TEXT, body_part TEXT, frame_of_reference_uid TEXT);
CREATE TABLE IF NOT EXISTS instances (
    {
    ", ".join(f"{n} {_column_type(n)}" + (" PRIMARY KEY" if n == "path" else "") for n in _FIELDS)
});
CREATE INDEX IF NOT EXISTS instances_series ON instances (series_instance_uid);
CREATE INDEX IF NOT EXISTS instances_stat ON instances (path, file_size, mtime_ns);
CREATE INDEX IF NOT EXISTS studies_patient ON studies (patient_key);
CREATE INDEX IF NOT EXISTS series_study ON series (study_uid);
CREATE TABLE IF NOT EXISTS errors (
    path TEXT PRIMARY KEY, reason TEXT NOT NULL, file_size INTEGER, mtime_ns INTEGER);
"""
# what the stored rows depend on: a change of any of these rebuilds the (cache) catalog
_LAYOUT = json.dumps(
    [SCHEMA_VERSION, _FIELDS, _FRAME_FIELDS, hashlib.sha256(_SCHEMA.encode()).hexdigest()]
)
_TABLES = ("meta", "patients", "studies", "series", "instances", "errors")
_INSERT_INSTANCE = (
    f"INSERT OR REPLACE INTO instances ({', '.join(_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(_FIELDS))})"
)


def _patient_key(h: InstanceHeader) -> str:
    return f"{h.patient_id}\x1f{h.patient_name}"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _prefix_range(folder: str) -> tuple[str, str]:
    """Bounds of the paths strictly under ``folder``: ``lo <= path < hi``."""
    lo = folder.rstrip(os.sep) + os.sep
    return lo, lo[:-1] + chr(ord(os.sep) + 1)


# --------------------------------------------------------------------------- walking


def _walk(folder: str, out: dict[str, tuple[int, int]], progress: Progress) -> None:
    """(size, mtime_ns) of every regular file under ``folder`` (as :func:`iter_files` walks)."""
    from medview.dicom.scan import skipped_name

    progress.check()
    try:
        it = os.scandir(folder)
    except OSError:
        return
    with it:
        for e in it:
            if skipped_name(e.name):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    _walk(e.path, out, progress)
                elif e.is_file():
                    st = e.stat()
                    out[e.path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                continue


# --------------------------------------------------------------------------- the catalog


class Catalog:
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            layout = None
            if version == SCHEMA_VERSION:
                try:
                    row = conn.execute("SELECT value FROM meta WHERE key='layout'").fetchone()
                    layout = row[0] if row else None
                except sqlite3.OperationalError:
                    layout = None
            if layout != _LAYOUT:
                # the catalog is a cache of the files: rebuild it rather than migrate
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)  # (executescript would COMMIT first)
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('layout', ?)", (_LAYOUT,)
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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

    # -- indexing -----------------------------------------------------------------------

    def index(
        self,
        paths: Iterable[str | os.PathLike] | str | os.PathLike,
        *,
        progress: Progress = NO_PROGRESS,
        workers: int | None = None,
    ) -> IndexReport:
        """Bring the catalog up to date with ``paths``.

        Parameters
        ----------
        paths : path or iterable of paths
            Folders (recursively), single files and DICOMDIR files (their referenced files; a
            broken DICOMDIR is an error and its folder is walked instead).
        progress : Progress, optional
            ``update(fraction, message)`` per batch; ``check()`` before each batch.
        workers : int, optional
            Processes for scanning; default decided by :func:`medview.dicom.scan.scan_batches`.

        Returns
        -------
        IndexReport

        Raises
        ------
        Cancelled
            When ``progress`` was cancelled; every batch committed before stays, complete.
        """
        from medview.dicom.dicomdir import referenced_files

        t0 = time.perf_counter()
        progress = progress if progress is not None else NO_PROGRESS
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        report = IndexReport()
        found: dict[str, tuple[int, int]] = {}
        folders: list[str] = []
        dicomdir_errors: list[tuple[str, str, int, int]] = []
        explicit: list[str] = []
        progress.update(0.0, "looking for files")
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if os.path.isdir(p):
                folders.append(p)
                _walk(p, found, progress)
            elif os.path.isfile(p) and os.path.basename(p).upper() == "DICOMDIR":
                try:
                    refs = referenced_files(p)
                except UnreadableFileError as exc:
                    st = os.stat(p)
                    dicomdir_errors.append((p, exc.reason, st.st_size, st.st_mtime_ns))
                    folder = os.path.dirname(p)
                    folders.append(folder)
                    _walk(folder, found, progress)
                else:
                    explicit.extend(str(r) for r in refs)
            else:
                explicit.append(p)
        missing: list[tuple[str, str]] = []
        for p in explicit:
            try:
                st = os.stat(p)
            except OSError as exc:
                # reported, not stored: a catalog entry of a file that isn't there would linger
                missing.append((p, f"cannot read: {exc.strerror or exc}"))
            else:
                found[p] = (st.st_size, st.st_mtime_ns)
        progress.check()

        conn = self._conn()
        known, failed = self._known(conn, folders, explicit)
        to_scan: list[str] = []
        for p, sig in found.items():
            if known.get(p) == sig:
                report.unchanged += 1
            elif p in failed and failed[p][1:] == sig:
                report.unchanged += 1
                report.errors.append((p, failed[p][0]))
            else:
                to_scan.append(p)
        vanished = [p for p in known if p not in found]
        vanished += [p for p in failed if p not in found]
        self._write(conn, removed=vanished, errors=dicomdir_errors)
        report.removed = len(vanished)
        report.errors.extend((p, r) for p, r, _, _ in dicomdir_errors)
        report.errors.extend(missing)

        from medview.dicom.scan import scan_batches

        progress.check()
        to_scan.sort()
        total = len(to_scan)
        done = 0
        batches = scan_batches(to_scan, workers=workers, batch_size=None)
        try:
            for headers, errors, n in batches:
                progress.check()
                err_rows = []
                for p, reason in errors:
                    size, mtime = found.get(p, (-1, -1))
                    err_rows.append((p, reason, size, mtime))
                self._write(conn, headers=headers, errors=err_rows)
                for h in headers:
                    if h.path in known or h.path in failed:
                        report.updated += 1
                    else:
                        report.added += 1
                report.errors.extend(errors)
                report.scanned += n
                done += n
                progress.update(done / max(total, 1), f"indexed {done}/{total} files")
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            if vanished or any(p in known for p in to_scan):
                self._prune(conn)  # only removals and re-read files can orphan a series
        report.errors.sort()
        report.seconds = time.perf_counter() - t0
        progress.update(1.0, f"indexed {total} files")
        return report

    def _known(
        self, conn: sqlite3.Connection, folders: list[str], files: list[str]
    ) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[str, int, int]]]:
        """Catalog entries under ``folders`` or among ``files``: instances and errors."""
        known: dict[str, tuple[int, int]] = {}
        failed: dict[str, tuple[str, int, int]] = {}
        for folder in folders:
            lo, hi = _prefix_range(folder)
            for p, size, mtime in conn.execute(
                "SELECT path, file_size, mtime_ns FROM instances WHERE path >= ? AND path < ?",
                (lo, hi),
            ):
                known[p] = (size, mtime)
            for p, reason, size, mtime in conn.execute(
                "SELECT path, reason, file_size, mtime_ns FROM errors WHERE path >= ? AND path < ?",
                (lo, hi),
            ):
                failed[p] = (reason, size, mtime)
        for i in range(0, len(files), 500):
            chunk = files[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for p, size, mtime in conn.execute(
                f"SELECT path, file_size, mtime_ns FROM instances WHERE path IN ({marks})", chunk
            ):
                known[p] = (size, mtime)
            for p, reason, size, mtime in conn.execute(
                f"SELECT path, reason, file_size, mtime_ns FROM errors WHERE path IN ({marks})",
                chunk,
            ):
                failed[p] = (reason, size, mtime)
        return known, failed

    def _write(
        self,
        conn: sqlite3.Connection,
        *,
        headers: Sequence[InstanceHeader] = (),
        errors: Sequence[tuple[str, str, int, int]] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """One transaction: upsert ``headers``, record ``errors``, drop ``removed`` paths."""
        if not (headers or errors or removed):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if removed:
                conn.executemany("DELETE FROM instances WHERE path = ?", [(p,) for p in removed])
                conn.executemany("DELETE FROM errors WHERE path = ?", [(p,) for p in removed])
            if errors:
                conn.executemany("DELETE FROM instances WHERE path = ?", [(e[0],) for e in errors])
                conn.executemany(
                    "INSERT OR REPLACE INTO errors (path, reason, file_size, mtime_ns) "
                    "VALUES (?, ?, ?, ?)",
                    errors,
                )
            if headers:
                conn.executemany("DELETE FROM errors WHERE path = ?", [(h.path,) for h in headers])
                conn.executemany(_INSERT_INSTANCE, [_to_row(h) for h in headers])
                self._upsert_hierarchy(conn, headers)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _upsert_hierarchy(conn: sqlite3.Connection, headers: Sequence[InstanceHeader]) -> None:
        patients, studies, series = {}, {}, {}
        for h in headers:
            key = _patient_key(h)
            patients[key] = (key, h.patient_id, h.patient_name, h.patient_birth_date, h.patient_sex)
            studies[h.study_instance_uid] = (
                h.study_instance_uid,
                key,
                h.study_date,
                h.study_time,
                h.study_description,
                h.accession_number,
            )
            series[h.series_instance_uid] = (
                h.series_instance_uid,
                h.study_instance_uid,
                h.modality,
                h.series_number,
                h.series_description,
                h.body_part,
                h.frame_of_reference_uid,
            )
        conn.executemany(
            "INSERT OR REPLACE INTO patients VALUES (?, ?, ?, ?, ?)", list(patients.values())
        )
        conn.executemany(
            "INSERT OR REPLACE INTO studies VALUES (?, ?, ?, ?, ?, ?)", list(studies.values())
        )
        conn.executemany(
            "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?)", list(series.values())
        )

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Drop series, studies and patients that no instance refers to any more."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "DELETE FROM series WHERE series_uid NOT IN "
                "(SELECT DISTINCT series_instance_uid FROM instances)"
            )
            conn.execute(
                "DELETE FROM studies WHERE study_uid NOT IN (SELECT study_uid FROM series)"
            )
            conn.execute(
                "DELETE FROM patients WHERE patient_key NOT IN (SELECT patient_key FROM studies)"
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

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
                (os.path.abspath(os.fspath(path)),),
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
            lo, hi = _prefix_range(p)
            rows = conn.execute(
                "SELECT DISTINCT series_instance_uid FROM instances "
                "WHERE path = ? OR (path >= ? AND path < ?)",
                (p, lo, hi),
            )
            uids.update(r[0] for r in rows)
        return sorted(uids)

    def errors(self) -> list[tuple[str, str]]:
        """Every file that could not be used, with its reason, by path."""
        return [
            tuple(r) for r in self._conn().execute("SELECT path, reason FROM errors ORDER BY path")
        ]

    def remove_series(self, uid: str) -> int:
        """Forget a series (its files stay on disk); returns the number of instances removed."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            n = conn.execute("DELETE FROM instances WHERE series_instance_uid = ?", (uid,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._prune(conn)
        return n

    def counts(self) -> dict[str, int]:
        """Rows per table (patients, studies, series, instances, errors)."""
        conn = self._conn()
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("patients", "studies", "series", "instances", "errors")
        }

    def __iter__(self) -> Iterator[SeriesRecord]:
        return iter(self.series())
