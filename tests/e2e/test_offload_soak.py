"""Soak: 200 tiny jobs from 4 clients over 3 Dask workers while workers and the server are
killed (SIGKILL) at seeded random moments (benchmarks/soak.py does the work; this test holds
it to its promises). The server fetches every result from its worker, as with workers on
other machines."""

from __future__ import annotations

import pytest

from benchmarks.soak import run_soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.soak]


def test_200_jobs_with_workers_and_the_server_killed_end_right_once_and_leave_nothing(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    report = run_soak(tmp_path / "soak", jobs=200, clients=4, workers=3, seed=7,
                      kill_every=(0.5, 1.5), fetch=True)
    print(report.summary())
    # the chaos really happened: workers and the server were killed while jobs ran
    assert any(k.startswith("server") for k in report.kills), report.kills
    assert any(k.startswith("worker") for k in report.kills), report.kills
    # every job ended: with the local run's voxels, or failed saying why after its retries
    assert len(report.right) + len(report.wrong) + len(report.failed) == 200
    assert report.wrong == []
    assert report.unclear == [], report.unclear
    assert len(report.right) >= 190, report.failed
    # no job was completed twice (the server's own count), each delivered one once
    assert max(report.completions.values()) == 1
    assert sum(report.completions.values()) >= len(report.right)
    # nothing stays behind: processes, uploads, job folders, downloads, worker spools
    assert report.leftovers == []
