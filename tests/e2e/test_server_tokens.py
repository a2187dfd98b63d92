"""Access control on a real `medview serve` over real HTTPS: expiry, revocation while the server
runs, scopes (another token's job is 404), the admin view, and the server's audit log.

Tokens are made with the real CLI (`medview serve add-token|list-tokens|revoke-token`) in a
tokens file that starts in the old format (before expiry and scopes), as an upgraded server's
would.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import time

import httpx
import numpy as np
import pytest
from offload_procs import medview_cmd, start_server, stop, subprocess_env

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.remote.wire import bundle_bytes, encode_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: a couple of seconds on one core: long enough to revoke or cancel while it runs
SLOW = {"steps": [{"step": "smooth.curvature_diffusion",
                   "params": {"iterations": 40, "in_plane_only": True}}] * 3}
FAST = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}}]}
PLANTED = "DOE^JOHN"  # sent in headers and paths; must never reach the audit log
LEGACY_TOKEN = "legacy-token-made-by-an-older-medview-0123456789"


def body(chain: dict, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).normal(0, 100, (6, 48, 48)).astype(np.float32)
    volume = Volume(arr, (0.8, 0.8, 2.0), (0.0, 0.0, 0.0))
    meta = {"chain": Chain.from_dict(chain).to_dict(), "result_encoding": "raw"}
    return bundle_bytes(encode_bundle(meta, {"image": volume}, encoding="raw"))


def cli(env, *args):
    run = subprocess.run(medview_cmd("serve", *args), env=env, capture_output=True, text=True,
                         timeout=120)
    return run


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    env = subprocess_env(root / "config", root / "data")
    assert cli(env, "make-cert", root / "tls").returncode == 0
    cert, key = root / "tls" / "cert.pem", root / "tls" / "key.pem"
    tokens = root / "tokens.json"
    # a file as medview wrote it before expiry and scopes existed
    tokens.write_text(json.dumps({"tokens": [{
        "name": "old-ws", "sha256": hashlib.sha256(LEGACY_TOKEN.encode()).hexdigest(),
        "created": 1764000000.0}]}))
    os.chmod(tokens, 0o600)
    secret = {}
    for name, extra in (("ws-a", ()), ("ws-b", ()), ("boss", ("--scope", "admin")),
                        ("drop-box", ("--scope", "submit"))):
        r = cli(env, "add-token", name, "--tokens", tokens, *extra)
        assert r.returncode == 0, r.stderr
        secret[name] = r.stdout.strip()
    secret["old-ws"] = LEGACY_TOKEN
    (root / "srv").mkdir()
    server = start_server(root / "srv", cert=cert, key=key, tokens=tokens, env=env,
                          extra=("--workers", "1"))
    ctx = ssl.create_default_context(cafile=str(cert))
    clients = {}
    try:
        for name, token in secret.items():
            clients[name] = httpx.Client(base_url=server.url, verify=ctx, timeout=30,
                                         headers={"Authorization": f"Bearer {token}"})
        yield {"root": root, "env": env, "tokens": tokens, "server": server, "c": clients,
               "secret": secret, "ctx": ctx}
    finally:
        for c in clients.values():
            c.close()
        stop(server.proc)


def audit_lines(site) -> list[dict]:
    return [json.loads(x) for x in
            (site["server"].state_dir / "audit.log").read_text().splitlines()]


def wait_state(client, job_id, states, timeout_s=120.0) -> dict:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        st = client.get(f"/api/v1/jobs/{job_id}", params={"wait": 2}).json()
        if st["state"] in states:
            return st
    raise AssertionError(f"job {job_id} never reached {states}")


def test_the_token_file_keeps_hashes_and_lists_no_secret(site):
    stored = site["tokens"].read_text()
    for token in site["secret"].values():
        assert token not in stored
    assert oct(os.stat(site["tokens"]).st_mode & 0o777) == "0o600"
    data = json.loads(stored)
    assert data["version"] == 2
    by_name = {t["name"]: t for t in data["tokens"]}
    # the old entry was carried over with what it could do before, and no expiry
    assert by_name["old-ws"]["scopes"] == ["submit", "read"]
    assert by_name["old-ws"]["expires"] is None
    assert by_name["boss"]["scopes"] == ["admin"]
    assert 89 * 86400 < by_name["ws-a"]["expires"] - by_name["ws-a"]["created"] <= 90 * 86400
    listed = cli(site["env"], "list-tokens", "--tokens", site["tokens"])
    assert listed.returncode == 0
    for name in ("ws-a", "ws-b", "boss", "drop-box", "old-ws"):
        assert name in listed.stdout
    as_json = cli(site["env"], "list-tokens", "--json", "--tokens", site["tokens"])
    rows = json.loads(as_json.stdout)
    assert {r["name"] for r in rows} == set(site["secret"])
    for text in (listed.stdout, listed.stderr, as_json.stdout):
        assert all(t not in text for t in site["secret"].values())
        assert all(t["sha256"] not in text for t in data["tokens"])


def test_a_legacy_file_still_serves_and_list_tokens_says_how_to_replace_it(tmp_path, site):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"tokens": [{
        "name": "old-ws", "sha256": hashlib.sha256(b"x").hexdigest(), "created": 1.0}]}))
    r = cli(site["env"], "list-tokens", "--tokens", old)
    assert r.returncode == 0 and "old-ws" in r.stdout and "never" in r.stdout
    assert "revoke-token OLD-NAME" in r.stderr
    # and the server accepts the token that was in the file before the upgrade
    assert site["c"]["old-ws"].get("/api/v1/info").status_code == 200


def test_another_tokens_job_is_404_and_the_admin_sees_all(site):
    c = site["c"]
    job = c["ws-a"].post("/api/v1/jobs", content=body(FAST),
                         headers={"Idempotency-Key": f"{PLANTED}-key", "User-Agent": PLANTED,
                                  "X-Patient-Name": PLANTED})
    assert job.status_code == 201, job.text
    jid = job.json()["id"]
    missing = "0" * 32
    for method, path in (("GET", f"/api/v1/jobs/{jid}"), ("GET", f"/api/v1/jobs/{jid}/result"),
                         ("POST", f"/api/v1/jobs/{jid}/cancel"),
                         ("DELETE", f"/api/v1/jobs/{jid}/result")):
        theirs = c["ws-b"].request(method, path)
        nothing = c["ws-b"].request(method, path.replace(jid, missing))
        # exactly what a job that does not exist gets: nothing tells B the id is real
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json()["detail"].replace(jid, missing) == nothing.json()["detail"]
    assert jid not in [j["id"] for j in c["ws-b"].get("/api/v1/jobs").json()]
    assert jid in [j["id"] for j in c["ws-a"].get("/api/v1/jobs").json()]
    # the admin sees every job and the server's state, but downloads nothing
    assert jid in [j["id"] for j in c["boss"].get("/api/v1/jobs").json()]
    assert c["boss"].get(f"/api/v1/jobs/{jid}").json()["id"] == jid
    assert c["boss"].get(f"/api/v1/jobs/{jid}/result").status_code == 403
    status = c["boss"].get("/api/v1/admin/status").json()
    assert sum(status["jobs_by_token"]["ws-a"].values()) >= 1
    assert {t["name"] for t in status["tokens"]} == set(site["secret"])
    assert "sha256" not in json.dumps(status)
    assert c["ws-a"].get("/api/v1/admin/status").status_code == 403
    # a submit-only token submits but reads nothing back
    dropped = c["drop-box"].post("/api/v1/jobs", content=body(FAST, seed=1))
    assert dropped.status_code == 201
    refused = c["drop-box"].get(f"/api/v1/jobs/{dropped.json()['id']}")
    assert refused.status_code == 403 and "read" in refused.json()["detail"]
    # A gets its result
    assert wait_state(c["ws-a"], jid, ("succeeded",))["state"] == "succeeded"
    result = c["ws-a"].get(f"/api/v1/jobs/{jid}/result")
    assert result.status_code == 200 and len(result.content) > 1000
    site["download"] = (jid, len(result.content))
    # a path segment that is not a job id
    assert c["ws-b"].get(f"/api/v1/jobs/{PLANTED}").status_code == 404
    site["submitted"] = jid


def test_revoking_a_token_refuses_it_at_once_while_the_server_runs(site):
    c = site["c"]
    job = c["ws-b"].post("/api/v1/jobs", content=body(SLOW, seed=2))
    assert job.status_code == 201
    jid = job.json()["id"]
    assert c["ws-b"].get(f"/api/v1/jobs/{jid}").status_code == 200
    r = cli(site["env"], "revoke-token", "ws-b", "--tokens", site["tokens"])
    assert r.returncode == 0 and "revoked" in r.stdout
    refused = c["ws-b"].get(f"/api/v1/jobs/{jid}")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert c["ws-b"].post("/api/v1/jobs", content=body(FAST)).status_code == 401
    # the running job is still there: the admin cancels it
    assert c["boss"].post(f"/api/v1/jobs/{jid}/cancel").status_code == 200
    assert wait_state(c["boss"], jid, ("cancelled", "succeeded"))["state"] in (
        "cancelled", "succeeded")
    listed = cli(site["env"], "list-tokens", "--tokens", site["tokens"]).stdout
    assert any(line.startswith("ws-b") and "revoked" in line for line in listed.splitlines())
    # the name stays taken: its jobs belong to it
    again = cli(site["env"], "add-token", "ws-b", "--tokens", site["tokens"])
    assert again.returncode == 1 and "revoked token named 'ws-b'" in again.stderr
    site["revoked_job"] = jid


def test_a_token_added_to_a_running_server_works_then_expires_without_a_restart(site):
    made = time.time()
    r = cli(site["env"], "add-token", "brief", "--expires", "0.1m", "--tokens", site["tokens"])
    assert r.returncode == 0, r.stderr
    rows = json.loads(cli(site["env"], "list-tokens", "--json", "--tokens",
                          site["tokens"]).stdout)
    until = next(t["expires"] for t in rows if t["name"] == "brief")
    assert made + 5 < until <= made + 7  # 0.1 minutes
    with httpx.Client(base_url=site["server"].url, verify=site["ctx"], timeout=30,
                      headers={"Authorization": f"Bearer {r.stdout.strip()}"}) as brief:
        first = brief.get("/api/v1/info")
        if time.time() < until - 0.5:  # the CLI start-ups left it time to be seen alive
            assert first.status_code == 200
        end = time.monotonic() + 30
        while first.status_code == 200 and time.monotonic() < end:
            time.sleep(0.2)
            first = brief.get("/api/v1/info")
        assert time.time() >= until  # never refused before its time
        assert first.status_code == 401 and "expired" in first.json()["detail"]


def test_the_audit_log_says_who_did_what_and_holds_no_header_value(site):
    path = site["server"].state_dir / "audit.log"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert PLANTED not in text and "DOE" not in text
    for token in site["secret"].values():
        assert token not in text
    # each line is written as its response ends, after the client has the answer: wait
    # (bounded) for the last request of the earlier tests, the expired token's refusal
    end = time.monotonic() + 10
    lines = audit_lines(site)
    while not any(x["action"] == "refused" and "expired" in x.get("reason", "")
                  for x in lines) and time.monotonic() < end:
        time.sleep(0.05)
        lines = audit_lines(site)
    jid = site["submitted"]
    submit = next(x for x in lines if x["action"] == "submit" and x.get("job") == jid)
    assert submit["who"] == "ws-a" and submit["bytes"] == len(body(FAST))
    dl_id, dl_bytes = site["download"]
    download = next(x for x in lines if x["action"] == "download" and x["job"] == dl_id)
    assert download["who"] == "ws-a" and download["bytes"] == dl_bytes
    assert any(x["action"] == "status" and x["who"] == "ws-a" for x in lines)
    foreign = [x for x in lines if x["action"] == "refused" and x["who"] == "ws-b"
               and x.get("job") == jid]
    assert {x["attempt"] for x in foreign} == {"status", "download", "cancel", "acknowledge"}
    assert all(x["status"] == 404 for x in foreign)
    assert any(x.get("job") == "(not a job id)" for x in lines)
    revoked = [x for x in lines if x["action"] == "refused" and "revoked" in x["reason"]]
    assert revoked and revoked[0]["who"] == "ws-b" and revoked[0]["status"] == 401
    cancel = next(x for x in lines if x["action"] == "cancel"
                  and x["job"] == site["revoked_job"])
    assert cancel["who"] == "boss"
    assert any(x["action"] == "admin-status" and x["who"] == "boss" for x in lines)
    assert any(x["action"] == "refused" and x["who"] == "drop-box" and x["status"] == 403
               for x in lines)
    expired = [x for x in lines if x["action"] == "refused" and "expired" in x["reason"]]
    assert expired and expired[0]["who"] == "brief"
    # an unknown token: refused, and nobody named
    ctx = site["ctx"]
    with httpx.Client(base_url=site["server"].url, verify=ctx, timeout=30,
                      headers={"Authorization": f"Bearer {PLANTED}"}) as stranger:
        assert stranger.get("/api/v1/jobs").status_code == 401
    # the line is written as the response ends: wait for it (bounded)
    end = time.monotonic() + 10
    while (last := audit_lines(site)[-1])["who"] != "-" and time.monotonic() < end:
        time.sleep(0.05)
    assert last["action"] == "refused" and last["who"] == "-" and last["attempt"] == "list"
    assert PLANTED not in path.read_text()
    assert set(last) <= {"time", "who", "action", "attempt", "job", "bytes", "status",
                         "reason"}
