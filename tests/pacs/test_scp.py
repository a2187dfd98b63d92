"""medview's storage SCP against DCMTK storescu and pynetdicom senders: allowed AE titles,
hash-built paths (a path-like SOP Instance UID cannot escape), a sender that drops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pydicom
import pytest
from orthanc_proc import DCMTK_ENV
from realparts import DATA, REPO, require_tool

from medview.dicom.catalog.db import Catalog
from medview.pacs.scp import StorageSCP

HFS = DATA / "dcm_qa_decubitus/In/HFS"
MR_FILES = sorted(HFS.rglob("*.dcm"))


def _storescu(port: int, files, *, aet: str = "STORESCU", timeout: float = 60):
    return subprocess.run([require_tool("storescu"), "-aet", aet, "-aec", "MEDVIEW", "-nh",
                           "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=timeout, env=DCMTK_ENV)


@pytest.fixture()
def scp(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    server = StorageSCP("MEDVIEW", 0, tmp_path / "store", allowed_aets=["STORESCU", "PYSCU"],
                        catalog=catalog).start()
    yield server
    server.stop()
    catalog.close()


def test_storescu_series_arrives_byte_for_byte_and_indexed(scp):
    run = _storescu(scp.port, MR_FILES)
    assert run.returncode == 0, run.stderr
    assert len(scp.received) == 35
    for path in scp.received:
        got = pydicom.dcmread(path)
        want = _original(got.SOPInstanceUID)
        assert got.PixelData == want.PixelData and got == want
        # only hex names below the store
        rel = path.relative_to(scp.root).as_posix().removesuffix(".dcm")
        assert set(rel) <= set("0123456789abcdef/")
    series = scp.catalog.series()
    assert len(series) == 1 and series[0].instances == 35


_BY_UID: dict[str, pydicom.Dataset] = {}


def _original(uid: str) -> pydicom.Dataset:
    if not _BY_UID:
        for f in MR_FILES:
            ds = pydicom.dcmread(f)
            _BY_UID[ds.SOPInstanceUID] = ds
    return _BY_UID[uid]


def test_a_sender_not_on_the_allowed_list_is_rejected(scp):
    run = _storescu(scp.port, MR_FILES[:2], aet="INTRUDER")
    assert run.returncode != 0
    assert "rejected" in (run.stderr + run.stdout).lower()
    assert scp.received == [] and not scp.root.exists()


def _pynetdicom_sender(port: int):
    from pynetdicom import AE

    ae = AE(ae_title="PYSCU")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.1.2.1")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDVIEW")
    assert assoc.is_established
    return assoc


def test_a_path_like_sop_instance_uid_cannot_escape_the_store(scp, tmp_path):
    ds = pydicom.dcmread(MR_FILES[0])
    uids = ("../../escaped", "/tmp/absolute", "1.2/../../../escaped2")
    for uid in uids:
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        assoc = _pynetdicom_sender(scp.port)
        try:
            status = assoc.send_c_store(ds)
        finally:
            assoc.release()
        assert status.Status == 0
    assert len(scp.received) == 3
    for path in scp.received:
        assert path.resolve().is_relative_to(scp.root.resolve())
        assert pydicom.dcmread(path).SOPInstanceUID in uids
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))


def test_a_sender_that_drops_mid_association_leaves_what_it_sent(scp):
    assoc = _pynetdicom_sender(scp.port)
    for f in MR_FILES[:5]:
        assert assoc.send_c_store(pydicom.dcmread(f)).Status == 0
    assoc.abort()  # gone without a release
    # and one that drops mid-PDU: a P-DATA header promising more than it sends
    with socket.create_connection(("127.0.0.1", scp.port)) as raw:
        raw.sendall(b"\x01\x00\x00\x00\x10\x00" + b"\x00" * 8)
    # the SCP survives both and takes the next sender
    run = _storescu(scp.port, MR_FILES[5:8])
    assert run.returncode == 0, run.stderr
    assert len(scp.received) == 8
    assert not [p for p in scp.root.rglob("*") if p.name.endswith(".part")]
    scp.stop()  # indexes what is still pending
    assert scp.catalog.series()[0].instances == 8


def test_cli_listen_until_sigterm(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MEDVIEW_DB": str(tmp_path / "c.sqlite")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "medview", "pacs", "listen", "--port",
                             str(port), "--host", "127.0.0.1", "--allow", "STORESCU",
                             "--store", str(tmp_path / "store")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"listening as MEDVIEW on 127.0.0.1:{port}"), \
            line + proc.stderr.read()
        run = _storescu(port, MR_FILES[:4])
        assert run.returncode == 0, run.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: 4 instance(s) stored" in out
    with Catalog(tmp_path / "c.sqlite") as catalog:
        assert catalog.counts()["instances"] == 4
