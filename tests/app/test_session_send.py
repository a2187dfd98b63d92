"""The Session sends files to a configured DICOM node (a real DCMTK storescp): ``sent`` with
the report, byte-identical files at the peer, one line in the disclosure audit log."""

from __future__ import annotations

import socket
import subprocess
import time

import pydicom
import pytest
from realparts import require_tool
from session_helpers import (
    MR,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

from medview.audit import read_audit
from medview.pacs.nodes import DimseNode, add_node


@pytest.fixture
def storescp(tmp_path, session_parts):
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # never the user's keyring from a test
    folder = tmp_path / "received"
    folder.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([require_tool("storescp"), "-aet", "DCMTKSCP", "-od", str(folder),
                             "-uf", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={"TCP_NODELAY": "1", "PATH": "/usr/bin"})
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "storescp did not start"
            time.sleep(0.02)
    add_node(DimseNode("dcmtk", "DCMTKSCP", "127.0.0.1", port, timeout_s=10))
    yield folder
    proc.kill()
    proc.wait()
    keyring.set_keyring(previous)


def test_send_stores_the_files_on_the_node_and_audits_it(session_parts, storescp, data_dir):
    session, queue, recorder = session_parts
    files = sorted((data_dir / MR).glob("*.dcm"))[:5]
    job = session.send("dcmtk", files)
    queue.run_until(lambda: job.is_done, timeout=120)
    assert recorder.of("action_failed") == []
    (report,), = recorder.of("sent")
    assert report.complete and sorted(report.sent) == files
    received = {pydicom.dcmread(f).SOPInstanceUID: f for f in storescp.iterdir()}
    for f in files:
        uid = pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
        assert pydicom.dcmread(received[uid]).PixelData == pydicom.dcmread(f).PixelData
    (entry,) = [e for e in read_audit() if e.action == "send"]
    assert "DCMTKSCP" in entry.destination


def test_send_to_an_unknown_node_fails_naming_it(session_parts, storescp, data_dir):
    session, queue, recorder = session_parts
    job = session.send("nowhere", sorted((data_dir / MR).glob("*.dcm"))[:1])
    queue.run_until(lambda: job.is_done, timeout=60)
    (error,), = recorder.of("action_failed")
    assert "nowhere" in error.message and recorder.of("sent") == []
