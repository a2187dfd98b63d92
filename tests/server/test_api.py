"""The server's API through FastAPI's TestClient, with a real process pool behind it."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from server_helpers import SLOW_CHAIN, job_body, noise_volume, wait_done, wait_until

from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.wire import bundle_bytes, decode_bundle, encode_bundle

GAUSS = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.5}}]}


def test_health_is_open_everything_else_needs_the_token(make_client):
    c = make_client()
    assert c.get("/health", headers={"Authorization": ""}).json() == {"status": "ok"}
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic eDp5"}):
        for method, path in (("GET", "/api/v1/info"), ("GET", "/api/v1/jobs"),
                             ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs/x/result")):
            r = c.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, headers)
            assert r.json() == {"detail": "missing or invalid token"}
    info = c.get("/api/v1/info").json()
    assert info["steps"]["smooth.gaussian"] == 1 and "blosc2" in info["encodings"]
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/result",
            "/api/v1/jobs/{job_id}/cancel", "/health"} <= set(paths)


@pytest.mark.parametrize("encoding", ["raw", "blosc2"])
def test_a_job_gives_the_local_result_then_is_deleted(make_client, encoding, tmp_path):
    c = make_client()
    vol = noise_volume((6, 40, 40))
    r = c.post("/api/v1/jobs", content=job_body(GAUSS, vol, encoding))
    assert r.status_code == 201
    st = wait_done(c, r.json()["id"])
    assert st["state"] == "succeeded" and st["progress"] == 1.0 and st["steps"] == 1
    data = c.get(f"/api/v1/jobs/{st['id']}/result").content
    got = decode_bundle(data)
    local = run_chain(Chain.from_dict(GAUSS), {"image": vol})
    assert got.meta["main"] == local.main_output
    assert np.array_equal(got.values["step1"].array, local.result.array)
    assert got.values["step1"].origin == vol.origin
    result_file = tmp_path / "state" / "jobs" / st["id"] / "result.bin"
    assert result_file.exists() and not result_file.with_name("input.bin").exists()
    assert c.delete(f"/api/v1/jobs/{st['id']}/result").json()["state"] == "delivered"
    assert not result_file.exists()
    assert c.get(f"/api/v1/jobs/{st['id']}/result").status_code == 410


def test_the_same_idempotency_key_runs_once(make_client):
    c = make_client()
    body = job_body(GAUSS, noise_volume((4, 16, 16)))
    a = c.post("/api/v1/jobs", content=body, headers={"Idempotency-Key": "k-1"})
    b = c.post("/api/v1/jobs", content=body, headers={"Idempotency-Key": "k-1"})
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["id"] == b.json()["id"]
    other = c.post("/api/v1/jobs", content=body, headers={"Idempotency-Key": "k-2"})
    assert other.json()["id"] != a.json()["id"]
    assert len(c.get("/api/v1/jobs").json()) == 2
    for job in (a, other):
        assert wait_done(c, job.json()["id"])["attempts"] == 1


def test_oversized_and_invalid_uploads(make_client, tmp_path):
    c = make_client(max_upload_bytes=100_000)
    big = job_body(GAUSS, noise_volume((8, 64, 64)))
    r = c.post("/api/v1/jobs", content=big)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))  # no Content-Length
    assert c.post("/api/v1/jobs", content=chunks).status_code == 413
    bad_chain = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": -1.0}}]}
    bad = bundle_bytes(encode_bundle({"chain": bad_chain}, {"image": noise_volume((2, 8, 8))}))
    r = c.post("/api/v1/jobs", content=bad)
    assert r.status_code == 422 and "sigma_mm" in r.json()["detail"]
    assert c.post("/api/v1/jobs", content=b"not a bundle").status_code == 422
    probe = {"steps": [{"step": "segment.classifier_apply",
                        "params": {"model_path": "/etc/passwd"}}]}
    r = c.post("/api/v1/jobs", content=bundle_bytes(encode_bundle(
        {"chain": probe}, {"image": noise_volume((2, 8, 8))})))
    assert r.status_code == 422 and "not sent with the job" in r.json()["detail"]
    assert "passwd" not in r.json()["detail"]
    assert c.get("/api/v1/jobs").json() == []
    assert list((tmp_path / "state" / "uploads").iterdir()) == []


def test_cancel_a_running_job(make_client):
    c = make_client()
    job = c.post("/api/v1/jobs", content=job_body(SLOW_CHAIN, noise_volume())).json()
    wait_until(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] > 0.05,
               what="the job to start")
    assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    st = wait_done(c, job["id"])
    assert st["state"] == "cancelled" and st["progress"] < 1.0
    assert c.get(f"/api/v1/jobs/{job['id']}/result").status_code == 409


def _kill_worker_of(c, job_id: str, previous: str = "") -> str:
    def running_on():
        st = c.get(f"/api/v1/jobs/{job_id}").json()
        return st["worker"] if st["worker"] and st["worker"] != previous and \
            st["progress"] > 0.02 else None

    worker = wait_until(running_on, what="the job to run on a pool process")
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)
    return worker


def test_a_killed_worker_is_retried_once_then_the_job_fails(make_client):
    c = make_client()
    vol = noise_volume()
    job = c.post("/api/v1/jobs", content=job_body(SLOW_CHAIN, vol)).json()
    _kill_worker_of(c, job["id"])
    st = wait_done(c, job["id"])
    assert (st["state"], st["attempts"]) == ("succeeded", 2)
    got = decode_bundle(c.get(f"/api/v1/jobs/{job['id']}/result").content)
    local = run_chain(Chain.from_dict(SLOW_CHAIN), {"image": vol})
    assert np.array_equal(got.values[got.meta["main"]].array, local.result.array)

    job = c.post("/api/v1/jobs", content=job_body(SLOW_CHAIN, vol)).json()
    first = _kill_worker_of(c, job["id"])
    _kill_worker_of(c, job["id"], previous=first)
    st = wait_done(c, job["id"])
    assert st["state"] == "failed" and st["attempts"] == 2
    assert "died" in st["error"] and "2 attempts" in st["error"]
    assert c.get(f"/api/v1/jobs/{job['id']}/result").status_code == 409


def test_finished_jobs_survive_a_restart_and_expire(make_client, tmp_path):
    c = make_client()
    vol = noise_volume((4, 16, 16))
    job = c.post("/api/v1/jobs", content=job_body(GAUSS, vol)).json()
    assert wait_done(c, job["id"])["state"] == "succeeded"
    c.__exit__(None, None, None)  # the server stops …
    c2 = make_client()  # … and starts again on the same state folder
    st = c2.get(f"/api/v1/jobs/{job['id']}").json()
    assert st["state"] == "succeeded"
    got = decode_bundle(c2.get(f"/api/v1/jobs/{job['id']}/result").content)
    assert got.values["step1"].shape == vol.shape
    import time

    manager = c2.app.state.manager
    assert manager.sweep(now=time.time() + manager.retention_s + 1) == [job["id"]]
    assert c2.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "expired"
    assert c2.get(f"/api/v1/jobs/{job['id']}/result").status_code == 410
    assert not (tmp_path / "state" / "jobs" / job["id"]).exists()


def test_the_request_log_names_who_and_sizes_only(make_client, tmp_path):
    c = make_client()
    body = job_body(GAUSS, noise_volume((4, 16, 16)))
    job = c.post("/api/v1/jobs", content=body).json()
    wait_done(c, job["id"])
    c.get("/api/v1/info", headers={"Authorization": "Bearer nope"})
    lines = [json.loads(x) for x in (tmp_path / "state" / "requests.log").read_text()
             .splitlines()]
    post = next(x for x in lines if x["method"] == "POST")
    assert post["who"] == "workstation-1" and post["in_bytes"] == len(body)
    assert post["status"] == 201
    refused = [x for x in lines if x["status"] == 401]
    assert refused and refused[-1]["who"] == "-"
    assert set(post) == {"time", "who", "method", "path", "in_bytes", "out_bytes", "status",
                         "ms"}


def test_a_job_running_when_the_server_stops_runs_again_after_the_restart(tmp_path, tokens):
    from fastapi.testclient import TestClient

    from medview.server.app import ServerSettings, create_app

    settings = ServerSettings(state_dir=tmp_path / "own", tokens_path=tokens[0])
    headers = {"Authorization": f"Bearer {tokens[1]}"}
    vol = noise_volume()
    with TestClient(create_app(settings), headers=headers) as c:  # its own pool
        job = c.post("/api/v1/jobs", content=job_body(SLOW_CHAIN, vol)).json()
        wait_until(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] > 0.05,
                   what="the job to start")
    # stopped mid-job: the pool process was terminated, the job is still on record
    assert (tmp_path / "own" / "jobs" / job["id"] / "input.bin").exists()
    with TestClient(create_app(settings), headers=headers) as c:
        st = wait_done(c, job["id"])
        assert st["state"] == "succeeded" and st["attempts"] == 2
        got = decode_bundle(c.get(f"/api/v1/jobs/{job['id']}/result").content)
    local = run_chain(Chain.from_dict(SLOW_CHAIN), {"image": vol})
    assert np.array_equal(got.values[got.meta["main"]].array, local.result.array)
