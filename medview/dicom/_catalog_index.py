"""Indexing: bring the catalog up to date with the files under some paths.

Reads only files that are new or whose (size, mtime) changed; files that vanished from an
indexed folder are removed; a failing file that did not change keeps its error without being
read again. Every batch of files is one transaction, so a cancelled or crashed import never
leaves half a record. :class:`~medview.dicom.catalog.Catalog` inherits these methods.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence

from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom._catalog_schema import (
    _INSERT_INSTANCE,
    PATH_RANGE,
    IndexReport,
    _patient_key,
    _to_row,
    db_path,
    path_range_params,
    py_path,
    write_transaction,
)
from medview.dicom.errors import UnreadableFileError
from medview.dicom.header import InstanceHeader

_BATCH = 250


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


class _IndexingMixin:
    """The indexing methods of :class:`~medview.dicom.catalog.Catalog` (which provides
    ``_conn``)."""

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
        from medview.dicom.dicomdir import read_dicomdir

        t0 = time.perf_counter()
        progress = progress if progress is not None else NO_PROGRESS
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        report = IndexReport()
        found: dict[str, tuple[int, int]] = {}
        folders: list[str] = []
        dicomdir_errors: list[tuple[str, str, int, int]] = []
        explicit: list[str] = []
        missing: list[tuple[str, str]] = []
        progress.update(0.0, "looking for files")
        for p in paths:
            p = os.path.abspath(os.fspath(p))
            if os.path.isdir(p):
                folders.append(p)
                _walk(p, found, progress)
            elif os.path.isfile(p) and os.path.basename(p).upper() == "DICOMDIR":
                try:
                    refs, skipped = read_dicomdir(p)
                except UnreadableFileError as exc:
                    st = os.stat(p)
                    dicomdir_errors.append((p, exc.reason, st.st_size, st.st_mtime_ns))
                    folder = os.path.dirname(p)
                    folders.append(folder)
                    _walk(folder, found, progress)
                else:
                    explicit.extend(str(r) for r in refs)
                    missing.extend(skipped)  # reported with the unreadable files
            else:
                explicit.append(p)
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
                    report.warnings.extend((h.path, w) for w in h.warnings)
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
        report.warnings.sort()
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
            bounds = path_range_params(folder)
            for p, size, mtime in conn.execute(
                f"SELECT path, file_size, mtime_ns FROM instances WHERE {PATH_RANGE}", bounds
            ):
                known[py_path(p)] = (size, mtime)
            for p, reason, size, mtime in conn.execute(
                f"SELECT path, reason, file_size, mtime_ns FROM errors WHERE {PATH_RANGE}", bounds
            ):
                failed[py_path(p)] = (reason, size, mtime)
        for i in range(0, len(files), 500):
            chunk = [db_path(p) for p in files[i : i + 500]]
            marks = ",".join("?" * len(chunk))
            for p, size, mtime in conn.execute(
                f"SELECT path, file_size, mtime_ns FROM instances WHERE path IN ({marks})", chunk
            ):
                known[py_path(p)] = (size, mtime)
            for p, reason, size, mtime in conn.execute(
                f"SELECT path, reason, file_size, mtime_ns FROM errors WHERE path IN ({marks})",
                chunk,
            ):
                failed[py_path(p)] = (reason, size, mtime)
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
        with write_transaction(conn):
            if removed:
                gone = [(db_path(p),) for p in removed]
                conn.executemany("DELETE FROM instances WHERE path = ?", gone)
                conn.executemany("DELETE FROM errors WHERE path = ?", gone)
            if errors:
                rows = [(db_path(e[0]), *e[1:]) for e in errors]
                conn.executemany("DELETE FROM instances WHERE path = ?", [r[:1] for r in rows])
                conn.executemany(
                    "INSERT OR REPLACE INTO errors (path, reason, file_size, mtime_ns) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
            if headers:
                conn.executemany("DELETE FROM errors WHERE path = ?",
                                 [(db_path(h.path),) for h in headers])
                conn.executemany(_INSERT_INSTANCE, [_to_row(h) for h in headers])
                self._upsert_hierarchy(conn, headers)

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

    @staticmethod
    def _delete_orphans(conn: sqlite3.Connection) -> None:
        """Inside the caller's transaction: drop series, studies and patients that no
        instance refers to any more."""
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

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Drop series, studies and patients that no instance refers to any more."""
        with write_transaction(conn):
            self._delete_orphans(conn)
