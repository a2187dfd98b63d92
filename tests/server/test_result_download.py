"""Results stream back in chunks, a download that stopped resumes where it stopped, and a
worker's spool does not keep results nobody came back for."""

from __future__ import annotations

import json

import numpy as np
import pytest
from server_helpers import job_body, noise_volume, wait_done

from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.errors import RemoteError
from medview.remote.run import collect_job, submit_job

GAMMA = {"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.7}}]}


def _log(tmp_path) -> list[dict]:
    text = (tmp_path / "state" / "requests.log").read_text()
    return [json.loads(x) for x in text.splitlines()]


def test_a_download_cut_short_resumes_with_a_range_request(make_client, tmp_path):
    http = make_client()
    job = http.post("/api/v1/jobs", content=job_body(GAMMA, noise_volume((8, 128, 128)))).json()
    assert wait_done(http, job["id"])["state"] == "succeeded"
    url = f"/api/v1/jobs/{job['id']}/result"
    whole = http.get(url).content
    assert len(whole) > 500_000
    # the first 200 kB arrived before the connection dropped
    cut = 200_000
    head = http.get(url, headers={"Range": f"bytes=0-{cut - 1}"})
    assert head.status_code == 206 and head.content == whole[:cut]
    part = tmp_path / "dl" / "result.part"
    part.parent.mkdir()
    part.write_bytes(head.content)
    client = RemoteClient("https://testserver", http.headers["Authorization"].split()[1],
                          http=http, name="inproc")
    assert client.download_to(job["id"], part, chunk_bytes=64 << 10) == len(whole)
    assert part.read_bytes() == whole
    last = _log(tmp_path)[-1]
    assert last["status"] == 206 and last["out_bytes"] == len(whole) - cut
    # a part file of a complete result: nothing more is fetched, nothing is doubled
    assert client.download_to(job["id"], part) == len(whole)
    assert part.read_bytes() == whole


def test_collect_streams_to_a_file_and_keeps_no_download_behind(make_client, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    http = make_client()
    client = RemoteClient("https://testserver", http.headers["Authorization"].split()[1],
                          http=http, name="inproc")
    vol = noise_volume((6, 96, 96))
    chain = Chain.from_dict(GAMMA)
    job = submit_job(client, chain, {"image": vol})
    downloads = tmp_path / "downloads"
    result = collect_job(client, job, download_dir=downloads, acknowledge=False)
    local = run_chain(chain, {"image": vol})
    assert np.array_equal(result.result.array, local.result.array)
    assert list(downloads.iterdir()) == []
    # not acknowledged: the server still has it until the caller says so
    assert client.status(job.status.id).state == "succeeded"
    client.acknowledge(job.status.id)
    assert client.status(job.status.id).state == "delivered"
    with pytest.raises(RemoteError) as err:
        client.download_to(job.status.id, downloads / "again.part")
    assert err.value.status == 410


def test_the_spool_sweep_deletes_what_dead_workers_and_nobody_for_a_day_left(tmp_path,
                                                                            monkeypatch):
    import os
    import subprocess
    import sys
    import time

    from medview.server.dask_tasks import spool_base, spool_dir, sweep_spool

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    old, new = spool_dir() / "a.1.bin", spool_dir() / "b.1.bin"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert spool_dir().parent == spool_base() and spool_base().parent == tmp_path
    # a worker process that has ended (its pid is free) left one; a live one's stays
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (spool_base() / dead).mkdir()
    (spool_base() / dead / "c.1.bin").write_bytes(b"z")
    live = spool_base() / str(os.getppid())
    live.mkdir()
    (live / "d.1.bin").write_bytes(b"w")
    assert sweep_spool() == 2 and not old.exists() and new.exists()
    assert not (spool_base() / dead).exists() and (live / "d.1.bin").exists()


def test_a_spooled_result_shrinks_as_the_server_takes_it_and_released_bytes_stay_gone(
        tmp_path, monkeypatch):
    import tempfile

    from medview.server.dask_tasks import read_chunk, remove_spooled, spool_dir
    from medview.server.worker import JobFailed

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    mib = 1 << 20
    data = np.random.default_rng(1).integers(0, 256, 8 * mib, dtype=np.uint8).tobytes()
    spooled = spool_dir() / "job.1.bin"
    spooled.write_bytes(data)
    first = read_chunk(str(spooled), 0, 4 * mib)
    assert first.dtype == np.uint8 and first.tobytes() == data[:4 * mib]
    blocks = spooled.stat().st_blocks
    # the server has the first 4 MiB in its part file: they are released with the next read
    second = read_chunk(str(spooled), 4 * mib, 4 * mib, release_below=4 * mib)
    assert second.tobytes() == data[4 * mib:]
    assert spooled.stat().st_size == len(data)  # the size stays, the storage goes
    assert spooled.stat().st_blocks <= blocks - 4 * mib // 512  # (on this machine's ext4)
    with pytest.raises(JobFailed, match="released already"):  # never zeros instead
        read_chunk(str(spooled), 0, mib)
    assert remove_spooled(str(spooled)) and not spooled.exists()
