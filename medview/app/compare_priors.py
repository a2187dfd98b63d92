"""The patient's other studies to compare with (priors): in the catalog, and on the PACS
nodes configured (found with :func:`medview.pacs.query.find`, brought in on request with
:func:`medview.pacs.retrieve.retrieve`). No Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medview.app.session import Session
from medview.app.tasks import Job
from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom.catalog.priors import prior_studies, series_facts

__all__ = ["PriorSeries", "PriorStudy", "find_priors", "local_priors", "pacs_priors",
           "retrieve_prior", "start_find_priors"]


@dataclass(frozen=True)
class PriorSeries:
    uid: str
    modality: str
    description: str
    number: int | None


@dataclass(frozen=True)
class PriorStudy:
    """Another study of the patient: where it is (``"catalog"`` or a PACS node's name) and
    how much of it the catalog holds (``"all"``, ``"some"``, ``"none"``)."""

    study_uid: str
    date: str
    description: str
    source: str
    in_catalog: str
    series: tuple[PriorSeries, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted({s.modality for s in self.series if s.modality}))


def local_priors(catalog, series_uid: str) -> list[PriorStudy]:
    """The patient's other studies in the catalog, newest first."""
    out = []
    for study_uid, series in prior_studies(catalog, series_uid).items():
        first = series[0]
        out.append(PriorStudy(study_uid, first.study_date, first.study_description,
                              "catalog", "all",
                              tuple(PriorSeries(s.uid, s.modality, s.description,
                                                s.series_number) for s in series)))
    return out


def pacs_priors(node, catalog, series_uid: str, *,
                progress: Progress = NO_PROGRESS) -> list[PriorStudy]:
    """The studies of ``series_uid``'s patient on PACS ``node`` other than its own study
    (found by Patient ID), newest first, with how much of each the catalog holds.

    Raises
    ------
    medview.pacs.errors.PacsError
        When the node cannot be asked (its message names the node).
    """
    from medview.pacs.query import Query, find

    facts = series_facts(catalog, series_uid)
    if not facts.patient_id:
        return []
    patients = find(node, Query(patient_id=facts.patient_id), level="series", catalog=catalog,
                    progress=progress)
    out = []
    for patient in patients:
        if patient.patient_id != facts.patient_id:
            continue  # a PACS that matched loosely
        for study in patient.studies:
            if study.uid == facts.study_uid:
                continue
            out.append(PriorStudy(study.uid, study.date, study.description, node.name,
                                  study.in_catalog,
                                  tuple(PriorSeries(s.uid, s.modality, s.description,
                                                    s.series_number) for s in study.series)))
    out.sort(key=lambda s: s.date, reverse=True)
    return out


def find_priors(catalog, series_uid: str, nodes: Sequence = (), *,
                progress: Progress = NO_PROGRESS) -> tuple[list[PriorStudy], list[str]]:
    """The priors in the catalog, then those on each node not already whole in the
    catalog; and one message per node that could not be asked (the others still answer)."""
    from medview.pacs.errors import PacsError

    found = local_priors(catalog, series_uid)
    known = {s.study_uid for s in found}
    problems = []
    for k, node in enumerate(nodes):
        part = progress.sub(k / len(nodes), (k + 1) / len(nodes))
        try:
            remote = pacs_priors(node, catalog, series_uid, progress=part)
        except PacsError as exc:
            problems.append(f"{node.name}: {exc}")
            continue
        found += [s for s in remote if s.study_uid not in known and s.in_catalog != "all"]
        known |= {s.study_uid for s in remote}
    return found, problems


def start_find_priors(session: Session, series_uid: str,
                      on_found: Callable[[tuple[list[PriorStudy], list[str]]], None],
                      nodes: Sequence | None = None) -> Job:
    """Look for ``series_uid``'s priors as a Session job (the catalog and, by default, every
    configured PACS node); ``on_found((studies, problems))`` follows."""
    catalog = session.require_catalog("Looking for prior studies")
    if nodes is None:
        from medview.pacs.nodes import list_nodes

        nodes = list_nodes()
    nodes = list(nodes)
    return session._start_action(
        "Looking for prior studies",
        lambda progress: find_priors(catalog, series_uid, nodes, progress=progress), on_found)


def retrieve_prior(session: Session, node, study_uid: str, series_uid: str = "", *,
                   on_done: Callable[[object], None] | None = None) -> Job:
    """Bring a prior study (or one series) from PACS ``node`` into the catalog, as a
    Session job; ``on_done(RetrieveReport)`` follows (then the series open from the
    catalog)."""
    from medview.pacs.retrieve import retrieve

    catalog = session.require_catalog("Retrieving a prior study")
    return session._start_action(
        f"Retrieving {series_uid or study_uid} from {node.name}",
        lambda progress: retrieve(node, study_uid, series_uid, catalog=catalog,
                                  progress=progress),
        on_done or (lambda _report: None))
