"""C-GET and C-MOVE over several associations at once (IMAGE-level shares of the instance
list): every instance byte for byte, the first ones first, cancel and resume, and a PACS that
allows one association at a time (DCMTK dcmqrscp) getting one."""

from __future__ import annotations

import pydicom
import pytest
from dcmtk_scp import QueryRetrieveSCP
from series_only_scp import SeriesOnlySCP
from test_retrieve import HFS, _mr_series, _originals, assert_same_as_originals

from medview.cli import main
from medview.core.progress import Cancelled, Progress
from medview.dicom.catalog.db import Catalog
from medview.pacs.listing import instance_table
from medview.pacs.nodes import DimseNode, add_node, get_node
from medview.pacs.query import Query, find
from medview.pacs.retrieve import retrieve


@pytest.mark.parametrize("method", ["get", "move"])
def test_three_associations_bring_every_instance_byte_for_byte(dimse_node, method, tmp_path):
    study_uid, series_uid = _mr_series(dimse_node)
    listed = list(instance_table(dimse_node, study_uid, series_uid))
    arrived = []

    def on_instance(path, uids):
        arrived.append(uids[2])

    with Catalog(tmp_path / "c.sqlite") as catalog:
        report = retrieve(dimse_node, study_uid, series_uid, method=method,
                          root=tmp_path / "store", catalog=catalog, on_instance=on_instance,
                          associations=3)
        assert report.complete and report.expected == 35 and len(report.received) == 35
        assert catalog.series()[0].instances == 35
    # the PACS took all three, each asked for lists of instances
    assert (report.associations, report.level) == (3, "IMAGE")
    assert sorted(arrived) == sorted(listed)
    # the shares alternate along the listing: what comes first is from its start (the
    # first nine listed are the first three requests, one per association)
    assert arrived[0] in listed[:9]
    assert_same_as_originals(report.paths, _originals())


def test_one_association_asks_for_the_series_in_one_request(dimse_node, tmp_path):
    study_uid, series_uid = _mr_series(dimse_node)
    report = retrieve(dimse_node, study_uid, series_uid, root=tmp_path / "store",
                      associations=1)
    assert report.complete and (report.associations, report.level) == (1, "SERIES")
    # too few instances to share out (fewer than 8 an association): one request as well
    [patient] = find(dimse_node, Query(patient_name="Lymphoma"), level="study")
    study = patient.studies[0]
    report = retrieve(dimse_node, study.uid, root=tmp_path / "store2", associations=3)
    assert report.complete and report.expected == 11
    assert (report.associations, report.level) == (1, "STUDY")


@pytest.mark.parametrize(("associations", "resume_with"), [(1, 1), (1, 3), (3, 3)])
def test_cancel_keeps_what_arrived_and_a_resume_fetches_the_rest(
        dimse_node, tmp_path, associations, resume_with):
    study_uid, series_uid = _mr_series(dimse_node)
    progress = Progress()
    seen = []

    def on_instance(path, uids):
        seen.append(path)
        if len(seen) == 5:
            progress.cancel()

    with Catalog(tmp_path / "c.sqlite") as catalog:
        with pytest.raises(Cancelled):
            retrieve(dimse_node, study_uid, series_uid, root=tmp_path / "store",
                     catalog=catalog, on_instance=on_instance, progress=progress,
                     associations=associations)
        kept = catalog.series()[0].instances
        assert 5 <= kept < 35
        assert all(p.exists() for p in seen)
        report = retrieve(dimse_node, study_uid, series_uid, root=tmp_path / "store",
                          catalog=catalog, associations=resume_with)
        assert report.complete and report.already_local == kept
        assert len(report.received) == 35 - kept
        assert not set(report.received) & set(seen)
        assert report.level == "IMAGE"  # the missing instances by their UIDs
        if resume_with == 3:
            assert report.associations == (3 if 35 - kept >= 24 else max(1, (35 - kept) // 8))
        assert catalog.series()[0].instances == 35
    assert_same_as_originals(report.paths, _originals())


@pytest.fixture()
def one_association_peer(tmp_path):
    """DCMTK's query/retrieve SCP holding the MR series, serving one association at a time."""
    peer = QueryRetrieveSCP(tmp_path / "dcmqrscp", sorted(HFS.rglob("*.dcm")),
                            max_associations=1)
    yield peer
    peer.stop()


@pytest.mark.parametrize("associations", [3, 1])
def test_a_peer_allowing_one_association_gets_one(one_association_peer, pacs_home, tmp_path,
                                                  associations):
    """Three asked for: the peer takes one ("rejected transient, local limit exceeded" for
    the others), which brings everything. One asked for: the instance listing (beside the
    transfer) and the C-GET take turns, each retried while the other holds the peer."""
    peer = one_association_peer
    node = add_node(DimseNode("dcmqr", peer.aet, "127.0.0.1", peer.port, timeout_s=10,
                              retrieve_associations=associations))
    study_uid = pydicom.dcmread(next(HFS.rglob("*.dcm")), stop_before_pixels=True) \
        .StudyInstanceUID
    series_uid = pydicom.dcmread(next(HFS.rglob("*.dcm")), stop_before_pixels=True) \
        .SeriesInstanceUID
    report = retrieve(node, study_uid, series_uid, root=tmp_path / "store")
    assert report.complete and len(report.received) == 35 and report.expected == 35
    assert (report.associations, report.level) == \
        (1, "IMAGE" if associations > 1 else "SERIES")
    assert_same_as_originals(report.paths, _originals())


def test_a_peer_refusing_image_level_retrieve_gets_the_series_in_one_request(pacs_home,
                                                                            tmp_path):
    peer = SeriesOnlySCP(sorted(HFS.rglob("*.dcm")))
    try:
        node = add_node(DimseNode("series-only", peer.aet, "127.0.0.1", peer.port,
                                  timeout_s=10, retrieve_associations=3))
        first = peer.datasets[0]
        report = retrieve(node, first.StudyInstanceUID, first.SeriesInstanceUID,
                          root=tmp_path / "store")
    finally:
        peer.stop()
    assert report.complete and len(report.received) == 35 == report.expected
    assert (report.associations, report.level) == (1, "SERIES")
    # it was asked at IMAGE level first (each association once), then for the series
    assert peer.get_levels[-1] == "SERIES" and set(peer.get_levels[:-1]) == {"IMAGE"}
    originals = _originals()
    assert len(report.paths) == len(originals)
    for path in report.paths:  # pynetdicom's SCP may encode them anew: the pixels are kept
        got = pydicom.dcmread(path)
        assert got.PixelData == originals[got.SOPInstanceUID].PixelData


def test_the_node_setting_and_the_cli_option(dimse_node, pacs_home, tmp_path, capsys):
    assert dimse_node.retrieve_associations >= 1
    with pytest.raises(ValueError, match="retrieve associations 0"):
        add_node(DimseNode("bad", "X", "127.0.0.1", 104, retrieve_associations=0))
    port = dimse_node.port
    assert main(["pacs", "add", "two", f"{dimse_node.ae_title}@127.0.0.1:{port}",
                 "--associations", "2", "--timeout", "10"]) == 0
    assert "over up to 2 associations" in capsys.readouterr().out
    assert get_node("two").retrieve_associations == 2
    # a hand-edited nodes file with a bad value: the file and the node are named
    import json

    from medview.userconfig import config_dir

    nodes_file = config_dir() / "pacs-nodes.json"
    data = json.loads(nodes_file.read_text())
    data["two"]["retrieve_associations"] = "many"
    nodes_file.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"pacs-nodes\.json: node 'two': retrieve associations"):
        get_node("two")
    data["two"]["retrieve_associations"] = 2
    nodes_file.write_text(json.dumps(data))
    _study, series_uid = _mr_series(dimse_node)
    store = tmp_path / "store"
    assert main(["pacs", "get", "two", series_uid, "--store", str(store),
                 "--associations", "3"]) == 0
    out = capsys.readouterr().out
    assert "35 received" in out and "over 3 associations" in out
    originals = {pydicom.dcmread(f).SOPInstanceUID for f in HFS.rglob("*.dcm")}
    assert {pydicom.dcmread(f).SOPInstanceUID for f in store.rglob("*.dcm")} == originals


@pytest.mark.parametrize("value", ["0", "17", "many"])
def test_an_association_count_out_of_range_fails_before_any_node_is_contacted(
        pacs_home, capsys, value):
    import socket

    # a port that accepts connections into its backlog but never answers: any attempt to
    # reach the node would leave a connection there (a refused port would only say so)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert main(["pacs", "add", "quiet", f"QUIET@127.0.0.1:{port}", "--timeout", "2"]) == 0
        capsys.readouterr()
        for argv in (["pacs", "add", "other", f"QUIET@127.0.0.1:{port}"],
                     ["pacs", "get", "quiet", "1.2.3.4"]):
            with pytest.raises(SystemExit) as exc:
                main([*argv, "--associations", value])
            assert exc.value.code == 2
            assert f"--associations: {value!r}: a whole number from 1 to 16" in \
                capsys.readouterr().err
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing connected
            listener.accept()
    assert get_node("quiet").retrieve_associations == 1
    with pytest.raises(KeyError):
        get_node("other")
