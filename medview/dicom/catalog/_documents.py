"""Documents in the catalog: structured reports (SR) and key object selections (KO).

The header scan refuses objects without pixel data (they are not images). Among them, SR
documents (annotations, measurement reports) and Key Object Selection documents (key images)
belong to the series they reference: the catalog keeps them in ``documents`` (one row per
file) and ``document_refs`` (which series each one's evidence lists), so opening a series
finds them, also after a restart. Any other pixel-less file (DICOMDIR records, presentation
states) stays an error as before.

Documents are few and small; they are read here with pydicom (the references are nested in
sequences the fast scanner skips), at most :data:`MAX_DOCUMENT_BYTES` each.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from medview.dicom.catalog._schema import db_path, py_path

__all__ = ["NO_PIXEL_DATA", "DocumentRecord", "documents_among", "documents_of",
           "forget_documents", "read_document", "write_documents"]

#: the reason the header scan gives for a DICOM object without pixel data
NO_PIXEL_DATA = "no pixel data"
#: the SR family (Basic/Enhanced/Comprehensive/3D SR, Key Object Selection, …)
_SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
MAX_DOCUMENT_BYTES = 64 << 20



@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """An SR or KO document and the series it references."""

    path: str
    file_size: int
    mtime_ns: int
    sop_class_uid: str
    sop_instance_uid: str
    modality: str  # "SR" or "KO"
    patient_key: str
    study_uid: str
    series_uid: str  # the document's own series
    content_datetime: str  # ContentDate + ContentTime: later is newer
    title: str  # the root concept's meaning ("Imaging Measurement Report", "Of Interest")
    series_description: str
    predecessors: tuple[str, ...]  # SOP Instance UIDs of the documents this one replaces
    referenced_series: tuple[str, ...]


def _may_be_document(path: str) -> bool:
    """Whether the file's start names an SR-family SOP class (the file meta group holds the
    Media Storage SOP Class UID): other pixel-less files (DICOMDIRs, presentation states) are
    not parsed again, and an import that meets none never loads pydicom."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return _SR_CLASS_PREFIX.encode() in head


def read_document(path: str) -> DocumentRecord | None:
    """The catalog record of an SR/KO file, or None when ``path`` is not one (or cannot be
    read: it then stays the error the scan found)."""
    if not _may_be_document(path):
        return None
    import pydicom

    from medview.dicom.documents.sr_read import predecessor_uids, referenced_series

    try:
        st = os.stat(path)
        if st.st_size > MAX_DOCUMENT_BYTES:
            return None
        ds = pydicom.dcmread(path)
        sop_class = str(ds.get("SOPClassUID", ""))
        if not sop_class.startswith(_SR_CLASS_PREFIX):
            return None
        title = ""
        if ds.get("ConceptNameCodeSequence"):
            title = str(ds.ConceptNameCodeSequence[0].get("CodeMeaning", ""))
        return DocumentRecord(
            path=path, file_size=st.st_size, mtime_ns=st.st_mtime_ns, sop_class_uid=sop_class,
            sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
            modality=str(ds.get("Modality", "")),
            patient_key=f"{ds.get('PatientID', '')}\x1f{ds.get('PatientName', '')}",
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            content_datetime=str(ds.get("ContentDate", "")) + str(ds.get("ContentTime", "")),
            title=title, series_description=str(ds.get("SeriesDescription", "")),
            predecessors=predecessor_uids(ds),
            referenced_series=tuple(sorted(referenced_series(ds))))
    except Exception:  # pydicom raises many types; a broken document stays the scan's error
        return None


def documents_among(
    errors: list[tuple[str, str]],
) -> tuple[list[DocumentRecord], list[tuple[str, str]]]:
    """The SR/KO documents among the files the scan refused for having no pixel data, and
    the errors that remain."""
    documents, rest = [], []
    for p, reason in errors:
        record = read_document(p) if reason.startswith(NO_PIXEL_DATA) else None
        if record is None:
            rest.append((p, reason))
        else:
            documents.append(record)
    return documents, rest


def forget_documents(conn: sqlite3.Connection, paths: Sequence[str]) -> int:
    """Inside the caller's transaction: drop the documents at ``paths``; how many went."""
    gone = [(db_path(p),) for p in paths]
    # rowcount, not total_changes: the latter counts the folder-digest triggers' deletes too
    n = conn.executemany("DELETE FROM documents WHERE path = ?", gone).rowcount
    conn.executemany("DELETE FROM document_refs WHERE path = ?", gone)
    return n


def write_documents(conn: sqlite3.Connection, records: Sequence[DocumentRecord]) -> None:
    """Inside the caller's transaction: upsert ``records`` (replacing any instance or error
    entry of the same path)."""
    paths = [r.path for r in records]
    forget_documents(conn, paths)
    gone = [(db_path(p),) for p in paths]
    conn.executemany("DELETE FROM instances WHERE path = ?", gone)
    conn.executemany("DELETE FROM errors WHERE path = ?", gone)
    conn.executemany(
        "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(db_path(r.path), r.file_size, r.mtime_ns, r.sop_class_uid, r.sop_instance_uid,
          r.modality, r.patient_key, r.study_uid, r.series_uid, r.content_datetime, r.title,
          r.series_description, json.dumps(r.predecessors)) for r in records])
    conn.executemany(
        "INSERT OR IGNORE INTO document_refs VALUES (?, ?)",
        [(db_path(r.path), s) for r in records for s in r.referenced_series])


def documents_of(conn: sqlite3.Connection, series_uid: str | None,
                 modality: str | None) -> list[DocumentRecord]:
    """Documents referencing ``series_uid`` (all when None), of ``modality`` if given,
    oldest first."""
    sql = ("SELECT d.*, (SELECT json_group_array(r.series_uid) FROM document_refs r "
           "WHERE r.path = d.path) FROM documents d")
    where, args = [], []
    if series_uid is not None:
        where.append("d.path IN (SELECT path FROM document_refs WHERE series_uid = ?)")
        args.append(series_uid)
    if modality is not None:
        where.append("d.modality = ?")
        args.append(modality)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY d.content_datetime, d.path"
    out = []
    for row in conn.execute(sql, args):
        *fields, predecessors, refs = row
        fields[0] = py_path(fields[0])
        out.append(DocumentRecord(*fields, tuple(json.loads(predecessors)),
                                  tuple(sorted(json.loads(refs)))))
    return out
