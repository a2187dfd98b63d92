"""Offload end to end: a real `medview serve` over TLS (certificate made here), a real Dask
scheduler with two worker processes, and the client (CLI and library) against them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from offload_procs import (
    medview_cmd,
    start_dask,
    start_server,
    stop,
    stop_dask,
    subprocess_env,
)

import medview
from medview.audit import read_audit
from medview.formats.volume_io import read_volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.errors import RemoteAuthError, RemoteError
from medview.remote.run import run_chain_remote
from phantoms import write_ct_series

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LUNG_CHAIN = REPO / "resources" / "chains" / "ct_denoise_lung_threshold.json"
PATIENT = {"patient_name": "ROE^RICHARD", "patient_id": "MRN-4455667"}
SLOW_CHAIN = {"steps": [{"step": "smooth.curvature_diffusion",
                         "params": {"iterations": 60, "in_plane_only": True}}] * 3}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Certificate, token, a pool server, a Dask cluster with a server in front of it."""
    root = tmp_path_factory.mktemp("offload")
    env = subprocess_env(root / "config", root / "data")
    run = subprocess.run(medview_cmd("serve", "make-cert", root / "tls"), env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    cert, key = root / "tls" / "cert.pem", root / "tls" / "key.pem"
    tokens = root / "tokens.json"
    run = subprocess.run(medview_cmd("serve", "add-token", "ws-1", "--tokens", tokens),
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert token not in tokens.read_text()
    started = []
    (root / "pool").mkdir()
    try:
        pool = start_server(root / "pool", cert=cert, key=key, tokens=tokens, env=env,
                            extra=("--workers", "1", "--max-upload-mb", "1"))
        started.append(pool)
        (root / "dask").mkdir()
        cluster = start_dask(root / "dask", 2, env=env)
        started.append(cluster)
        on_dask = start_server(root / "dask", cert=cert, key=key, tokens=tokens, env=env,
                               extra=("--dask", cluster.address))
        started.append(on_dask)
        yield {"root": root, "env": env, "cert": cert, "key": key, "tokens": tokens,
               "token": token, "pool": pool, "dask": on_dask, "cluster": cluster}
    finally:
        for item in reversed(started):
            if hasattr(item, "scheduler"):
                stop_dask(item)
            else:
                stop(item.proc)  # the current process (a restart test replaces it)


@pytest.fixture(autouse=True)
def _client_folders(site, monkeypatch):
    """This process's client (audit log, mappings) writes into the test's folders too."""
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(site["root"] / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(site["root"] / "data"))


@pytest.fixture(scope="module")
def ct(site):
    folder = site["root"] / "ct"
    write_ct_series(folder, shape=(10, 64, 64), spacing_xyz=(0.9, 0.9, 2.5), seed=11,
                    **PATIENT)
    return folder


def client_for(site, which: str, **kw) -> RemoteClient:
    return RemoteClient(site[which].url, site["token"], ca_bundle=str(site["cert"]),
                        name=which, **kw)


def cli(site, *args, stdin: str | None = None):
    return subprocess.run(medview_cmd(*args), env=site["env"], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_the_same_chain_gives_the_same_outputs_locally_on_the_server_and_on_dask(site, ct):
    root = site["root"]
    for name in ("pool", "dask"):
        r = cli(site, "remote", "add", name, site[name].url, "--ca-bundle", site["cert"],
                stdin=site["token"] + "\n")
        assert r.returncode == 0, r.stderr
        assert "remote-tokens.json (0600)" in r.stdout  # no keyring backend: the file
    listed = cli(site, "remote", "list").stdout
    assert site["pool"].url in listed and site["token"] not in listed
    checked = cli(site, "remote", "check", "dask")
    assert checked.returncode == 0 and site["cluster"].address in checked.stdout
    outs = {}
    for where in ("local", "pool", "dask"):
        out = root / f"out-{where}"
        extra = () if where == "local" else ("--remote", where)
        r = cli(site, "run", LUNG_CHAIN, ct, "-o", out, *extra)
        assert r.returncode == 0, r.stderr
        outs[where] = out
    names = sorted(p.name for p in outs["local"].iterdir())
    assert "lungs.labels.nii.gz" in names and any(n.endswith(".csv") for n in names)
    for where in ("pool", "dask"):
        assert sorted(p.name for p in outs[where].iterdir()) == names
        for n in names:
            a, b = outs["local"] / n, outs[where] / n
            if n.endswith(".nii.gz"):
                va, vb = read_volume(a), read_volume(b)
                assert np.array_equal(va.array, vb.array), (where, n)
                assert np.allclose(va.affine, vb.affine, atol=1e-6), (where, n)
            else:
                assert a.read_text() == b.read_text(), (where, n)
    # the audit log names each disclosure; the servers kept nothing that identifies
    audit = read_audit(root / "data" / "audit.log")
    vol = medview.load(ct)
    assert {a.destination.split()[0] for a in audit} == {"pool", "dask"}
    assert {a.action for a in audit} == {"offload"}
    assert all(a.series_uid == vol.metadata["SeriesInstanceUID"] for a in audit)
    assert all(a.bytes == vol.array.nbytes and a.detail["job"] for a in audit)
    secrets = [str(vol.metadata[k]) for k in ("PatientName", "PatientID", "StudyInstanceUID",
                                              "SeriesInstanceUID", "FrameOfReferenceUID",
                                              "StudyDate") if vol.metadata.get(k)]
    assert len(secrets) == 6
    for name in ("pool", "dask"):
        files = [p for p in site[name].state_dir.rglob("*") if p.is_file()]
        assert files
        for p in files:
            data = p.read_bytes()
            for s in secrets:
                assert s.encode() not in data, (p, s)
    with client_for(site, "pool") as c:  # results were deleted after download
        for a in audit:
            if a.destination.startswith("pool"):
                assert c.status(a.detail["job"]).state == "delivered"


def test_tls_is_verified_and_wrong_tokens_get_401_oversized_413(site, ct):
    import ssl

    import httpx

    url = site["pool"].url
    ctx = ssl.create_default_context(cafile=str(site["cert"]))
    with RemoteClient(url, site["token"], retries=0) as c, pytest.raises(
            RemoteError, match="not trusted"):
        c.info()  # no CA bundle: the self-signed certificate is refused
    with RemoteClient(url, "wrong-token", ca_bundle=str(site["cert"])) as c, pytest.raises(
            RemoteAuthError, match="401"):
        c.info()
    r = httpx.get(f"{url}/api/v1/jobs", verify=ctx)
    assert r.status_code == 401 and r.json() == {"detail": "missing or invalid token"}
    big = b"\0" * (3 << 19)  # 1.5 MiB against a 1 MiB limit
    r = httpx.post(f"{url}/api/v1/jobs", content=big, verify=ctx,
                   headers={"Authorization": f"Bearer {site['token']}"})
    assert r.status_code == 413
    from medview.core.volume import Volume

    big_vol = Volume(np.zeros((40, 128, 128), np.int16), (1, 1, 1))  # 1.25 MiB
    with client_for(site, "pool") as c, pytest.raises(RemoteError,
                                                        match=r"at most 1\.0 MiB"):
        run_chain_remote(Chain.load(LUNG_CHAIN), {"image": big_vol}, client=c)


def test_resubmitting_with_the_same_key_runs_once(site, ct):
    from medview.remote.wire import encode_bundle

    vol = medview.load(ct)
    chain = Chain.load(LUNG_CHAIN)
    parts = encode_bundle({"chain": chain.to_dict()}, {"image": vol},
                          metadata={"image": {}})
    with client_for(site, "pool") as c:
        a = c.submit(parts, idempotency_key="same-key-1")
        b = c.submit(parts, idempotency_key="same-key-1")
        assert a.id == b.id
        st = c.wait(a.id)
        assert st.state == "succeeded" and st.attempts == 1


def test_restarting_the_server_keeps_finished_jobs(site, ct):
    vol = medview.load(ct)
    with client_for(site, "pool") as c:
        from medview.remote.run import submit_job

        job = submit_job(c, Chain.load(LUNG_CHAIN), {"image": vol})
        assert c.wait(job.status.id).state == "succeeded"
    pool = site["pool"]
    stop(pool.proc)
    assert pool.proc.returncode is not None
    with open(pool.log, "a") as out:
        pool.proc = subprocess.Popen(pool.args, stdout=out, stderr=subprocess.STDOUT,
                                     env=site["env"])
    pool.wait_ready(site["cert"])
    with client_for(site, "pool") as c:
        from medview.remote.run import collect_job

        assert c.status(job.status.id).state == "succeeded"
        result = collect_job(c, job)
    local = run_chain(Chain.load(LUNG_CHAIN), {"image": vol})
    assert np.array_equal(result.values["lungs.labels"].array, local.values["lungs.labels"].array)
    assert result.values["lungs.labels"].metadata["PatientID"] == PATIENT["patient_id"]


def test_a_batch_of_series_spreads_over_the_dask_workers(site):
    from medview.core.volume import Volume
    from medview.remote.run import run_batch_remote

    rng = np.random.default_rng(7)
    batch = [{"image": Volume(rng.normal(0, 100, (12, 96, 96)).astype(np.float32),
                              (0.8, 0.8, 2.0), (float(i), 0.0, 0.0))} for i in range(4)]
    chain = Chain.from_dict({"steps": [{"step": "smooth.curvature_diffusion",
                                        "params": {"iterations": 60, "in_plane_only": True}}]})
    with client_for(site, "dask") as c:
        results = run_batch_remote(chain, batch, client=c)
        workers = {j.worker for j in (c.status(j) for j in
                                      [x["job"] for x in _audit(site)[-len(batch):]])}
    for inputs, got in zip(batch, results, strict=True):
        want = run_chain(chain, inputs).result
        assert np.array_equal(got.result.array, want.array) and got.result.origin == want.origin
    assert workers <= set(site["cluster"].workers) and len(workers) == 2


def test_cli_batch_on_dask_writes_what_a_local_batch_writes(site):
    root = site["root"]
    series = []
    for seed in (21, 22, 23):
        folder = root / f"batch-ct-{seed}"
        write_ct_series(folder, shape=(6, 48, 48), spacing_xyz=(0.9, 0.9, 2.5), seed=seed)
        series.append(folder)
    outs = {}
    for where in ("local", "dask"):
        extra = () if where == "local" else ("--remote", "dask")
        out = root / f"batch-{where}"
        r = cli(site, "run", LUNG_CHAIN, *series, "-o", out, "--batch", *extra)
        assert r.returncode == 0, r.stderr
        outs[where] = out
    folders = sorted(p.name for p in outs["local"].iterdir())
    assert folders == [s.name for s in series]
    for f in folders:
        names = sorted(p.name for p in (outs["local"] / f).iterdir())
        assert sorted(p.name for p in (outs["dask"] / f).iterdir()) == names
        for n in names:
            a, b = outs["local"] / f / n, outs["dask"] / f / n
            if n.endswith(".nii.gz"):
                assert np.array_equal(read_volume(a).array, read_volume(b).array), (f, n)
            else:
                assert a.read_text() == b.read_text(), (f, n)


def test_cancel_reaches_a_job_running_on_dask(site):
    from medview.core.volume import Volume
    from medview.remote.run import submit_job

    vol = Volume(np.random.default_rng(4).normal(0, 100, (12, 96, 96)).astype(np.float32),
                 (0.8, 0.8, 2.0))
    with client_for(site, "dask") as c:
        job = submit_job(c, Chain.from_dict(SLOW_CHAIN), {"image": vol})
        end = time.monotonic() + 60
        while c.status(job.status.id).state != "running" and time.monotonic() < end:
            time.sleep(0.05)
        c.cancel(job.status.id)
        st = c.wait(job.status.id)
    assert st.state == "cancelled" and st.progress < 1.0, st.error


def _audit(site) -> list[dict]:
    return [{**a.detail, "series_uid": a.series_uid, "bytes": a.bytes}
            for a in read_audit(site["root"] / "data" / "audit.log")]


def test_killing_a_dask_worker_mid_job_retries_or_fails_clearly(site):
    """Last in the module: it leaves the cluster one worker short."""
    from medview.core.volume import Volume
    from medview.remote.run import collect_job, submit_job

    rng = np.random.default_rng(2)
    vol = Volume(rng.normal(0, 100, (12, 96, 96)).astype(np.float32), (0.8, 0.8, 2.0))
    chain = Chain.from_dict(SLOW_CHAIN)
    with client_for(site, "dask") as c:
        job = submit_job(c, chain, {"image": vol})
        end = time.monotonic() + 60
        while time.monotonic() < end:
            st = c.status(job.status.id)
            if st.worker and st.progress > 0.02:
                break
            time.sleep(0.05)
        worker = site["cluster"].workers[st.worker]
        worker.kill()
        worker.wait(10)
        try:
            result = collect_job(c, job)
        except RemoteError as exc:  # a clear failure is acceptable, a wrong result is not
            assert "died" in str(exc) or "lost" in str(exc)
            return
    local = run_chain(chain, {"image": vol})
    assert np.array_equal(result.result.array, local.result.array)
