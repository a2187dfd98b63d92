"""Real processes for the offload tests: `medview serve` over TLS, a Dask scheduler and workers.

Each is started on a free loopback port, polled until ready (bounded), and stopped by its own
process id at the end (also when a test fails).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def medview_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "medview.cli", *map(str, args)]


def stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    state_dir: Path
    log: Path
    args: list

    def wait_ready(self, cert: Path, timeout_s: float = 60.0) -> None:
        import ssl

        import httpx

        ctx = ssl.create_default_context(cafile=str(cert))
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"medview serve exited ({self.proc.returncode}):\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", verify=ctx, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"medview serve not ready after {timeout_s} s:\n"
                           f"{self.log.read_text()[-3000:]}")


def start_server(folder: Path, *, cert: Path, key: Path, tokens: Path, env: dict,
                 state_dir: Path | None = None, extra: tuple = ()) -> Server:
    port = free_port()
    state_dir = state_dir or folder / "state"
    args = medview_cmd("serve", "--host", "127.0.0.1", "--port", port, "--cert", cert,
                       "--key", key, "--tokens", tokens, "--state-dir", state_dir, *extra)
    log = folder / f"serve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(proc, f"https://127.0.0.1:{port}", state_dir, log, args)
    try:
        server.wait_ready(cert)
    except BaseException:
        stop(proc)
        raise
    return server


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen
    workers: dict  # address → Popen


def start_dask(folder: Path, n_workers: int, *, env: dict) -> DaskCluster:
    """`dask scheduler` and `dask worker` processes (no nanny, 1 thread each) on 127.0.0.1."""
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        with open(folder / "scheduler.log", "w") as out:
            procs.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--dashboard-address", f"127.0.0.1:{free_port()}"],
                stdout=out, stderr=subprocess.STDOUT, env=env))
        workers = {}
        for i in range(n_workers):
            wport = free_port()
            with open(folder / f"worker{i}.log", "w") as out:
                p = subprocess.Popen(
                    [dask, "worker", address, "--host", "127.0.0.1", "--worker-port",
                     str(wport), "--dashboard-address", "127.0.0.1:0", "--nthreads", "1",
                     "--no-nanny"], stdout=out, stderr=subprocess.STDOUT,
                    env={**env, "MEDVIEW_THREADS": "1", "OMP_NUM_THREADS": "1"})
            procs.append(p)
            workers[f"tcp://127.0.0.1:{wport}"] = p
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False) as client:
            if n_workers:  # with none, connecting proves the scheduler is up
                client.wait_for_workers(n_workers, timeout=60)
        return DaskCluster(address, procs[0], workers)
    except BaseException:
        for p in reversed(procs):
            stop(p)
        raise


def stop_dask(cluster: DaskCluster) -> None:
    for p in cluster.workers.values():
        stop(p)
    stop(cluster.scheduler)


def subprocess_env(config: Path, data: Path) -> dict:
    # never the developer's real keyring: the tokens go to the 0600 file in ``config``
    env = dict(os.environ, MEDVIEW_CONFIG_DIR=str(config), MEDVIEW_DATA_DIR=str(data),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    return env


def _cert_and_token(root: Path, env: dict, token_name: str) -> tuple[Path, Path, Path, str]:
    """``medview serve make-cert`` and ``add-token`` in ``root``: (cert, key, tokens file,
    token)."""
    run = subprocess.run(medview_cmd("serve", "make-cert", root / "tls"), env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    tokens = root / "tokens.json"
    run = subprocess.run(medview_cmd("serve", "add-token", token_name, "--tokens", tokens),
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return root / "tls" / "cert.pem", root / "tls" / "key.pem", tokens, run.stdout.strip()


@contextlib.contextmanager
def pool_site(root: Path, token_name: str = "gui"):
    """A real ``medview serve`` (HTTPS with its own certificate, one token, a pool of one
    worker) in ``root``; yields ``{"url", "token", "cert"}`` and stops it after."""
    env = subprocess_env(root / "server-config", root / "server-data")
    cert, key, tokens, token = _cert_and_token(root, env, token_name)
    (root / "pool").mkdir()
    server = start_server(root / "pool", cert=cert, key=key, tokens=tokens, env=env,
                          extra=("--workers", "1"))
    try:
        yield {"url": server.url, "token": token, "cert": cert}
    finally:
        stop(server.proc)


@contextlib.contextmanager
def dask_fetch_site(root: Path, n_workers: int = 2):
    """A real Dask scheduler with ``n_workers`` workers behind a real TLS ``medview serve
    --dask-fetch-results`` (every result fetched from its worker, as with workers on other
    machines) in ``root``; yields ``{"root", "env", "cert", "token", "server", "cluster"}``."""
    env = subprocess_env(root / "config", root / "data")
    cert, key, tokens, token = _cert_and_token(root, env, "ws-1")
    cluster = start_dask(root, n_workers, env=env)
    try:
        server = start_server(root, cert=cert, key=key, tokens=tokens, env=env,
                              extra=("--dask", cluster.address, "--dask-fetch-results"))
        try:
            yield {"root": root, "env": env, "cert": cert, "token": token, "server": server,
                   "cluster": cluster}
        finally:
            stop(server.proc)
    finally:
        stop_dask(cluster)
