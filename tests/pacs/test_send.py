"""Send by C-STORE (to DCMTK storescp and Orthanc) and STOW-RS (Orthanc): byte-for-byte,
transfer syntaxes negotiated, partial failures listed, a peer that dies mid-send."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import requests
from dcmtk_scp import StoreSCP
from orthanc_proc import PASSWORD, USER, free_port
from realparts import DATA, REPO

from medview.cli import main
from medview.core.progress import Progress
from medview.dicom.catalog.db import Catalog
from medview.pacs.errors import AuthenticationFailed
from medview.pacs.nodes import DimseNode, WebNode, add_node
from medview.pacs.send import send

HFS = DATA / "dcm_qa_decubitus/In/HFS"
TS_FILES = sorted((DATA / "dcm_qa_ts/In").glob("*.dcm"))
CT3 = DATA / "dcmqi_seg/data/segmentations/ct-3slice"


@pytest.fixture()
def storescp(tmp_path, pacs_home):
    scp = StoreSCP(tmp_path / "received")
    add_node(DimseNode("dcmtk", "DCMTKSCP", "127.0.0.1", scp.port, timeout_s=10))
    yield scp
    scp.stop()


def _by_uid(files):
    return {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in files}


def _sends():
    """The send lines of this test's disclosure audit log (MEDVIEW_DATA_DIR is per test)."""
    from medview.audit import read_audit

    return [e for e in read_audit() if e.action == "send"]


def _series_uid(path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_series_to_storescp_byte_for_byte(storescp, capsys):
    assert main(["pacs", "send", "dcmtk", str(HFS)]) == 0
    assert "35 of 35 instance(s) stored on dcmtk by C-STORE" in capsys.readouterr().out
    got, want = storescp.files(), _by_uid(HFS.rglob("*.dcm"))
    assert set(got) == set(want)
    for uid, ds in got.items():
        assert ds.PixelData == want[uid].PixelData and ds == want[uid]
    # one disclosure line for the series: where it went, how many instances and bytes
    files = sorted(HFS.rglob("*.dcm"))
    [line] = _sends()
    assert line.series_uid == _series_uid(files[0])
    assert line.destination == f"dcmtk DCMTKSCP@127.0.0.1:{storescp.port}"
    assert line.bytes == sum(f.stat().st_size for f in files)
    assert line.detail["instances"] == 35 and line.detail["failed"] == 0


def test_compressed_files_are_decoded_for_a_peer_that_declines_them(storescp):
    report = send(add_node(DimseNode("dcmtk2", "DCMTKSCP", "127.0.0.1", storescp.port)),
                  TS_FILES)
    assert report.complete and len(report.sent) == 9
    # storescp accepts only uncompressed syntaxes by default: RLE, JPEG, JPEG-LS, J2K decoded
    assert sorted(p.name for p in report.decoded) == ["4.dcm", "5.dcm", "6.dcm", "7.dcm",
                                                     "8.dcm", "9.dcm"]
    got, want = storescp.files(), _by_uid(TS_FILES)
    for uid, ds in got.items():
        assert not ds.file_meta.TransferSyntaxUID.is_compressed
        assert np.array_equal(ds.pixel_array, want[uid].pixel_array)  # lossless: equal pixels


def test_compressed_files_go_as_they_are_to_orthanc(orthanc, dimse_node):
    try:
        report = send(dimse_node, TS_FILES)
        assert report.complete and report.decoded == []
        for f in TS_FILES:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            [hit] = requests.post(f"{orthanc.url}/tools/lookup", data=ds.SOPInstanceUID,
                                  auth=(USER, PASSWORD), timeout=10).json()
            ts = requests.get(f"{orthanc.url}/instances/{hit['ID']}/metadata/TransferSyntax",
                              auth=(USER, PASSWORD), timeout=10).text
            if ds.file_meta.TransferSyntaxUID.is_compressed:  # sent as is, not transcoded
                assert ts == ds.file_meta.TransferSyntaxUID, f
    finally:
        _delete_patient_of(orthanc, TS_FILES[0])


def _delete_patient_of(orthanc, path):
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    for hit in requests.post(f"{orthanc.url}/tools/lookup", data=uid, auth=(USER, PASSWORD),
                             timeout=10).json():
        requests.delete(f"{orthanc.url}/studies/{hit['ID']}", auth=(USER, PASSWORD),
                        timeout=10).raise_for_status()


def test_partial_failure_lists_what_was_not_stored(storescp, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for f in sorted(HFS.rglob("*.dcm"))[:3]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "notes.txt").write_text("not DICOM")
    assert main(["pacs", "send", "dcmtk", str(folder)]) == 3
    captured = capsys.readouterr()
    assert "3 of 4 instance(s) stored" in captured.out
    assert f"not stored: {folder / 'notes.txt'}: not a DICOM file" in captured.err
    assert len(storescp.files()) == 3
    [line] = _sends()  # the text file is not a series: one line, for the three instances
    assert line.series_uid == _series_uid(folder / sorted(HFS.rglob("*.dcm"))[0].name)
    assert (line.detail["instances"], line.detail["failed"]) == (3, 0)


def test_a_peer_that_dies_mid_send_leaves_a_list_of_the_rest(storescp):
    node = add_node(DimseNode("dying", "DCMTKSCP", "127.0.0.1", storescp.port, timeout_s=5))

    def kill_at_a_fifth(fraction, message):
        if fraction >= 0.2 and storescp.proc.poll() is None:
            storescp.proc.kill()
            storescp.proc.wait()

    # one association (storescp without --fork serves one at a time anyway)
    report = send(node, [HFS], associations=1, progress=Progress(kill_at_a_fifth))
    assert not report.complete
    assert 7 <= len(report.sent) < 35
    assert len(report.sent) + len(report.failed) == 35
    assert all("abort" in reason or "C-STORE" in reason for _p, reason in report.failed)
    [line] = _sends()  # what left before the peer died is a disclosure too
    assert line.detail["instances"] == len(report.sent)
    assert line.detail["failed"] == len(report.failed)
    assert line.bytes == sum(p.stat().st_size for p in report.sent)


def test_refused_and_unknown(pacs_home, capsys):
    add_node(DimseNode("nobody", "X", "127.0.0.1", free_port(), timeout_s=5))
    assert main(["pacs", "send", "nobody", str(HFS)]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert main(["pacs", "send", "nobody", "1.2.3.999"]) == 1
    assert "no series or study with this UID in the catalog" in capsys.readouterr().err


def test_catalog_series_by_uid(storescp, capsys):
    with Catalog() as catalog:
        catalog.index(CT3)
        [series] = catalog.series()
    assert main(["pacs", "send", "dcmtk", series.uid]) == 0
    assert len(storescp.files()) == 3


def test_stow_rs_to_orthanc_and_a_401(orthanc, web_node, pacs_home, capsys):
    try:
        report = send(web_node, [CT3])
        assert report.complete and len(report.sent) == 3 and report.method == "STOW-RS"
        uid = pydicom.dcmread(next(CT3.iterdir()), stop_before_pixels=True).SeriesInstanceUID
        [hit] = requests.post(f"{orthanc.url}/tools/lookup", data=uid, auth=(USER, PASSWORD),
                              timeout=10).json()
        stored = orthanc.rest(f"/series/{hit['ID']}/instances")
        assert len(stored) == 3
        want = _by_uid(CT3.iterdir())
        for inst in stored:
            raw = requests.get(f"{orthanc.url}/instances/{inst['ID']}/file",
                               auth=(USER, PASSWORD), timeout=10).content
            got = pydicom.dcmread(pydicom.filebase.DicomBytesIO(raw))
            assert got.PixelData == want[got.SOPInstanceUID].PixelData
        [line] = _sends()
        assert line.series_uid == uid and line.destination == f"orthanc-web {orthanc.dicomweb}"
        assert line.detail == {"instances": 3, "failed": 0, "method": "STOW-RS"}
    finally:
        _delete_patient_of(orthanc, next(CT3.iterdir()))
    bad = add_node(WebNode("bad", orthanc.dicomweb, "basic", USER), "nope")
    with pytest.raises(AuthenticationFailed, match="401"):
        send(bad, [CT3])
    assert main(["pacs", "send", "bad", str(CT3)]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert len(_sends()) == 1  # refused: nothing left, no line


def test_run_with_dicom_out_and_send(storescp, tmp_path, capsys):
    chain = REPO / "resources/chains/ct_denoise_lung_threshold.json"
    out = tmp_path / "dicom-out"
    code = main(["run", str(chain), str(CT3), "--dicom-out", str(out), "--send", "dcmtk"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert written and f"{len(written)} of {len(written)} instance(s) stored" in captured.out
    got = storescp.files()
    assert len(got) == len(written)
    seg = [ds for ds in got.values() if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"]
    assert seg, "the lung SEG reached the peer"
    # a line per series the run wrote and sent (the SEG's and the derived series')
    lines = _sends()
    assert sorted(e.series_uid for e in lines) == sorted({str(ds.SeriesInstanceUID)
                                                          for ds in got.values()})
    assert sum(e.detail["instances"] for e in lines) == len(written)
    assert all(e.destination.startswith("dcmtk DCMTKSCP@127.0.0.1:") for e in lines)
    assert main(["run", str(chain), str(CT3), "-o", str(tmp_path / "x"), "--send",
                 "dcmtk"]) == 1
    assert "give --dicom-out FOLDER too" in capsys.readouterr().err


def test_parallel_associations_deliver_everything_once(pacs_home, tmp_path):
    from medview.pacs.scp import StorageSCP

    with StorageSCP("MEDVIEW", 0, tmp_path / "store", allowed_aets=["MEDVIEW"]) as scp:
        node = add_node(DimseNode("self", "MEDVIEW", "127.0.0.1", scp.port, timeout_s=10))
        report = send(node, [HFS], associations=4)
        assert report.complete and len(report.sent) == 35
        assert len(set(scp.received)) == 35
    want = _by_uid(HFS.rglob("*.dcm"))
    for path in scp.received:
        got = pydicom.dcmread(path)
        assert got == want[got.SOPInstanceUID]
