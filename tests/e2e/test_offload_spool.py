"""A worker's spool (the results the server fetches from it) never outlives the worker's job:
real `dask worker` processes, each with its own temporary folder, hold a result nobody
fetched (its server went away), and are stopped or killed and restarted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from offload_procs import start_dask, stop, stop_dask, subprocess_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHAIN = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}}]}


@pytest.fixture(autouse=True)
def _site_folders(tmp_path, monkeypatch):
    # _Site writes its tokens through medview's config (never the real user's folders)
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))


def _bundle() -> bytes:
    from medview.core.volume import Volume
    from medview.remote.wire import bundle_bytes, encode_bundle

    vol = Volume(np.arange(5 * 24 * 24, dtype=np.float32).reshape(5, 24, 24), (0.9, 0.9, 2.0))
    meta = {"chain": CHAIN, "result_encoding": "raw", "file_params": {}}
    return bundle_bytes(encode_bundle(meta, {"image": vol}))


def _spool_a_result(executor, job_id: str) -> Path:
    """Run a job's task as the server does for a worker that cannot see its job folder; the
    result is left in that worker's spool, unfetched (as when the server is killed)."""
    from medview.server.dask_tasks import run_on_dask

    info = executor.client.submit(run_on_dask, job_id, [_bundle()], "", "", 1,
                                  pure=False).result(timeout=60)
    path = Path(info["path"])
    deadline = time.monotonic() + 30  # written behind the task
    while not (path.is_file() and path.stat().st_size == info["size"]):
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return path


def _worker(address: str, env: dict, spool: Path, log: Path, nanny: bool) -> subprocess.Popen:
    dask = str(Path(sys.executable).with_name("dask"))
    with open(log, "a") as out:
        return subprocess.Popen(
            [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
             "--dashboard-address", "127.0.0.1:0", *([] if nanny else ["--no-nanny"])],
            stdout=out, stderr=subprocess.STDOUT, env={**env, "TMPDIR": str(spool)})


@pytest.mark.parametrize("nanny", [False, True], ids=["no-nanny", "nanny"])
def test_a_worker_stopped_cleanly_deletes_the_results_in_its_spool(tmp_path, nanny):
    from medview.server.dask_executor import DaskExecutor

    env = subprocess_env(tmp_path / "config", tmp_path / "data")
    spool = tmp_path / "worker-tmp"
    spool.mkdir()
    cluster = start_dask(tmp_path, 0, env=env)
    worker = _worker(cluster.address, env, spool, tmp_path / "worker.log", nanny)
    try:
        executor = DaskExecutor(cluster.address)  # installs the spool sweeper, as a server
        try:
            executor.client.wait_for_workers(1, timeout=60)
            path = _spool_a_result(executor, "stopped")
        finally:
            executor.close()
        assert spool in path.parents  # the worker's own temporary folder
        stop(worker)  # SIGTERM: `dask worker` (or its nanny) stops it cleanly
        assert worker.returncode is not None
        # no server can fetch from a stopped worker: what it held went with it
        assert not path.exists()
        assert list(spool.glob("medview-results-*/*/*")) == []
        assert not path.parent.exists()
    finally:
        stop(worker)
        stop_dask(cluster)


def test_a_killed_worker_restarted_just_before_the_soak_stops_leaves_no_spool(tmp_path):
    """The soak's site (benchmarks/soak.py) kills a worker that holds an unfetched result and
    restarts it right before it stops everything: the new worker's start-up sweep of its
    dead predecessor's spool must have run before it is stopped."""
    from benchmarks.soak import _Site, _stop, leftovers
    from medview.server.dask_executor import DaskExecutor

    env = subprocess_env(tmp_path / "config", tmp_path / "data")
    folder = tmp_path / "soak"
    folder.mkdir()
    import psutil

    earlier = {c.pid for c in psutil.Process().children(recursive=True)}
    site = _Site(folder, env, workers=1, fetch=True)
    for d in ("uploads", "jobs"):  # the server's folders (no server here)
        (site.state / d).mkdir(parents=True)
    try:
        executor = DaskExecutor(site.address)  # the server's spool sweeper, installed
        try:
            executor.client.wait_for_workers(1, timeout=60)
            path = _spool_a_result(executor, "killed")
        finally:
            executor.close()
        _stop(site.workers[0], signal.SIGKILL)
        assert path.exists()  # a killed worker deletes nothing
        site.start_worker(0)  # the chaos's restart, just before the soak ends
    finally:
        site.stop()
    assert not path.exists()
    assert leftovers(site, earlier) == []
    assert site.worker_came_up(0)  # it was stopped once up, never half-started
