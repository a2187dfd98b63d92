"""What comparing series needs from the catalog: a series' facts (modality, body part,
description, frame of reference) and the same patient's other studies (priors).

Plain queries on :class:`~medview.dicom.catalog.db.Catalog`'s SQLite file (read only); the
layout rules (:mod:`medview.app.hanging`) pick by these facts and the comparison
(:mod:`medview.app.compare`) links panes by the frame of reference.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SeriesFacts", "patient_series", "prior_studies", "series_facts"]


@dataclass(frozen=True)
class SeriesFacts:
    """The header facts of one catalog series that comparison and layout rules use."""

    uid: str
    study_uid: str
    patient_key: str
    patient_id: str
    modality: str
    body_part: str
    description: str
    frame_of_reference_uid: str
    study_date: str
    study_time: str
    study_description: str
    series_number: int | None
    instances: int


_FACTS_SQL = """
    SELECT s.series_uid, s.study_uid, st.patient_key, p.patient_id, COALESCE(s.modality, ''),
           COALESCE(s.body_part, ''), COALESCE(s.description, ''),
           COALESCE(s.frame_of_reference_uid, ''), COALESCE(st.study_date, ''),
           COALESCE(st.study_time, ''), COALESCE(st.description, ''), s.series_number,
           (SELECT COUNT(*) FROM instances i WHERE i.series_instance_uid = s.series_uid)
    FROM series s
    JOIN studies st ON st.study_uid = s.study_uid
    JOIN patients p ON p.patient_key = st.patient_key
"""


def _facts(row) -> SeriesFacts:
    return SeriesFacts(*row[:12], int(row[12] or 0))


def series_facts(catalog, series_uid: str) -> SeriesFacts:
    """The facts of catalog series ``series_uid``.

    Raises
    ------
    KeyError
        If the catalog has no such series (the message names it).
    """
    row = catalog._conn().execute(_FACTS_SQL + " WHERE s.series_uid = ?",
                                  (series_uid,)).fetchone()
    if row is None:
        raise KeyError(f"series {series_uid}: not in the catalog {catalog.path}")
    return _facts(row)


def patient_series(catalog, series_uid: str) -> list[SeriesFacts]:
    """Every series (with instances) of the patient of ``series_uid``, ``series_uid``'s
    own included: newest study first, then by series number.

    Raises
    ------
    KeyError
        If the catalog has no such series.
    """
    me = series_facts(catalog, series_uid)
    rows = catalog._conn().execute(
        _FACTS_SQL + " WHERE st.patient_key = ?"
        " ORDER BY st.study_date DESC, st.study_time DESC, s.study_uid,"
        " s.series_number, s.description", (me.patient_key,)).fetchall()
    return [f for f in map(_facts, rows) if f.instances > 0]


def prior_studies(catalog, series_uid: str) -> dict[str, list[SeriesFacts]]:
    """The same patient's other studies (the priors of ``series_uid``'s study): study UID →
    its series, newest study first. The study of ``series_uid`` itself is left out.

    Raises
    ------
    KeyError
        If the catalog has no such series.
    """
    me = series_facts(catalog, series_uid)
    out: dict[str, list[SeriesFacts]] = {}
    for facts in patient_series(catalog, series_uid):
        if facts.study_uid != me.study_uid:
            out.setdefault(facts.study_uid, []).append(facts)
    return out
