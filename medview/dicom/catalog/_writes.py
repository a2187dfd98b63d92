"""Writing the catalog's entries: one transaction per batch of an import (see
:mod:`medview.dicom.catalog._index`), removals, and the series, studies and patients they
leave without instances."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence

from medview.dicom.catalog._documents import (
    DocumentRecord,
    forget_documents,
    write_documents,
)
from medview.dicom.catalog._folders import forget, verify_and_store
from medview.dicom.catalog._schema import (
    _INSERT_INSTANCE,
    _patient_key,
    _to_row,
    db_path,
    write_transaction,
)
from medview.dicom.scan.header import InstanceHeader


class _WritingMixin:
    """The writing methods of :class:`~medview.dicom.catalog.db.Catalog`."""

    def _forget(self, conn: sqlite3.Connection, paths: Sequence[str]) -> int:
        """Remove ``paths`` from instances and errors; how many entries went."""
        gone = [(db_path(p),) for p in paths]
        with write_transaction(conn):
            # rowcount counts the rows deleted, not the folder-digest triggers' deletes
            n = conn.executemany("DELETE FROM instances WHERE path = ?", gone).rowcount
            n += conn.executemany("DELETE FROM errors WHERE path = ?", gone).rowcount
            return n + forget_documents(conn, paths)

    def _write(
        self,
        conn: sqlite3.Connection,
        *,
        headers: Sequence[InstanceHeader] = (),
        errors: Sequence[tuple[str, str, int, int]] = (),
        removed: Sequence[str] = (),
        documents: Sequence[DocumentRecord] = (),
        folders: Sequence[tuple[str, bytes, int]] = (),
    ) -> None:
        """One transaction: upsert ``headers`` and ``documents``, record ``errors``, drop
        ``removed`` paths; then keep the digests of ``folders`` (key, digest, files) whose
        entries match them (:func:`~medview.dicom.catalog._folders.verify_and_store`)."""
        if not (headers or errors or removed or documents or folders):
            return
        with write_transaction(conn):
            # what is written changes its folders' entries (a removal: the triggers)
            forget(conn, itertools.chain((h.path for h in headers), (e[0] for e in errors),
                                         (d.path for d in documents)))
            if removed:
                gone = [(db_path(p),) for p in removed]
                conn.executemany("DELETE FROM instances WHERE path = ?", gone)
                conn.executemany("DELETE FROM errors WHERE path = ?", gone)
                forget_documents(conn, removed)
            if documents:
                write_documents(conn, documents)
            if errors:
                forget_documents(conn, [e[0] for e in errors])
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
                forget_documents(conn, [h.path for h in headers])
                conn.executemany(_INSERT_INSTANCE, [_to_row(h) for h in headers])
                self._upsert_hierarchy(conn, headers)
            if folders:  # last: read back what this transaction wrote
                verify_and_store(conn, folders)

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
