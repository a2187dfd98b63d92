"""A result fetched from a Dask worker that cannot see the server's job folder (workers on
other machines; ``--dask-fetch-results`` forces it here) comes step by step too: the worker
spools each step's output as the step makes it, the server fetches it while the later steps
compute and the client downloads it meanwhile; a chain that fails half-way leaves nothing.
A real Dask scheduler and two workers behind a real TLS ``medview serve``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from offload_procs import dask_fetch_site

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.errors import RemoteError
from medview.remote.run import collect_job, submit_job
from medview.remote.wire import decode_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GAMMA = {"step": "enhance.gamma", "params": {"gamma": 0.7}}
#: about 1 s each on one core: the later steps still compute while the test looks
SLOW = {"step": "smooth.curvature_diffusion", "params": {"iterations": 60,
                                                         "in_plane_only": True}}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with dask_fetch_site(tmp_path_factory.mktemp("fetch-stream")) as site:
        yield site


@pytest.fixture(autouse=True)
def _client_folders(site, monkeypatch):
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(site["root"] / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(site["root"] / "data"))


def _client(site) -> RemoteClient:
    return RemoteClient(site["server"].url, site["token"], ca_bundle=str(site["cert"]),
                        name="dask")


def _volume(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.normal(0, 100, (8, 128, 128)).astype(np.float32), (0.8, 0.8, 2.0))


def _wait(predicate, timeout_s: float = 120.0, what: str = "condition"):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _requests(site) -> list[dict]:
    text = (site["server"].state_dir / "requests.log").read_text()
    return [json.loads(x) for x in text.splitlines()]


def test_a_fetched_steps_output_is_downloaded_while_the_later_steps_compute(site, tmp_path):
    vol = _volume()
    chain = Chain.from_dict({"steps": [GAMMA, SLOW, SLOW, SLOW]})
    with _client(site) as c:
        job = submit_job(c, chain, {"image": vol}, encoding="raw")
        job_id = job.status.id
        st = c.wait(job_id, ready_above=0)
        assert not st.done and not st.streaming  # its size is not known yet
        part = tmp_path / "result.part"
        assert c.download_ready(job_id, part) is None  # more to come
        later = c.status(job_id)
        # step 1's voxels, as a local run makes them, came from the worker's spool through
        # the server while the chain still ran there
        # (its state may still say "queued": the Dask executor looks at progress 4× a second)
        assert not later.done and later.progress < 1.0, later
        got = part.read_bytes()
        first = run_chain(Chain.from_dict({"steps": [GAMMA]}), {"image": vol}).result.array
        blob = np.ascontiguousarray(first).tobytes()
        assert len(got) >= 64 + len(blob) and got[64:64 + len(blob)] == blob
        while (size := c.download_ready(job_id, part)) is None:
            c.wait(job_id, ready_above=part.stat().st_size)
        assert size == part.stat().st_size
        done = decode_bundle(part.read_bytes())
        whole = c.download(job_id)
        c.acknowledge(job_id)
    assert whole == part.read_bytes()
    local = run_chain(chain, {"image": vol})
    assert list(done.values) == ["step1", "step2", "step3", "step4"]
    for name in done.values:
        assert np.array_equal(done.values[name].array, local.values[name].array), name
    # the server took the bytes of step 1 from the worker before the chain had ended
    assert done.meta["worker"]


def test_a_fetched_chain_failing_after_step_two_leaves_nothing(site, tmp_path):
    from medview.server.dask_tasks import spool_base

    bad = tmp_path / "broken.model"
    bad.write_bytes(b"not a model")
    chain = Chain.from_dict({"steps": [GAMMA, GAMMA, SLOW, {
        "step": "segment.classifier_apply", "params": {"model_path": str(bad)}}]})
    downloads = tmp_path / "downloads"
    with _client(site) as c:
        job = submit_job(c, chain, {"image": _volume(1)}, encoding="raw")
        with pytest.raises(RemoteError, match="failed") as err:
            collect_job(c, job, download_dir=downloads)
        job_id = job.status.id
        assert "model" in str(err.value)
        assert c.status(job_id).state == "failed"
        with pytest.raises(RemoteError):
            c.download(job_id)
    # the first outputs did reach the client (fetched from the worker) before step 4 failed
    url = f"/api/v1/jobs/{job_id}/result"
    got = [e for e in _requests(site) if e["path"] == url and e["status"] == 206]
    assert sum(e["out_bytes"] for e in got) > 2 * 8 * 128 * 128 * 4
    # … and nothing of them stays anywhere: no download, no part file, no spooled file
    assert list(downloads.iterdir()) == []
    job_dir = site["server"].state_dir / "jobs" / job_id
    _wait(lambda: not job_dir.exists() or not list(job_dir.glob("result*")),
          what="the part file to go")
    _wait(lambda: not list(spool_base().glob(f"*/{job_id}*")), timeout_s=20,
          what="the spooled file to go")


def test_fetched_results_of_several_jobs_equal_a_local_run(site):
    chain = Chain.from_dict({"steps": [GAMMA, {"step": "smooth.gaussian",
                                               "params": {"sigma_mm": 1.0}}]})
    vols = [_volume(10 + i) for i in range(3)]
    with _client(site) as c:
        jobs = [submit_job(c, chain, {"image": v}, encoding="raw") for v in vols]
        results = [collect_job(c, j) for j in jobs]
    for v, r in zip(vols, results, strict=True):
        local = run_chain(chain, {"image": v})
        for name in ("step1", "step2"):
            assert np.array_equal(r.values[name].array, local.values[name].array), name


def test_a_client_that_reads_whole_bundles_still_gets_its_result_fetched(site):
    """A client without ``result_stream`` (an older one) gets the result encoded whole,
    spooled behind the task and fetched through the same reader as the streamed ones."""
    from medview.remote.wire import bundle_bytes, encode_bundle

    vol = _volume(20)
    chain = Chain.from_dict({"steps": [GAMMA, GAMMA]})
    meta = {"chain": chain.to_dict(), "result_encoding": "raw"}
    with _client(site) as c:
        st = c.submit([bundle_bytes(encode_bundle(meta, {"image": vol}))],
                      idempotency_key="whole-bundle-client")
        assert c.wait(st.id).state == "succeeded"
        body = c.download(st.id)
        c.acknowledge(st.id)
    assert body[:4] != b"MVB2"  # not a header-last bundle: what this client can read
    got = decode_bundle(body)
    local = run_chain(chain, {"image": vol})
    for name in ("step1", "step2"):
        assert np.array_equal(got.values[name].array, local.values[name].array), name


def test_killing_the_worker_after_step_one_was_fetched_runs_the_job_again(site, tmp_path):
    """Last in the module: it leaves the cluster one worker short. The client has step 1's
    output of the first attempt when that attempt's worker dies: those bytes are dropped
    (another attempt's ETag), never joined to the second attempt's."""
    vol = _volume(30)
    chain = Chain.from_dict({"steps": [GAMMA, SLOW, SLOW, SLOW]})
    downloads = tmp_path / "downloads"
    with _client(site) as c:
        job = submit_job(c, chain, {"image": vol}, encoding="raw")
        job_id = job.status.id
        part = downloads / f"{job_id}.part"  # where collect_job resumes
        st = _wait(lambda: (s := c.status(job_id)).worker and s.result_ready > 0 and s,
                   what="step 1's output to be announced")
        assert c.download_ready(job_id, part) is None
        first_tag = part.with_name(part.name + ".etag").read_text()
        assert first_tag.endswith('.1"') and part.stat().st_size > 64
        worker = site["cluster"].workers[st.worker]
        worker.kill()
        worker.wait(10)
        try:
            result = collect_job(c, job, download_dir=downloads, acknowledge=False)
        except RemoteError as exc:  # a clear failure is acceptable, a wrong result is not
            assert "died" in str(exc) or "lost" in str(exc), exc
            assert list(downloads.iterdir()) == []
            return
        final = c.status(job_id)
        c.acknowledge(job_id)
    assert final.attempts == 2 and final.state == "succeeded"
    local = run_chain(chain, {"image": vol})
    for name in ("step1", "step2", "step3", "step4"):
        assert np.array_equal(result.values[name].array, local.values[name].array), name
    assert list(downloads.iterdir()) == []
