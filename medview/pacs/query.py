"""Query a PACS (C-FIND or QIDO-RS) into a Patient → Study → Series tree.

Matching follows DICOM (PS3.4 C.2.2.2): ``*`` matches any run of characters and ``?`` one, in
names, IDs and descriptions; a date is ``YYYYMMDD`` or a range ``YYYYMMDD-YYYYMMDD`` (either
end may be open); an empty field matches everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from medview.core.progress import NO_PROGRESS, Progress
from medview.pacs.nodes import DimseNode, Node

__all__ = ["PacsPatient", "PacsSeries", "PacsStudy", "Query", "find", "list_instances", "locate"]

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND


@dataclass(frozen=True)
class Query:
    """What to look for; every field is optional (empty = any).

    Attributes
    ----------
    patient_name, patient_id : str
        With wildcards, e.g. ``"DOE*"``.
    birth_date : str
        ``YYYYMMDD``.
    study_date : str
        ``YYYYMMDD`` or ``YYYYMMDD-YYYYMMDD`` (``20240101-`` = since).
    modality : str
        ``CT``, ``MR`` ...: studies holding such a series, and only those series.
    accession_number, study_description : str
        With wildcards.
    study_uid : str
        One study.
    """

    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    study_date: str = ""
    modality: str = ""
    accession_number: str = ""
    study_description: str = ""
    study_uid: str = ""

    def __post_init__(self):
        for name in ("birth_date", "study_date"):
            value = getattr(self, name)
            parts = value.split("-") if value else []
            if len(parts) > 2 or any(p and not (p.isdigit() and len(p) == 8) for p in parts):
                raise ValueError(f"{name} {value!r}: use YYYYMMDD or YYYYMMDD-YYYYMMDD")


def _in_catalog(local: int, total: int | None) -> Literal["all", "some", "none"]:
    """How much of a study or series the local catalog holds: ``local`` of ``total``."""
    if not local:
        return "none"
    return "all" if total is not None and local >= total else "some"


@dataclass
class PacsSeries:
    """A series on the PACS; ``local_instances`` of its ``instances`` are in the catalog."""

    uid: str
    study_uid: str
    modality: str = ""
    series_number: int | None = None
    description: str = ""
    instances: int | None = None
    local_instances: int = 0

    @property
    def in_catalog(self) -> Literal["all", "some", "none"]:
        return _in_catalog(self.local_instances, self.instances)


@dataclass
class PacsStudy:
    """A study on the PACS; ``series`` is filled at series level."""

    uid: str
    date: str = ""
    time: str = ""
    description: str = ""
    accession_number: str = ""
    modalities: tuple[str, ...] = ()
    n_series: int | None = None
    instances: int | None = None
    local_instances: int = 0
    series: list[PacsSeries] = field(default_factory=list)

    @property
    def in_catalog(self) -> Literal["all", "some", "none"]:
        return _in_catalog(self.local_instances, self.instances)


@dataclass
class PacsPatient:
    patient_id: str
    name: str = ""
    birth_date: str = ""
    sex: str = ""
    studies: list[PacsStudy] = field(default_factory=list)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _s(ds, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    from pydicom.multival import MultiValue

    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value)


def _study_identifier(q: Query):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = q.patient_name
    ds.PatientID = q.patient_id
    ds.PatientBirthDate = q.birth_date
    ds.PatientSex = ""
    ds.StudyDate = q.study_date
    ds.StudyTime = ""
    ds.AccessionNumber = q.accession_number
    ds.StudyDescription = q.study_description
    ds.ModalitiesInStudy = q.modality
    ds.StudyInstanceUID = q.study_uid
    ds.NumberOfStudyRelatedSeries = None
    ds.NumberOfStudyRelatedInstances = None
    return ds


def _series_identifier(study_uid: str, modality: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = modality
    ds.SeriesNumber = None
    ds.SeriesDescription = ""
    ds.NumberOfSeriesRelatedInstances = None
    return ds


def _c_find(assoc, node: DimseNode, identifier, progress: Progress) -> list:
    """Every pending match of one C-FIND; PacsError on a failure status."""
    from medview.pacs.dimse import check_status, status_text
    from medview.pacs.errors import PacsError

    out = []
    for status, ds in assoc.send_c_find(identifier, STUDY_FIND):
        code = check_status(node, "C-FIND", status)
        if code in (0xFF00, 0xFF01):
            out.append(ds)
            if progress.cancelled:
                assoc.send_c_cancel(1, query_model=STUDY_FIND)
        elif code == 0xFE00:  # cancelled at our request
            progress.check()
        elif code != 0:
            raise PacsError(f"{node.name}: C-FIND failed with status {status_text(code)}")
    return out


_WEB_STUDY_FIELDS = ["PatientBirthDate", "PatientSex", "StudyDescription",
                     "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                     "ModalitiesInStudy", "AccessionNumber", "StudyTime"]
_WEB_SERIES_FIELDS = ["SeriesDescription", "NumberOfSeriesRelatedInstances", "SeriesNumber",
                      "Modality"]


def _web_filters(q: Query) -> dict:
    pairs = {"PatientName": q.patient_name, "PatientID": q.patient_id,
             "PatientBirthDate": q.birth_date, "StudyDate": q.study_date,
             "AccessionNumber": q.accession_number, "StudyDescription": q.study_description,
             "ModalitiesInStudy": q.modality, "StudyInstanceUID": q.study_uid}
    return {k: v for k, v in pairs.items() if v}


class _JsonItem:
    """Read access by keyword to one result in the DICOM JSON model (PS3.18 F.2), the few
    calls :func:`_s` and ``get`` make; ~10x cheaper than ``Dataset.from_json`` per result."""

    def __init__(self, item: dict):
        self._item = item

    def get(self, keyword: str, default=None):
        from pydicom.datadict import tag_for_keyword

        tag = tag_for_keyword(keyword)
        element = self._item.get(f"{tag:08X}") if tag is not None else None
        values = (element or {}).get("Value")
        if not values:
            return default
        values = [v.get("Alphabetic", "") if isinstance(v, dict) else v for v in values]
        return values[0] if len(values) == 1 else values

    def __contains__(self, keyword: str) -> bool:
        return self.get(keyword) is not None


def _from_json(items: list) -> list:
    return [_JsonItem(item) for item in items]


def find(node: Node, query: Query = Query(), *, level: Literal["study", "series"] = "series",
         catalog=None, progress: Progress = NO_PROGRESS) -> list[PacsPatient]:
    """Studies (and at series level their series) on ``node`` matching ``query``.

    Parameters
    ----------
    node : DimseNode or WebNode
    query : Query
    level : {"study", "series"}
        ``"series"`` also asks for the series of every matching study (one more request per
        study).
    catalog : medview.dicom.catalog.db.Catalog, optional
        When given, ``local_instances`` counts what it already holds.
    progress : Progress
        Updated per study at series level; cancelling stops between requests.

    Returns
    -------
    list of PacsPatient
        By patient name and ID; studies by date.

    Raises
    ------
    medview.pacs.errors.PacsError
    medview.core.progress.Cancelled
    """
    if level not in ("study", "series"):
        raise ValueError(f"level {level!r}: 'study' or 'series'")
    progress.update(0.0, f"querying {node.name}")
    if isinstance(node, DimseNode):
        from medview.pacs.dimse import association

        with association(node, [STUDY_FIND]) as assoc:
            studies = _c_find(assoc, node, _study_identifier(query), progress)
            series: dict[str, list] = {}
            if level == "series":
                for k, st in enumerate(studies):
                    progress.check()
                    uid = _s(st, "StudyInstanceUID")
                    series[uid] = _c_find(assoc, node, _series_identifier(uid, query.modality),
                                          progress)
                    progress.update((k + 1) / len(studies), f"series of {k + 1}/{len(studies)}")
    else:
        from medview.pacs.web import web_client, web_errors

        client = web_client(node)
        with web_errors(node, "QIDO-RS query"):
            studies = _from_json(client.search_for_studies(
                search_filters=_web_filters(query), fields=_WEB_STUDY_FIELDS))
            series = {}
            if level == "series":
                for k, st in enumerate(studies):
                    progress.check()
                    uid = _s(st, "StudyInstanceUID")
                    filters = {"Modality": query.modality} if query.modality else {}
                    series[uid] = _from_json(client.search_for_series(
                        uid, search_filters=filters, fields=_WEB_SERIES_FIELDS))
                    progress.update((k + 1) / len(studies), f"series of {k + 1}/{len(studies)}")
    progress.update(1.0, f"{len(studies)} studies")
    return _tree(studies, series, catalog)


def _tree(studies: list, series: dict[str, list], catalog) -> list[PacsPatient]:
    local_series: dict[str, int] = {}
    local_studies: dict[str, int] = {}
    if catalog is not None:
        for uid in {_s(st, "StudyInstanceUID") for st in studies}:
            for rec in catalog.series(uid):
                local_series[rec.uid] = rec.instances
                local_studies[uid] = local_studies.get(uid, 0) + rec.instances
    patients: dict[tuple[str, str], PacsPatient] = {}
    for st in studies:
        key = (_s(st, "PatientID"), _s(st, "PatientName"))
        patient = patients.get(key)
        if patient is None:
            patient = patients[key] = PacsPatient(key[0], key[1], _s(st, "PatientBirthDate"),
                                                  _s(st, "PatientSex"))
        uid = _s(st, "StudyInstanceUID")
        modalities = tuple(sorted({m for m in _s(st, "ModalitiesInStudy").split("\\") if m}))
        study = PacsStudy(uid, _s(st, "StudyDate"), _s(st, "StudyTime"),
                          _s(st, "StudyDescription"), _s(st, "AccessionNumber"), modalities,
                          _int(st.get("NumberOfStudyRelatedSeries")),
                          _int(st.get("NumberOfStudyRelatedInstances")))
        for se in series.get(uid, []):
            s_uid = _s(se, "SeriesInstanceUID")
            study.series.append(PacsSeries(
                s_uid, uid, _s(se, "Modality"), _int(se.get("SeriesNumber")),
                _s(se, "SeriesDescription"), _int(se.get("NumberOfSeriesRelatedInstances")),
                local_series.get(s_uid, 0)))
        study.series.sort(key=lambda s: (s.series_number is None, s.series_number or 0,
                                         s.description))
        study.local_instances = local_studies.get(uid, 0)
        if study.series and not study.modalities:
            study.modalities = tuple(sorted({s.modality for s in study.series if s.modality}))
        patient.studies.append(study)
    for patient in patients.values():
        patient.studies.sort(key=lambda s: (s.date, s.time, s.uid))
    return sorted(patients.values(), key=lambda p: (p.name, p.patient_id))


def list_instances(node: Node, study_uid: str, series_uid: str = "") -> dict[str, tuple[str, str]]:
    """SOP Instance UID → (Series Instance UID, SOP Class UID) of every instance of a study
    (or of one series); :func:`medview.pacs.listing.instance_table` has their geometry too.

    Raises
    ------
    medview.pacs.errors.PacsError
    """
    from medview.pacs.listing import instance_table

    return {sop: (i.series_uid, i.sop_class) for sop, i in
            instance_table(node, study_uid, series_uid).items()}


def locate(node: Node, uid: str) -> tuple[str, str]:
    """(study UID, series UID) for a UID that names a study (series UID "") or a series.

    Raises
    ------
    medview.pacs.errors.PacsError
        When ``node`` has neither a study nor a series with this UID.
    """
    from medview.pacs.errors import PacsError

    if find(node, Query(study_uid=uid), level="study"):
        return uid, ""
    if isinstance(node, DimseNode):
        from pydicom.dataset import Dataset

        from medview.pacs.dimse import association

        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = ""
        ds.SeriesInstanceUID = uid
        with association(node, [STUDY_FIND]) as assoc:
            found = _c_find(assoc, node, ds, NO_PROGRESS)
    else:
        from medview.pacs.web import web_client, web_errors

        with web_errors(node, "QIDO-RS series query"):
            found = _from_json(web_client(node).search_for_series(
                search_filters={"SeriesInstanceUID": uid}, fields=["StudyInstanceUID"]))
    for d in found:
        if _s(d, "SeriesInstanceUID") == uid and _s(d, "StudyInstanceUID"):
            return _s(d, "StudyInstanceUID"), uid
    raise PacsError(f"{node.name}: no study or series with UID {uid}")
