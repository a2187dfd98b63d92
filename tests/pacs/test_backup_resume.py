"""Interrupted backups resume without duplicates: the ``medview backup`` process killed
(SIGKILL) at random points, and the archive (a real Orthanc) stopped or killed mid-backup and
started again on the same storage. In the end every instance is in the archive exactly once
and verified, and each report's counts add up.

"Exactly once": Orthanc keeps one instance per UID, so the archive here runs with
``OverwriteInstances``: an instance sent again replaces the stored file (a new attachment
UUID). The UUIDs seen after each interruption must survive to the end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import requests
from backup_helpers import HFS, archive_sops, catalog_files, real_catalog, web_node_for
from orthanc_proc import PASSWORD, USER, Orthanc, available
from realparts import REPO, require

SEED = int(os.environ.get("MEDVIEW_TEST_SEED", "20261205"))


class OverwritingOrthanc(Orthanc):
    """Overwrites: a resend would change the stored file's id, which the tests check."""

    def config(self) -> dict:
        return {**super().config(), "OverwriteInstances": True}


@pytest.fixture()
def archive(tmp_path, pacs_home):
    require(available(), "Orthanc with its DICOMweb plugin")
    server = OverwritingOrthanc(tmp_path / "orthanc").start()
    yield server
    server.stop()


@pytest.fixture()
def catalog_path(tmp_path):
    with real_catalog(tmp_path, more=(HFS,)) as catalog:
        files = catalog_files(catalog)
    assert len(files) >= 50
    return tmp_path / "catalog.sqlite", files


def _count(archive) -> int:
    try:
        r = requests.get(f"{archive.url}/statistics", auth=(USER, PASSWORD), timeout=2)
        return int(r.json()["CountInstances"])
    except (requests.RequestException, ValueError, KeyError):
        return -1


def _settled(archive) -> int:
    """The instance count once it stops changing (a request still being stored)."""
    last = _count(archive)
    while True:
        time.sleep(0.3)
        now = _count(archive)
        if now == last:
            return now
        last = now


def _uuids(archive) -> dict[str, str]:
    """SOP Instance UID → the archive's file of it."""
    out = {}
    for oid in archive.rest("/instances"):
        sop = archive.rest(f"/instances/{oid}/simplified-tags")["SOPInstanceUID"]
        out[sop] = archive.rest(f"/instances/{oid}/attachments/dicom/info")["Uuid"]
    return out


def _start(db, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.Popen(
        [sys.executable, "-m", "medview.cli", "backup", "archive", "--all", "--results",
         "--batch", "2", "--json", "--db", str(db), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(archive, proc, at_least: int, timeout: float = 120) -> bool:
    """Until the archive holds ``at_least`` instances; False when the backup ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(archive) >= at_least:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError(f"the backup did not get {at_least} instances out in {timeout} s")


def _assert_adds_up(report: dict) -> None:
    c = report["counts"]
    assert c["sent"] + c["skipped"] + c["not_stored"] == c["total"], c
    assert (c["verified"] + c["verified_before"] + c["verify_failed"] + c["unverified"]
            == c["sent"] + c["skipped"]), c
    assert len(set(report["sent"]) | set(report["skipped"])) == c["sent"] + c["skipped"]


def _finish(archive, db, files, seen: dict[str, str]) -> dict:
    proc = _start(db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    report = json.loads(out)
    _assert_adds_up(report)
    c = report["counts"]
    assert report["complete"] and c["total"] == len(files)
    assert c["verified"] + c["verified_before"] == len(files) and not report["failed"]
    # what earlier runs got into the archive was not sent again: skipped, same files there
    assert set(report["skipped"]) >= set(seen)
    assert sorted(archive_sops(archive)) == sorted(files)  # each exactly once
    uuids = _uuids(archive)
    assert {sop: uuids[sop] for sop in seen} == seen
    return report


def test_killing_the_client_at_random_points_then_resuming(archive, catalog_path):
    db, files = catalog_path
    web_node_for(archive)
    rng = random.Random(SEED)
    n = len(files)
    seen: dict[str, str] = {}
    kills = 0
    targets = sorted(rng.sample(range(1, n), 3))  # instances in the archive at each kill
    for round_ in range(4):
        have = max(_count(archive), 0)
        if have >= n:
            break
        target = max(targets[round_], have + 1) if round_ < 3 else n
        proc = _start(db)
        reached = _wait_for(archive, proc, target)
        if target == n:  # after the last instance went out: in the read-back
            time.sleep(rng.uniform(0.0, 0.3))
        if reached and proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate(timeout=60)
        _settled(archive)
        seen = _uuids(archive)
    assert kills >= 2, f"seed {SEED}: the backup was killed only {kills} time(s)"
    report = _finish(archive, db, files, seen)
    assert len(report["skipped"]) == len(seen)
    assert report["counts"]["sent"] == len(files) - len(seen)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_the_archive_going_away_mid_backup_then_coming_back(archive, catalog_path, how):
    db, files = catalog_path
    web_node_for(archive)
    n = len(files)
    k = random.Random(SEED + len(how)).randint(n // 4, n // 2)
    proc = _start(db)
    assert _wait_for(archive, proc, k)
    if how == "stop":
        # an orderly stop drains the connections it has; the client is held while the archive
        # goes down, so that the stop lands between two of its requests whatever the load
        # (unheld, the whole backup could finish during the drain)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            archive.stop()
        finally:
            os.kill(proc.pid, signal.SIGCONT)
    else:
        archive.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err  # partial: what failed is listed
    report = json.loads(out)
    _assert_adds_up(report)
    assert not report["complete"] and "127.0.0.1" in report["error"]
    assert report["counts"]["not_stored"] > 0 and "not stored:" in err
    assert report["counts"]["sent"] >= 1

    archive.start()  # the same ports and storage
    seen = _uuids(archive)
    assert len(seen) >= 1
    _finish(archive, db, files, seen)
