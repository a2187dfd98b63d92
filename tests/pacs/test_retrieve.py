"""Retrieve from Orthanc by C-GET, C-MOVE and WADO-RS: byte-for-byte round trips, arrival
callbacks, cancel, a PACS killed mid-transfer and the resume that fetches only the rest."""

from __future__ import annotations

import subprocess
import threading

import pydicom
import pytest
from orthanc_proc import DCMTK_ENV, MOVE_PORT, PASSWORD, USER, Orthanc, free_port
from realparts import DATA, require_tool

from medview.cli import main
from medview.core.progress import Progress
from medview.dicom.catalog.db import Catalog
from medview.pacs.errors import AuthenticationFailed, NodeUnreachable, PacsError
from medview.pacs.nodes import DimseNode, WebNode, add_node
from medview.pacs.query import Query, find
from medview.pacs.retrieve import retrieve

HFS = DATA / "dcm_qa_decubitus/In/HFS"


def _originals() -> dict[str, pydicom.Dataset]:
    out = {}
    for f in sorted(HFS.rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        out[ds.SOPInstanceUID] = ds
    return out


def _mr_series(node):
    [patient] = find(node, Query(patient_id="crlab"))
    study = patient.studies[0]
    return study.uid, study.series[0].uid


def assert_same_as_originals(paths, originals):
    assert len(paths) == len(originals)
    for path in paths:
        got = pydicom.dcmread(path)
        want = originals[got.SOPInstanceUID]
        assert got.PixelData == want.PixelData  # byte for byte
        # every attribute of the dataset survives (the file meta is the receiver's)
        assert got == want, path
        assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID


@pytest.fixture()
def node_for(dimse_node, web_node):
    return {"get": dimse_node, "move": dimse_node, "wado": web_node}


@pytest.mark.parametrize("method", ["get", "move", "wado"])
def test_round_trip_into_the_catalog(node_for, method, tmp_path):
    node = node_for[method]
    study_uid, series_uid = _mr_series(node)
    arrived = []

    def on_instance(path, uids):
        # the file is complete and in place when the viewer hears of it
        arrived.append((pydicom.dcmread(path).SOPInstanceUID, uids[2]))

    with Catalog(tmp_path / "c.sqlite") as catalog:
        report = retrieve(node, study_uid, series_uid, method=method, root=tmp_path / "store",
                          catalog=catalog, on_instance=on_instance)
        assert report.complete and report.expected == 35 and len(report.received) == 35
        assert [r.uid for r in catalog.series()] == [series_uid]
        assert catalog.series()[0].instances == 35
    assert len(arrived) == 35 and all(a == b for a, b in arrived)
    assert_same_as_originals(report.paths, _originals())
    if method != "wado":  # C-STORE: the file meta pynetdicom's event.file_meta gives
        from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

        for path in report.paths:
            got = pydicom.dcmread(path, stop_before_pixels=True)
            meta = got.file_meta
            assert (meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID) == \
                (got.SOPClassUID, got.SOPInstanceUID)
            assert (meta.ImplementationClassUID, meta.ImplementationVersionName) == \
                (PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION)
    # a second retrieve asks for nothing
    again = retrieve(node, study_uid, series_uid, method=method, root=tmp_path / "store")
    assert (again.received, again.already_local, again.complete) == ([], 35, True)


def test_medview_c_get_equals_dcmtk_getscu(dimse_node, orthanc, tmp_path):
    getscu = require_tool("getscu")
    study_uid, series_uid = _mr_series(dimse_node)
    out = tmp_path / "dcmtk"
    out.mkdir()
    run = subprocess.run(
        [getscu, "-S", "-aet", "GETSCU", "-aec", orthanc.aet, "-k", "QueryRetrieveLevel=SERIES",
         "-k", f"StudyInstanceUID={study_uid}", "-k", f"SeriesInstanceUID={series_uid}",
         "-od", str(out), "127.0.0.1", str(orthanc.dicom_port)],
        capture_output=True, text=True, timeout=60, env=DCMTK_ENV)
    assert run.returncode == 0, run.stderr
    theirs = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in out.iterdir()}
    report = retrieve(dimse_node, study_uid, series_uid, root=tmp_path / "store")
    assert len(theirs) == 35 == len(report.paths)
    for path in report.paths:
        ours = pydicom.dcmread(path)
        assert ours == theirs[ours.SOPInstanceUID]


@pytest.fixture(scope="module")
def big_series(tmp_path_factory):
    """A 128-slice 512² phantom CT (64 MiB): more than the loopback socket buffers hold, so
    a PACS killed mid-transfer cannot have sent it all."""
    from phantoms import write_ct_series

    folder = tmp_path_factory.mktemp("big") / "ct"
    files = write_ct_series(folder, shape=(128, 512, 512), patient_id="BIG")
    return {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in files}, files


@pytest.mark.parametrize("method", ["get", "wado"])
def test_pacs_killed_mid_retrieve_then_resumed(tmp_path, pacs_home, method, big_series):
    """A PACS that dies: what arrived is kept, the rest is listed, a resume completes it."""
    originals, files = big_series
    server = Orthanc(tmp_path / "orthanc", {"MEDVIEW": ("127.0.0.1", MOVE_PORT)}).start()
    try:
        server.upload(files)
        if method == "get":
            node = add_node(DimseNode("dying", server.aet, "127.0.0.1", server.dicom_port,
                                      timeout_s=5))
        else:
            node = add_node(WebNode("dying", server.dicomweb, "basic", USER, timeout_s=5),
                            PASSWORD)
        [patient] = find(node, Query(patient_id="BIG"))
        study_uid, series_uid = patient.studies[0].uid, patient.studies[0].series[0].uid
        listed = threading.Event()

        def on_progress(fraction, message):
            # the instance list is asked for beside the transfer; the progress counts
            # against it ("k/128 instances") once it is known
            if message.endswith("/128 instances"):
                listed.set()

        def kill_after_ten(path, uids):
            # the tenth instance holds the transfer (the PACS's sends block on full socket
            # buffers, 64 MiB is more than they hold) until the list is known; then the PACS
            # dies
            if len(list(path.parent.glob("*.dcm"))) == 10 and server.proc is not None:
                assert listed.wait(30)
                server.kill()

        report = retrieve(node, study_uid, series_uid, root=tmp_path / "store",
                          on_instance=kill_after_ten, progress=Progress(on_progress))
        assert not report.complete and report.error
        assert 10 <= len(report.received) < 128
        assert len(report.missing) == 128 - len(report.received)
        assert "missing" in report.summary()
        server.start()  # same storage, same ports
        resumed = retrieve(node, study_uid, series_uid, root=tmp_path / "store")
        assert resumed.complete and resumed.already_local == len(report.received)
        assert len(resumed.received) == 128 - len(report.received)
        assert not set(resumed.received) & set(report.received)
        assert_same_as_originals(resumed.paths, originals)
    finally:
        server.stop()


def test_move_without_our_port_says_what_to_do(orthanc, pacs_home, tmp_path):
    node = add_node(DimseNode("nomove", orthanc.aet, "127.0.0.1", orthanc.dicom_port,
                              retrieve="move", timeout_s=5))
    study_uid, series_uid = _mr_series(node)
    with pytest.raises(PacsError, match="--our-port"):
        retrieve(node, study_uid, series_uid, root=tmp_path / "store")
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.dcm"))


def test_a_401_and_a_refused_port_are_errors_naming_what_failed(orthanc, pacs_home, tmp_path,
                                                                capsys):
    good = add_node(WebNode("web", orthanc.dicomweb, "basic", USER), PASSWORD)
    study_uid, series_uid = _mr_series(good)
    bad = add_node(WebNode("bad", orthanc.dicomweb, "basic", USER), "wrong")
    with pytest.raises(AuthenticationFailed, match="HTTP 401 unauthorized"):
        retrieve(bad, study_uid, series_uid, root=tmp_path / "store")
    gone = add_node(DimseNode("gone", "X", "127.0.0.1", free_port(), timeout_s=5))
    with pytest.raises(NodeUnreachable, match="connection refused"):
        retrieve(gone, study_uid, series_uid, root=tmp_path / "store")
    assert main(["pacs", "get", "gone", series_uid, "--store", str(tmp_path / "s")]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_cli_get_by_series_uid_and_study_uid(dimse_node, tmp_path, capsys):
    study_uid, series_uid = _mr_series(dimse_node)
    store = tmp_path / "store"
    assert main(["pacs", "get", "orthanc", series_uid, "--store", str(store)]) == 0
    assert "35 received, 0 already here, 0 missing of 35" in capsys.readouterr().out
    assert main(["pacs", "get", "orthanc", study_uid, "--store", str(store)]) == 0
    assert "0 received, 35 already here" in capsys.readouterr().out
    assert main(["pacs", "get", "orthanc", "1.2.3.4.5.6", "--store", str(store)]) == 1
    assert "no study or series with UID 1.2.3.4.5.6" in capsys.readouterr().err
    with Catalog() as catalog:
        assert catalog.counts()["instances"] == 35


def test_move_to_an_ae_title_the_pacs_does_not_know(orthanc, pacs_home, tmp_path):
    node = add_node(DimseNode("stranger", orthanc.aet, "127.0.0.1", orthanc.dicom_port,
                              "STRANGER", free_port(), retrieve="move", timeout_s=5))
    study_uid, series_uid = _mr_series(node)
    with pytest.raises(PacsError,
                       match="does not know our AE title 'STRANGER' as a C-MOVE destination"):
        retrieve(node, study_uid, series_uid, root=tmp_path / "store")



@pytest.mark.parametrize("method", ["get", "wado"])
def test_a_whole_study_by_study_uid(node_for, method, tmp_path):
    node = node_for[method]
    [patient] = find(node, Query(patient_name="Lymphoma"), level="study")
    study = patient.studies[0]
    with Catalog(tmp_path / "c.sqlite") as catalog:
        report = retrieve(node, study.uid, method=method, root=tmp_path / "store",
                          catalog=catalog)
        assert report.complete and len(report.received) == 11 == report.expected
        assert sum(s.instances for s in catalog.series(study.uid)) == 11
    originals = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f)
                 for f in (DATA / "kits_dupe_positions").glob("*.dcm")}
    assert_same_as_originals(report.paths, originals)
