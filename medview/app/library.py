"""What the window does with the catalog, in plain Python (no Qt): list, import, load.

The functions take an open :class:`~medview.dicom.catalog.db.Catalog`. One catalog object can
serve the GUI thread and the workers at once: it gives each thread its own SQLite
connection, and in WAL mode the GUI thread's reads never wait for a worker's import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

if TYPE_CHECKING:  # pragma: no cover
    from medview.dicom.catalog.db import IndexReport

__all__ = [
    "ImportResult",
    "PatientEntry",
    "SeriesEntry",
    "StudyEntry",
    "import_paths",
    "list_patients",
    "load_series",
    "open_catalog",
]

PathLike = str | os.PathLike


@dataclass
class SeriesEntry:
    series_uid: str
    study_uid: str
    number: int | None
    description: str
    modality: str
    date: str
    image_count: int


@dataclass
class StudyEntry:
    study_uid: str
    date: str
    description: str
    accession_number: str
    series: list[SeriesEntry] = field(default_factory=list)

    @property
    def modalities(self) -> list[str]:
        return sorted({s.modality for s in self.series if s.modality})

    @property
    def image_count(self) -> int:
        return sum(s.image_count for s in self.series)


@dataclass
class PatientEntry:
    patient_id: str
    name: str
    birth_date: str
    studies: list[StudyEntry] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(s.image_count for s in self.studies)


@dataclass
class ImportResult:
    """An import's catalog report and the series found under the imported paths."""

    report: IndexReport
    series_uids: list[str]

    @property
    def errors(self) -> list[tuple[str, str]]:
        return list(self.report.errors)


def open_catalog(catalog_path: PathLike | None = None):
    """The catalog at ``catalog_path``, or the user's (``$MEDVIEW_DB`` or the data folder)."""
    from medview.dicom.catalog.db import Catalog

    return Catalog(catalog_path) if catalog_path is not None else Catalog()


def list_patients(cat) -> list[PatientEntry]:
    """The catalog ``cat`` as a Patient → Study → Series tree, in the catalog's order.

    Patients by name then ID, studies by date, series by number then description.
    """
    return build_tree(cat.patients(), cat.studies(), cat.series())


def build_tree(patients: Sequence, studies: Sequence, series: Sequence) -> list[PatientEntry]:
    """Nest catalog records (:class:`~medview.dicom.catalog.db.PatientRecord`, ``StudyRecord``,
    ``SeriesRecord``) into entries; studies and series keep the order they are given in."""
    by_patient: dict[str, PatientEntry] = {}
    out: list[PatientEntry] = []
    for p in patients:
        entry = PatientEntry(p.patient_id, p.patient_name, p.birth_date)
        by_patient[p.patient_key] = entry
        out.append(entry)
    by_study: dict[str, StudyEntry] = {}
    for st in studies:
        entry = StudyEntry(st.uid, st.date, st.description, st.accession_number)
        by_study[st.uid] = entry
        patient = by_patient.get(st.patient_key)
        if patient is None:  # a study whose patient row is missing: show it anyway
            patient = PatientEntry(st.patient_id, st.patient_name, "")
            by_patient[st.patient_key] = patient
            out.append(patient)
        patient.studies.append(entry)
    for se in series:
        study = by_study.get(se.study_uid)
        if study is None:
            continue  # the listing changed between the two queries; the next refresh shows it
        study.series.append(SeriesEntry(
            series_uid=se.uid, study_uid=se.study_uid, number=se.series_number,
            description=se.description, modality=se.modality, date=se.study_date,
            image_count=se.frames if se.frames and se.frames > se.instances else se.instances,
        ))
    return out


def import_paths(
    cat,
    paths: Sequence[PathLike],
    *,
    progress: Progress = NO_PROGRESS,
) -> ImportResult:
    """Index ``paths`` into the catalog ``cat``; also return the series found under them.

    Raises
    ------
    FileNotFoundError
        If one of ``paths`` does not exist (nothing is imported then).
    Cancelled
        If ``progress`` was cancelled (the batches already imported stay).
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
    report = cat.index(paths, progress=progress.sub(0.0, 0.95))
    progress.update(0.95, "listing the imported series")
    uids = series_under(cat, paths)
    progress.update(1.0, "imported")
    return ImportResult(report, uids)


def series_under(cat, paths: Sequence[PathLike]) -> list[str]:
    """UIDs of the catalog series with a file under ``paths``, in the browser's order
    (study date, series number), so that "the first series" is the one listed first."""
    found = set(cat.series_under(paths))
    return [record.uid for record in cat.series() if record.uid in found]


def load_series(cat, series_uid: str, *, progress: Progress = NO_PROGRESS) -> Volume:
    """The volume of series ``series_uid`` of the catalog ``cat``."""
    from medview.dicom.series.loading import load

    return load(series_uid, catalog=cat, progress=progress)


def read_label_map(path: PathLike):
    """A label map from a NIfTI/NRRD/MHA file: integer labels; segment names and colours
    from the ``.segments.json`` beside it (what Export writes), else default ones.

    Raises ValueError when the file holds non-integer or negative values (an image, not
    labels), or when its segments file is unreadable.
    """
    import numpy as np

    from medview.core.labelmap import LabelMap
    from medview.formats.volume_io import read_volume

    vol = read_volume(path)
    arr = vol.array
    if arr.ndim != 3:
        raise ValueError(f"{path}: a label map is 3D, this file has shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{path}: holds non-integer values; it is an image, not labels")
        arr = arr.astype(np.int32)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{path}: labels must be integers, found {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{path}: labels must not be negative (minimum {arr.min()})")
    top = int(arr.max()) if arr.size else 0
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32
    from medview.formats.results import read_segments_json, segments_sidecar

    side = segments_sidecar(path)
    segments = read_segments_json(side) if side.is_file() else ()
    return LabelMap(np.ascontiguousarray(arr, dtype=dtype), vol.spacing, vol.origin,
                    vol.direction, {"source_file": str(path)}, (), segments)
