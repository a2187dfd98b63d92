"""Catalog: the SQLite index of every scanned file, and the files a command names.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "DocumentRecord",
    "IndexReport",
    "PatientRecord",
    "SeriesFacts",
    "SeriesRecord",
    "StudyRecord",
    "collect_files",
    "default_catalog_path",
    "patient_series",
    "prior_studies",
    "series_facts",
]

__getattr__, __dir__ = attach(__name__, {
    "Catalog": "medview.dicom.catalog.db",
    "collect_files": "medview.dicom.catalog.collect",
    "default_catalog_path": "medview.dicom.catalog.db",
    "DocumentRecord": "medview.dicom.catalog.db",
    "IndexReport": "medview.dicom.catalog.db",
    "patient_series": "medview.dicom.catalog.priors",
    "PatientRecord": "medview.dicom.catalog.db",
    "prior_studies": "medview.dicom.catalog.priors",
    "SCHEMA_VERSION": "medview.dicom.catalog.db",
    "series_facts": "medview.dicom.catalog.priors",
    "SeriesFacts": "medview.dicom.catalog.priors",
    "SeriesRecord": "medview.dicom.catalog.db",
    "StudyRecord": "medview.dicom.catalog.db",
})
