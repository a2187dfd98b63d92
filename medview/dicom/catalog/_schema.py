"""What the catalog stores: the SQL schema, the mapping of headers to rows, and the records.

One row of ``instances`` holds every field of :class:`~medview.dicom.scan.header.InstanceHeader`
(scalars in columns, tuples and frames as JSON). The layout (schema version, InstanceHeader
fields, SQL) is recorded in the catalog; :class:`~medview.dicom.catalog.db.Catalog` rebuilds the
tables when it changes.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from medview.dicom.catalog._folders import FOLDER_SCHEMA
from medview.dicom.scan.header import FrameInfo, InstanceHeader

SCHEMA_VERSION = 2  # 2: SR/KO documents and the series they reference

_FIELDS = tuple(f.name for f in dataclasses.fields(InstanceHeader))
_FRAME_FIELDS = tuple(f.name for f in dataclasses.fields(FrameInfo))
_JSON_FIELDS = {
    "image_type",
    "image_position",
    "image_orientation",
    "pixel_spacing",
    "csa_slice_normal",
    "warnings",
}


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
    #: (path, warning) of the files read in this import that were read past a problem (an
    #: invalid value or VR, an executable preamble); they are in the catalog all the same
    warnings: list[tuple[str, str]] = field(default_factory=list)
    scanned: int = 0
    #: all the errors and warnings; the lists hold the first 10,000 of each
    error_count: int = 0
    warning_count: int = 0
    #: SR and KO documents read in this import (annotations, key images; not instances)
    documents: int = 0


# --------------------------------------------------------------------------- rows


_get_fields = operator.attrgetter(*_FIELDS)
_JSON_AT = tuple(i for i, n in enumerate(_FIELDS) if n in _JSON_FIELDS)
_PATH_AT = _FIELDS.index("path")
_FRAMES_AT = _FIELDS.index("frames")
_PIXEL_AT = _FIELDS.index("has_pixel_data")
# JSON of tuple values: the files of a series repeat most of them (orientation, spacing,
# image type), so each is encoded once
_JSON_MEMO: dict = {}


def _json(v) -> str:
    try:
        key = (v, tuple(map(type, v)))  # 1 and 1.0 are equal keys but not the same JSON
        text = _JSON_MEMO.get(key)
    except TypeError:  # unhashable: not memoised
        return json.dumps(v)
    if text is None:
        text = json.dumps(v)
        if len(_JSON_MEMO) >= 4096:
            _JSON_MEMO.clear()
        _JSON_MEMO[key] = text
    return text


def _to_row(h: InstanceHeader) -> tuple:
    row = list(_get_fields(h))
    for i in _JSON_AT:
        v = row[i]
        if v is not None:
            row[i] = _json(v)
    frames = row[_FRAMES_AT]
    row[_FRAMES_AT] = (
        json.dumps([[getattr(f, n) for n in _FRAME_FIELDS] for f in frames]) if frames else None
    )
    row[_PIXEL_AT] = int(row[_PIXEL_AT])
    row[_PATH_AT] = db_path(row[_PATH_AT])
    return tuple(row)


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


_JSON_TUPLES: dict[str, tuple] = {}  # JSON text -> tuple: a series repeats most of them


def _json_tuple(text: str) -> tuple:
    value = _JSON_TUPLES.get(text)
    if value is None:
        value = tuple(json.loads(text))
        if len(_JSON_TUPLES) >= 4096:
            _JSON_TUPLES.clear()
        _JSON_TUPLES[text] = value
    return value


_EMPTY_AT = tuple(_FIELDS.index(n) for n in ("image_type", "warnings"))


def _from_row(row: Sequence) -> InstanceHeader:
    values = list(row)  # the columns are InstanceHeader's fields, in order
    values[_PATH_AT] = py_path(values[_PATH_AT])
    for i in _JSON_AT:
        if values[i] is not None:
            values[i] = _json_tuple(values[i])
    for i in _EMPTY_AT:
        if values[i] is None:
            values[i] = ()
    values[_PIXEL_AT] = bool(values[_PIXEL_AT])
    frames = values[_FRAMES_AT]
    values[_FRAMES_AT] = (
        tuple(FrameInfo(*[_tuple(x) for x in f]) for f in json.loads(frames)) if frames else ()
    )
    return InstanceHeader(*values)


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
#: version 2: structured reports and key object selections (medview.dicom.catalog._documents)
DOCUMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY, file_size INTEGER, mtime_ns INTEGER, sop_class_uid TEXT,
    sop_instance_uid TEXT, modality TEXT, patient_key TEXT, study_uid TEXT, series_uid TEXT,
    content_datetime TEXT, title TEXT, series_description TEXT, predecessors TEXT);
CREATE TABLE IF NOT EXISTS document_refs (
    path TEXT NOT NULL, series_uid TEXT NOT NULL, PRIMARY KEY (path, series_uid));
CREATE INDEX IF NOT EXISTS document_refs_series ON document_refs (series_uid);
CREATE INDEX IF NOT EXISTS documents_stat ON documents (path, file_size, mtime_ns);
"""
DOCUMENT_TABLES = ("documents", "document_refs")
def _sha256(data: bytes):
    """SHA-256 from CPython's built-in module when there is one: importing hashlib loads
    OpenSSL, a good part of ``medview index``'s start-up (the digest is the same)."""
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data)


# what the stored rows depend on: a change of any of these rebuilds the (cache) catalog
_LAYOUT = json.dumps(
    [SCHEMA_VERSION, _FIELDS, _FRAME_FIELDS,
     _sha256((_SCHEMA + DOCUMENT_SCHEMA + FOLDER_SCHEMA).encode()).hexdigest()]
)
#: the layout before folder digests (medview.dicom.catalog._folders): migrated in place
_LAYOUT_V2 = json.dumps(
    [SCHEMA_VERSION, _FIELDS, _FRAME_FIELDS,
     _sha256((_SCHEMA + DOCUMENT_SCHEMA).encode()).hexdigest()]
)
#: the layout of a version 1 catalog of these fields: migrated in place (documents added)
_LAYOUT_V1 = json.dumps([1, _FIELDS, _FRAME_FIELDS, _sha256(_SCHEMA.encode()).hexdigest()])
_TABLES = ("meta", "patients", "studies", "series", "instances", "errors", *DOCUMENT_TABLES,
           "folders")
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


# Paths: a file name need not be valid UTF-8 (POSIX names are bytes). Python holds such a
# name as a str with surrogate escapes, which SQLite cannot store as TEXT; the catalog stores
# it as its bytes (a BLOB, os.fsencode) and gives back the same str (os.fsdecode). SQLite
# orders every BLOB after every TEXT, so a folder's range is asked for in both.
PATH_RANGE = "((path >= ? AND path < ?) OR (path >= ? AND path < ?))"


def db_path(path: str) -> str | bytes:
    """``path`` as the catalog stores it: the text, or its bytes when it is not UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def py_path(value: str | bytes) -> str:
    """The path a catalog value stands for (inverse of :func:`db_path`)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def path_range_params(folder: str) -> tuple[str, str, bytes, bytes]:
    """Parameters of :data:`PATH_RANGE` for the paths strictly under ``folder``."""
    lo, hi = _prefix_range(folder)
    text = (lo, hi) if isinstance(db_path(lo), str) else ("", "")  # no TEXT path under it
    return (*text, os.fsencode(lo), os.fsencode(hi))


@contextmanager
def write_transaction(conn) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (cancel included), so a
    catalog write is whole or absent. The connection runs in autocommit mode
    (``isolation_level=None``): transactions are explicit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
