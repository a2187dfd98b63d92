"""Backup to a real Orthanc (DICOMweb, authentication on) and restore into a fresh catalog:
every instance compared; incremental runs; the archive's differing copy caught by the
verification; results only when asked; the audit log and the 0600 journal."""

from __future__ import annotations

import os
import stat

import pydicom
import pytest
from backup_helpers import (
    KITS,
    TS,
    archive_sops,
    assert_same_instance,
    catalog_files,
    real_catalog,
    web_node_for,
)
from orthanc_proc import Orthanc, available
from realparts import require

from medview.audit import read_audit
from medview.dicom.catalog.db import Catalog
from medview.pacs.backup import backup
from medview.pacs.errors import NodeUnreachable


@pytest.fixture(scope="module")
def orthanc_archive(tmp_path_factory):
    require(available(), "Orthanc with its DICOMweb plugin")
    server = Orthanc(tmp_path_factory.mktemp("archive")).start()
    yield server
    server.stop()


@pytest.fixture()
def archive(orthanc_archive, pacs_home):
    orthanc_archive.delete_all()
    assert orthanc_archive.rest("/instances") == []
    return orthanc_archive


def test_backup_then_restore_into_a_fresh_catalog_gives_every_instance_back(archive, tmp_path):
    from medview.pacs.retrieve import retrieve

    node = web_node_for(archive)
    with real_catalog(tmp_path) as catalog:
        originals = catalog_files(catalog)
        report = backup(node, catalog, all_studies=True, results=True, batch=7)
        studies = {s.uid for s in catalog.studies()}
    assert report.complete, (report.summary(), report.failed[:2])
    n = len(originals)
    assert report.total == n == len(report.sent) == len(report.verified)
    assert report.skipped == [] and report.failed == [] and report.bytes_sent > 0
    assert sorted(archive_sops(archive)) == sorted(originals)  # each exactly once

    # restore = retrieve (WADO-RS) of the backed-up studies into an empty catalog
    with Catalog(tmp_path / "fresh.sqlite") as fresh:
        assert fresh.counts()["instances"] == 0
        for study_uid in sorted(studies):
            got = retrieve(node, study_uid, method="wado", root=tmp_path / "restored",
                           catalog=fresh)
            if not got.complete:  # what a study stream left out comes one by one
                got = retrieve(node, study_uid, method="wado", root=tmp_path / "restored",
                               catalog=fresh)
            assert got.complete, got.summary()
        restored = catalog_files(fresh)
    assert sorted(restored) == sorted(originals)
    for sop, path in originals.items():
        assert_same_instance(path, restored[sop], "restored")
    # the compressed syntaxes came back (transcoded or not) with the same pixel values
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in TS.glob("*.dcm")}
    assert len(syntaxes) >= 6


def test_a_second_run_sends_nothing_and_a_new_series_alone_goes(archive, tmp_path):
    node = web_node_for(archive)
    with real_catalog(tmp_path, with_result=False) as catalog:
        first = backup(node, catalog, all_studies=True)
        lines = len(read_audit())
        assert first.complete and lines == first.series_sent >= 4
        again = backup(node, catalog, all_studies=True)
        assert again.complete and again.sent == [] and again.verified == []
        assert sorted(again.skipped) == sorted(again.verified_before) == sorted(first.sent)
        assert len(read_audit()) == lines  # nothing left the workstation: no audit line

        catalog.index([KITS.parent / "dcm_qa_decubitus" / "In" / "HFS"], workers=1)
        third = backup(node, catalog, all_studies=True)
        assert third.complete and len(third.sent) == 35
        assert len(third.skipped) == len(first.sent) and len(third.verified) == 35
        new = read_audit()[lines:]
        assert [e.action for e in new] == ["backup"] and new[0].detail["instances"] == 35
        assert new[0].destination == f"archive ({archive.dicomweb})" and new[0].bytes > 0

        # --verify-all reads everything back again
        full = backup(node, catalog, all_studies=True, verify_all=True)
        assert full.complete and len(full.verified) == full.total and not full.verified_before
    journal = tmp_path / "data" / "backup-journal.sqlite"
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600


def test_results_go_only_when_asked(archive, tmp_path):
    node = web_node_for(archive)
    with real_catalog(tmp_path) as catalog:
        result = next(s for s in catalog.series()
                      if any(h.manufacturer == "medview" for h in catalog.instances(s.uid)))
        without = backup(node, catalog, all_studies=True)
        assert without.complete and without.results_left_out == 1
        assert result.uid not in {e.series_uid for e in read_audit()}
        only = backup(node, catalog, results=True)  # results alone: just them
        assert only.complete and only.total == 1 and only.sent
        [line] = [e for e in read_audit() if e.series_uid == result.uid]
        assert line.action == "backup"
    assert pydicom.dcmread(archive_path_of(archive, only.sent[0])).Modality == "SEG"


def archive_path_of(archive, sop: str):
    import io

    import requests
    from orthanc_proc import PASSWORD, USER

    [hit] = requests.post(f"{archive.url}/tools/find", auth=(USER, PASSWORD), timeout=10,
                          json={"Level": "Instance", "Query": {"SOPInstanceUID": sop}}).json()
    raw = requests.get(f"{archive.url}/instances/{hit}/file", auth=(USER, PASSWORD),
                       timeout=10).content
    return io.BytesIO(raw)


def test_a_different_copy_in_the_archive_fails_verification_naming_what_differs(
        archive, tmp_path, capsys):
    from medview.cli import main

    node = web_node_for(archive)
    files = sorted(KITS.glob("*.dcm"))
    changed = []
    for k, key in enumerate(("pixel", "PatientName")):
        ds = pydicom.dcmread(files[k])
        if key == "pixel":
            arr = ds.pixel_array.copy()
            arr[100, 100] += 1
            ds.PixelData = arr.tobytes()
        else:
            ds.PatientName = "SOMEONE^ELSE"  # (Orthanc files a changed PatientID apart)
        ds.save_as(tmp_path / f"changed{k}.dcm")
        changed.append(tmp_path / f"changed{k}.dcm")
    archive.upload(changed)  # the archive already holds other versions of two instances

    with real_catalog(tmp_path, with_result=False) as catalog:
        report = backup(node, catalog, [pydicom.dcmread(files[0]).StudyInstanceUID])
    assert not report.complete and report.total == len(files)
    assert len(report.skipped) == 2 and len(report.sent) == len(files) - 2
    bad = {f.path.name: f for f in report.mismatched}
    assert set(bad) == {files[0].name, files[1].name}
    assert "pixel data differ" in bad[files[0].name].reason
    assert "PatientName differ" in bad[files[1].name].reason
    assert len(report.verified) == len(files) - 2

    # the command says the same, exit status 3
    code = main(["backup", "archive", "--all", "--db", str(tmp_path / "catalog.sqlite")])
    out, err = capsys.readouterr()
    assert code == 3
    assert "not verified" in err and files[0].name in err and "pixel data differ" in err
    assert f"{len(files)} already there" in out and "2 failed" in out


def test_refusals_are_clear(archive, tmp_path, pacs_home):
    from medview.pacs.nodes import DimseNode, WebNode

    with real_catalog(tmp_path, with_result=False) as catalog:
        dimse = DimseNode("dimse", "ORTHANC", "127.0.0.1", archive.dicom_port)
        with pytest.raises(ValueError, match="DICOMweb archive"):
            backup(dimse, catalog, all_studies=True)
        with pytest.raises(ValueError, match=r"1\.2\.3\.4: no study or series"):
            backup(web_node_for(archive), catalog, ["1.2.3.4"])
        from orthanc_proc import free_port

        gone = WebNode("gone", f"http://127.0.0.1:{free_port()}/dicom-web", timeout_s=5)
        with pytest.raises(NodeUnreachable, match="connection refused"):
            backup(gone, catalog, all_studies=True)


def test_cancel_keeps_the_report_so_far_and_a_second_run_completes(archive, tmp_path):
    from medview.core.progress import Cancelled, Progress
    from medview.pacs.backup import BackupReport

    node = web_node_for(archive)
    seen = []

    def on_progress(fraction: float, message: str) -> None:
        seen.append((fraction, message))
        if report.sent:  # the first request went out
            progress.cancel()

    progress = Progress(on_progress)
    report = BackupReport("archive")
    with real_catalog(tmp_path) as catalog:
        with pytest.raises(Cancelled):
            backup(node, catalog, all_studies=True, results=True, batch=3, report=report,
                   progress=progress)
        assert report.cancelled and not report.complete
        assert 0 < len(report.sent) < report.total
        assert sorted(report.unverified) == sorted(report.sent)  # not read back yet
        assert all(0.0 <= f <= 1.0 for f, _m in seen) and "sent" in seen[-1][1]
        assert sorted(archive_sops(archive)) == sorted(report.sent)

        rest = backup(node, catalog, all_studies=True, results=True)
    assert rest.complete and sorted(rest.skipped) == sorted(report.sent)
    assert len(rest.sent) == rest.total - len(report.sent) and len(rest.verified) == rest.total


def test_a_jpeg_2000_instance_the_archive_cannot_transcode_is_verified_and_restored(
        archive, tmp_path):
    """Orthanc fails a WADO-RS stream with HTTP 500 when the first instance is one it cannot
    transcode to Explicit VR Little Endian (JPEG 2000); alone, it sends it as stored."""
    from medview.pacs.retrieve import retrieve

    j2k = TS / "9.dcm"
    assert pydicom.dcmread(j2k).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    node = web_node_for(archive)
    with Catalog(tmp_path / "catalog.sqlite") as catalog:
        catalog.index([j2k], workers=1)
        report = backup(node, catalog, all_studies=True)
        [study] = [s.uid for s in catalog.studies()]
    assert report.complete and report.verified == report.sent and len(report.sent) == 1
    with Catalog(tmp_path / "fresh.sqlite") as fresh:
        got = retrieve(node, study, method="wado", root=tmp_path / "restored", catalog=fresh)
        assert got.complete and len(got.received) == 1
        [restored] = catalog_files(fresh).values()
    assert_same_instance(j2k, restored, "restored")
