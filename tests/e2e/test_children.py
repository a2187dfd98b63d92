"""Children die with their parent: ``kill -9`` of ``medview index`` or ``medview serve`` leaves
no pool worker and no multiprocessing resource tracker behind.

Real processes: the command runs in a subprocess, its children are found with psutil while
they work, the parent is killed with SIGKILL, and every child must be gone within seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import psutil
import pytest
from offload_procs import medview_cmd, start_server, stop, subprocess_env

from medview.dicom.scan.scanner import POOL_MIN_FILES
from phantoms import write_ct_series

pytestmark = [pytest.mark.e2e]


def _until(predicate, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _kinds(procs: list[psutil.Process]) -> dict[str, list[psutil.Process]]:
    """Children by role: spawn pool workers and the resource tracker."""
    out: dict[str, list[psutil.Process]] = {"worker": [], "tracker": [], "other": []}
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if "resource_tracker" in cmd:
            out["tracker"].append(p)
        elif "spawn_main" in cmd:
            out["worker"].append(p)
        else:
            out["other"].append(p)
    return out


def _kill_and_check(proc: subprocess.Popen, children: list[psutil.Process]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    def all_gone():
        return not [c for c in children if c.is_running() and
                    c.status() != psutil.STATUS_ZOMBIE]

    try:
        _until(all_gone, 10.0, "the children to end after kill -9 of their parent")
    finally:
        for c in children:  # never leave them behind, even when the test fails
            if c.is_running():
                c.kill()


def test_kill_9_of_medview_index_ends_its_pool_and_resource_tracker(tmp_path):
    src = tmp_path / "one"
    write_ct_series(src, shape=(1, 16, 16), seed=3)
    one = next(src.iterdir())
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3 * POOL_MIN_FILES):  # enough for the pool to work a few seconds
        shutil.copyfile(one, folder / f"IM{i:05d}.dcm")
    env = subprocess_env(tmp_path / "config", tmp_path / "data")
    log = open(tmp_path / "index.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(medview_cmd("index", "--db", tmp_path / "cat.sqlite", folder),
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        parent = psutil.Process(proc.pid)

        def pool_running():
            kinds = _kinds(parent.children(recursive=True))
            return kinds if len(kinds["worker"]) >= 2 and kinds["tracker"] else None

        kinds = _until(pool_running, 60.0, "the index pool's workers and resource tracker")
        assert proc.poll() is None, "the index finished before it could be killed"
        _kill_and_check(proc, parent.children(recursive=True) or
                        kinds["worker"] + kinds["tracker"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_kill_9_of_medview_serve_ends_its_pool_process(tmp_path):
    env = subprocess_env(tmp_path / "config", tmp_path / "data")
    run = subprocess.run(medview_cmd("serve", "make-cert", tmp_path / "tls"), env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    tokens = tmp_path / "tokens.json"
    run = subprocess.run(medview_cmd("serve", "add-token", "ws-1", "--tokens", tokens),
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    server = start_server(tmp_path, cert=cert, key=key, tokens=tokens, env=env,
                          extra=("--workers", "2", "--public-docs", "--max-decoded-mb", "1"))
    try:
        import ssl

        import httpx

        ctx = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.url, verify=ctx, timeout=30) as http:
            assert http.get("/docs").status_code == 200  # --public-docs: no token needed
            assert http.get("/api/v1/info").status_code == 401
            info = http.get("/api/v1/info", headers={"Authorization": f"Bearer {token}"})
            assert info.json()["max_decoded_bytes"] == 1 << 20
        parent = psutil.Process(server.proc.pid)

        def pool_running():  # the pool is warmed up at start
            kinds = _kinds(parent.children(recursive=True))
            return kinds if len(kinds["worker"]) >= 2 and kinds["tracker"] else None

        kinds = _until(pool_running, 60.0, "the server's pool processes")
        _kill_and_check(server.proc, kinds["worker"] + kinds["tracker"] + kinds["other"])
    finally:
        stop(server.proc)
