"""The Session asks a real Orthanc (DICOM + DICOMweb, authentication on): find a study with
its series and what the catalog holds of them, retrieve into the catalog indexing as the
files arrive, a cancel that keeps what came and a retrieve again that fetches only the rest,
verify nodes (C-ECHO, QIDO-RS) and an offload endpoint that does not answer."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pydicom
import pytest
from realparts import DATA
from session_helpers import session_fixture  # noqa: F401 - the fixture session_parts

from medview.pacs.nodes import DimseNode, WebNode, add_node
from medview.pacs.query import Query

# the Orthanc process helper of tests/pacs
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))

HFS = DATA / "dcm_qa_decubitus/In/HFS"
N_HFS = 35  # instances of the decubitus HFS MR series


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    from orthanc_proc import orthanc_with_test_series

    with orthanc_with_test_series(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def nodes(session_parts, orthanc):
    """The Orthanc as a DICOM node "orthanc" and a DICOMweb node "web" (secrets in the
    private 0600 file, never the user's keyring)."""
    import keyring
    from keyring.backends import fail
    from orthanc_proc import MOVE_PORT, PASSWORD, USER

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    add_node(DimseNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom_port, "MEDVIEW",
                       MOVE_PORT, timeout_s=10))
    add_node(WebNode("web", orthanc.dicomweb, "basic", USER, timeout_s=10), PASSWORD)
    yield session_parts
    keyring.set_keyring(previous)


def _find_mr(session, queue, recorder, node="orthanc"):
    job = session.find(node, Query(patient_id="crlab"))
    queue.run_until(lambda: job.is_done, timeout=60)
    assert job.outcome == "finished", job.error
    (name, patients), = recorder.of("pacs_found")[-1:]
    assert name == node
    [patient] = patients
    [study] = patient.studies
    [series] = study.series
    return study, series


def test_find_gives_the_study_its_series_and_what_the_catalog_holds(nodes):
    session, queue, recorder = nodes
    study, series = _find_mr(session, queue, recorder)
    assert series.instances == N_HFS and series.local_instances == 0
    assert series.uid == pydicom.dcmread(next(HFS.rglob("*.dcm")),
                                         stop_before_pixels=True).SeriesInstanceUID
    # the same study over DICOMweb
    web_study, web_series = _find_mr(session, queue, recorder, node="web")
    assert (web_study.uid, web_series.uid) == (study.uid, series.uid)


def test_retrieve_indexes_as_files_arrive_and_reports_the_series_complete(nodes):
    session, queue, recorder = nodes
    study, series = _find_mr(session, queue, recorder)
    arrived, counts, listed = [], [], []
    job = session.retrieve("orthanc", study.uid, series.uid,
                           on_instance=lambda path, uids: arrived.append((path, uids)),
                           on_listed=listed.append)

    def index() -> bool:  # what the window does on its timer, on the session's thread
        batch = arrived[:]
        del arrived[:len(batch)]
        counts.extend(session.index_arrived(batch).items())
        return job.is_done

    queue.run_until(index, timeout=120)
    index()
    assert recorder.of("action_failed") == []
    (report,), = recorder.of("retrieved")
    assert report.complete and report.expected == N_HFS and len(report.received) == N_HFS
    assert counts and all(key == (study.uid, series.uid) for key, _ in counts)
    assert [n for _, n in counts] == sorted(n for _, n in counts)  # it fills in
    assert len(listed) == 1 and len(listed[0]) == N_HFS
    [local] = session.catalog.series()
    assert (local.uid, local.instances) == (series.uid, N_HFS)
    # a search now counts what is local
    assert _find_mr(session, queue, recorder)[1].local_instances == N_HFS


def test_a_cancelled_retrieve_keeps_what_came_and_again_fetches_only_the_rest(nodes):
    session, queue, recorder = nodes
    study, series = _find_mr(session, queue, recorder)
    seen = []
    holder = {}

    def on_instance(path, uids):  # a network thread
        seen.append(path)
        if len(seen) == 5:
            holder["job"].cancel()

    holder["job"] = job = session.retrieve("orthanc", study.uid, series.uid,
                                           on_instance=on_instance)
    queue.run_until(lambda: job.is_done, timeout=120)
    assert job.outcome == "cancelled" and recorder.of("retrieved") == []
    kept = session.catalog.series()[0].instances
    assert 5 <= kept < N_HFS and all(Path(p).exists() for p in seen)

    again = session.retrieve("orthanc", study.uid, series.uid)
    queue.run_until(lambda: again.is_done, timeout=120)
    (report,), = recorder.of("retrieved")
    assert report.complete and report.already_local == kept
    assert len(report.received) == N_HFS - kept
    assert session.catalog.series()[0].instances == N_HFS


def test_verify_nodes_ok_refused_and_unknown(nodes):
    session, queue, recorder = nodes
    add_node(DimseNode("nothing", "ORTHANC", "127.0.0.1", _free_port(), timeout_s=5))
    jobs = [session.verify_node(name) for name in ("orthanc", "web", "nothing", "nowhere")]
    queue.run_until(lambda: all(j.is_done for j in jobs), timeout=60)
    answers = {name: (ok, text) for name, ok, text in recorder.of("node_verified")}
    assert answers["orthanc"][0] and "C-ECHO OK" in answers["orthanc"][1]
    assert answers["web"][0] and answers["web"][1].startswith("web")
    ok, text = answers["nothing"]
    assert not ok and text.startswith("nothing") and "connection refused" in text
    ok, text = answers["nowhere"]
    assert not ok and text.startswith("nowhere")
    assert [j.outcome for j in jobs] == ["finished", "finished", "failed", "failed"]


def test_an_endpoint_that_does_not_answer_says_so(session_parts):
    import keyring
    from keyring.backends import fail

    from medview.remote.config import add_endpoint

    session, queue, recorder = session_parts
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        add_endpoint("site", f"https://127.0.0.1:{_free_port()}", "a-token")
        job = session.verify_endpoint("site")
        queue.run_until(lambda: job.is_done, timeout=60)
    finally:
        keyring.set_keyring(previous)
    (name, ok, text), = recorder.of("endpoint_checked")
    assert (name, ok, job.outcome) == ("site", False, "failed")
    assert text.startswith("site: ") and len(text) > len("site: ")
