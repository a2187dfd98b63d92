"""The Session backs up the catalog to a real Orthanc archive (DICOMweb): ``backed_up`` with
the report it filled while running, every instance sent and verified, one audit line per
series; a backup to a node that is not configured fails with its name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from realparts import require
from session_helpers import (
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))
from backup_helpers import LIVER, web_node_for
from orthanc_proc import Orthanc, available


@pytest.fixture
def archive(tmp_path, session_parts):
    import keyring
    from keyring.backends import fail

    require(available(), "Orthanc with its DICOMweb plugin")
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # the secret in the test's 0600 file
    server = Orthanc(tmp_path / "orthanc").start()
    try:
        web_node_for(server)
        yield server
    finally:
        server.stop()
        keyring.set_keyring(previous)


def test_a_backup_sends_and_verifies_every_instance(session_parts, archive):
    from medview.audit import read_audit
    from medview.pacs.backup import BackupReport

    session, queue, recorder = session_parts
    import_and_wait(session, queue, [LIVER / "ct-3slice", LIVER / "liver.dcm"])
    report = BackupReport("archive")
    job = session.backup("archive", all_studies=True, report=report)
    assert job.title == "Backing up to archive"
    queue.run_until(lambda: recorder.of("backed_up") or recorder.of("action_failed"),
                    timeout=120)
    assert not recorder.of("action_failed"), recorder.of("action_failed")
    [(done,)] = recorder.of("backed_up")
    assert done is report and report.complete and report.total == 4
    assert len(report.sent) == 4
    series = {s.series_uid for p in session.patients() for st in p.studies for s in st.series}
    lines = [line for line in read_audit() if line.action == "backup"]
    assert {line.series_uid for line in lines} == series


def test_a_backup_to_an_unknown_node_fails_naming_it(session_parts):
    session, queue, recorder = session_parts
    session.backup("nowhere", all_studies=True)
    queue.run_until(lambda: recorder.of("action_failed"), timeout=60)
    [(error,)] = recorder.of("action_failed")
    assert "nowhere" in error.message and not recorder.of("backed_up")
