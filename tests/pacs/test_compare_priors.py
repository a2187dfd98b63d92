"""Priors to compare with, from the catalog and from a real PACS (Orthanc holding the supine
decubitus MR): found by Patient ID, retrieved on request, then listed from the catalog."""

from __future__ import annotations

from realparts import DATA

from medview.app.compare_priors import (
    find_priors,
    local_priors,
    retrieve_prior,
    start_find_priors,
)
from medview.app.session import Session
from medview.app.tasks import DispatchQueue, JobRunner
from medview.pacs.nodes import DimseNode

HFDL = DATA / "dcm_qa_decubitus/In/HFDL"


def _session(tmp_path):
    queue = DispatchQueue()
    session = Session(tmp_path / "catalog.sqlite", runner=JobRunner(queue))
    job = session.import_paths(HFDL)
    queue.run_until(lambda: job.is_done, timeout=120)
    [series] = session.catalog.series()
    return session, queue, series.uid


def test_priors_on_the_pacs_are_found_and_retrieved_on_request(tmp_path, web_node,
                                                               dimse_node):
    session, queue, hfdl_uid = _session(tmp_path)
    try:
        assert local_priors(session.catalog, hfdl_uid) == []  # only the decubitus study here
        found = []
        job = start_find_priors(session, hfdl_uid, found.append, nodes=[web_node, dimse_node])
        queue.run_until(lambda: job.is_done, timeout=60)
        queue.drain()
        [(studies, problems)] = found
        assert problems == []
        # the supine study, once (both nodes list it), not yet in the catalog
        [prior] = studies
        assert prior.source == web_node.name and prior.in_catalog == "none"
        assert prior.modalities == ("MR",) and len(prior.series) == 1

        done = []
        job = retrieve_prior(session, web_node, prior.study_uid, prior.series[0].uid,
                             on_done=done.append)
        queue.run_until(lambda: job.is_done, timeout=120)
        queue.drain()
        assert done and len(done[0].received) == 35 and not done[0].missing
        [local] = local_priors(session.catalog, hfdl_uid)
        assert local.study_uid == prior.study_uid and local.source == "catalog"
        assert [s.uid for s in local.series] == [prior.series[0].uid]
        # asked again: the catalog's copy, not the PACS's
        again, _ = find_priors(session.catalog, hfdl_uid, [web_node])
        assert [(s.study_uid, s.source) for s in again] == [(prior.study_uid, "catalog")]
    finally:
        assert session.close(timeout=30)
        queue.drain()


def test_an_unreachable_node_is_named_and_the_others_still_answer(tmp_path, web_node,
                                                                  pacs_home):
    from orthanc_proc import free_port

    session, queue, hfdl_uid = _session(tmp_path)
    try:
        gone = DimseNode("gone", "NOBODY", "127.0.0.1", free_port(), "MEDVIEW", timeout_s=2)
        studies, problems = find_priors(session.catalog, hfdl_uid, [gone, web_node])
        assert len(studies) == 1 and studies[0].source == web_node.name
        assert len(problems) == 1 and problems[0].startswith("gone: ")
    finally:
        assert session.close(timeout=30)
        queue.drain()
