"""Soak: many small jobs from several clients over a Dask cluster while workers and the
server are killed (SIGKILL) at random moments, then the books are checked.

    .venv/bin/python benchmarks/soak.py [--jobs 200] [--clients 4] [--workers 3] [--seed 1]
        [--kill-every 2:5] [--fetch]

Starts a Dask scheduler, ``--workers`` single-threaded workers and a TLS ``medview serve
--dask`` on 127.0.0.1; ``--clients`` threads each run a streaming batch
(:func:`medview.remote.batch.stream_remote`, one job per tiny volume) with their own token.
A chaos thread (seeded by ``--seed``) kills a worker (restarted 0.5–2 s later) or the server
(restarted at once on the same port and state folder) every ``--kill-every`` seconds until
the clients are done; a worker restarted last is let come up before all is stopped. Then:
every job must have ended right (the local run's voxels) or with a clear failure after its
retries; the server's job store must count no job completed twice; nothing may stay behind
(processes, uploads, job folders, downloads, worker spools).
``--fetch`` makes the server fetch every result from its worker (the multi-machine path).
tests/e2e/test_offload_soak.py runs :func:`run_soak` with fewer jobs (CI time).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CHAIN = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}},
                   {"step": "segment.threshold", "params": {"low": 10.0, "high": 1e6}}]}
#: the failures a job may end with after its retries (said by the server or the client)
CLEAR_FAILURES = ("died", "lost", "attempts", "could not be", "no Dask worker", "did not answer")


@dataclass
class SoakReport:
    jobs: int
    right: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    completions: dict[str, int] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unclear(self) -> list[tuple[str, str]]:
        return [(n, why) for n, why in self.failed if not any(c in why for c in CLEAR_FAILURES)]

    def summary(self) -> str:
        twice = sorted(j for j, n in self.completions.items() if n > 1)
        return (f"{self.jobs} jobs in {self.seconds:.1f} s: {len(self.right)} right, "
                f"{len(self.wrong)} wrong, {len(self.failed)} failed clearly"
                f"{f' ({len(self.unclear)} unclearly)' if self.unclear else ''}; "
                f"{len(self.kills)} kills ({', '.join(self.kills)}); completed twice: "
                f"{len(twice)}; left behind: {self.leftovers or 'nothing'}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout_s} s")


class _Site:
    """The scheduler, the workers and the server; each restartable, stopped by process id."""

    def __init__(self, folder: Path, env: dict, *, workers: int, fetch: bool):
        from medview.server.tls import make_self_signed

        self.folder, self.env = folder, env
        self.cert, self.key = make_self_signed(folder / "tls")
        self.tokens = folder / "tokens.json"
        self.state = folder / "state"
        self.fetch = fetch
        dask = str(Path(sys.executable).with_name("dask"))
        self._dask = dask
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = self._popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                      str(port), "--dashboard-address", "127.0.0.1:0"],
                                     "scheduler")
        _wait_port(port, self.scheduler, "the Dask scheduler")
        self.workers: dict[int, subprocess.Popen] = {}
        self.worker_log_from: dict[int, int] = {}  # slot → where its last worker's log starts
        for i in range(workers):
            self.start_worker(i)
        self.port = _free_port()
        self.server: subprocess.Popen | None = None
        self.starts = 0
        self.t0 = time.monotonic()

    def _popen(self, cmd: list[str], name: str, env: dict | None = None) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "a") as log:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    env=env or self.env)

    def start_worker(self, i: int) -> None:
        spool = self.folder / f"worker{i}-tmp"  # each its own temporary folder (spool)
        spool.mkdir(exist_ok=True)
        log = self.folder / f"worker{i}.log"  # the one before is dead: its log grows no more
        self.worker_log_from[i] = log.stat().st_size if log.exists() else 0
        self.workers[i] = self._popen(
            [self._dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
             "--no-nanny", "--dashboard-address", "127.0.0.1:0", "--name", f"w{i}"],
            f"worker{i}", env={**self.env, "TMPDIR": str(spool), "MEDVIEW_THREADS": "1",
                               "OMP_NUM_THREADS": "1"})

    def worker_came_up(self, i: int) -> bool:
        """Whether the last worker started in slot ``i`` has registered with the scheduler
        (Dask logs it once the worker plugins, the spool sweeper among them, have run)."""
        with open(self.folder / f"worker{i}.log", "rb") as log:
            log.seek(self.worker_log_from[i])
            return b"Registered to:" in log.read()

    def start_server(self) -> None:
        extra = ["--dask-fetch-results"] if self.fetch else []
        self.server = self._popen(
            [sys.executable, "-m", "medview.cli", "serve", "--host", "127.0.0.1", "--port",
             str(self.port), "--cert", str(self.cert), "--key", str(self.key), "--tokens",
             str(self.tokens), "--state-dir", str(self.state), "--dask", self.address, *extra],
            "server")
        self.starts += 1
        _wait_port(self.port, self.server, "medview serve")

    def stop(self, come_up_s: float = 60.0) -> None:
        # a worker the chaos restarted comes up before it is stopped, as a real restart
        # does: its start-up sweep deletes what its killed predecessor spooled. Stopped
        # half-started, before any medview code runs in it, it never sweeps, and nothing
        # else can (each slot has its own spool folder)
        end = time.monotonic() + come_up_s
        for i, p in self.workers.items():
            while p.poll() is None and not self.worker_came_up(i) and time.monotonic() < end:
                time.sleep(0.05)
        if self.server is not None:
            _stop(self.server)
        for p in self.workers.values():
            _stop(p)
        _stop(self.scheduler)


def _chaos(site: _Site, rng: random.Random, every: tuple[float, float], done: threading.Event,
           report: SoakReport) -> None:
    """Until ``done``: every ``every`` seconds kill the server (restarted at once) or a worker
    (restarted 0.5–2 s later), SIGKILL, chosen by ``rng``."""
    while not done.wait(rng.uniform(*every)):
        at = f"{time.monotonic() - site.t0:.1f}s"
        if rng.random() < 0.3:
            report.kills.append(f"server@{at}")
            _stop(site.server, signal.SIGKILL)
            site.start_server()
            continue
        i = rng.choice(sorted(site.workers))
        report.kills.append(f"worker{i}@{at}")
        _stop(site.workers[i], signal.SIGKILL)
        done.wait(rng.uniform(0.5, 2.0))
        site.start_worker(i)


def _client(i: int, site: _Site, token: str, names: list[str], volumes: dict, expected: dict,
            report: SoakReport, lock: threading.Lock) -> None:
    from medview.pipeline.chain import Chain
    from medview.remote.batch import BatchItem, stream_remote
    from medview.remote.client import RemoteClient
    from medview.remote.errors import RemoteError

    def deliver(item, inputs, result):
        same = all(np.array_equal(result.values[k].array, v) for k, v in
                   expected[item.name].items())
        with lock:
            (report.right if same else report.wrong).append(item.name)
        return []

    items = [BatchItem(n, "") for n in names]
    with RemoteClient(f"https://127.0.0.1:{site.port}", token, ca_bundle=str(site.cert),
                      name=f"client{i}", retries=12, timeout_s=60) as client:
        try:
            got = stream_remote(Chain.from_dict(CHAIN), items, client=client,
                                load=lambda it: {"image": volumes[it.name]}, deliver=deliver,
                                on_event=lambda msg: None, encoding="raw",
                                download_dir=site.folder / f"client{i}-downloads")
            failed = got.failed
        except RemoteError as exc:  # the server stayed away longer than all the retries
            done = set(report.right) | set(report.wrong)
            failed = [(n, f"client gave up: {exc}") for n in names if n not in done]
    with lock:
        report.failed.extend(failed)


def run_soak(folder: Path, *, jobs: int = 200, clients: int = 4, workers: int = 3,
             seed: int = 1, kill_every: tuple[float, float] = (2.0, 5.0), fetch: bool = False,
             env: dict | None = None) -> SoakReport:
    """Run the soak in ``folder`` (the caller sets MEDVIEW_CONFIG_DIR / MEDVIEW_DATA_DIR for
    this process; ``env`` is the servers' environment); returns what happened."""
    from medview.core.volume import Volume
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain
    from medview.server.auth import add_token

    env = dict(env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), env.get("PYTHONPATH")) if x)
    rng = np.random.default_rng(seed)
    volumes = {f"j{k:03d}": Volume(rng.normal(0, 100, (5, 24, 24)).astype(np.float32),
                                   (0.9, 0.9, 2.0)) for k in range(jobs)}
    chain = Chain.from_dict(CHAIN)
    expected = {}
    for name, vol in volumes.items():
        res = run_chain(chain, {"image": vol})
        expected[name] = {k: v.array for k, v in res.values.items() if hasattr(v, "array")
                          and k != "image"}
    import psutil

    report = SoakReport(jobs)
    earlier = {c.pid for c in psutil.Process().children(recursive=True)}
    site = _Site(folder, env, workers=workers, fetch=fetch)
    tokens = [add_token(f"soak-client-{i}", site.tokens) for i in range(clients)]
    lock = threading.Lock()
    done = threading.Event()
    try:
        site.start_server()
        site.t0 = time.monotonic()
        chaos = threading.Thread(target=_chaos, args=(site, random.Random(seed), kill_every,
                                                      done, report), daemon=True)
        chaos.start()
        names = sorted(volumes)
        threads = [threading.Thread(target=_client, args=(i, site, tokens[i],
                                                          names[i::clients], volumes,
                                                          expected, report, lock))
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.seconds = time.monotonic() - site.t0
        done.set()
        chaos.join(60)
    finally:
        done.set()
        site.stop()
    with contextlib.closing(sqlite3.connect(site.state / "jobs.sqlite")) as db:
        report.completions = dict(db.execute("SELECT id, completions FROM jobs"))
    report.leftovers = leftovers(site, earlier)
    return report


def leftovers(site: _Site, earlier: set[int]) -> list[str]:
    """Everything the soak left behind: processes it started that still run, files."""
    import psutil

    found = [f"process {p.pid} ({' '.join(p.cmdline()[:3])})"
             for p in psutil.Process().children(recursive=True)
             if p.pid not in earlier and p.is_running()]
    state = site.state
    found += [str(p) for p in (state / "uploads").iterdir()]
    found += [str(p) for p in (state / "jobs").iterdir()]
    for d in site.folder.glob("client*-downloads"):
        found += [str(p) for p in d.iterdir()]
    for d in site.folder.glob("worker*-tmp"):
        found += [str(p) for p in d.glob("medview-*/*/*")]
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kill-every", default="2:5", help="seconds between kills, MIN:MAX")
    p.add_argument("--fetch", action="store_true",
                   help="fetch every result from its worker (the multi-machine path)")
    p.add_argument("--keep", action="store_true", help="keep the folder (logs, job store)")
    args = p.parse_args()
    lo, hi = (float(x) for x in args.kill_every.split(":"))
    tmp = Path(tempfile.mkdtemp(prefix="medview-soak-"))
    try:
        os.environ["MEDVIEW_CONFIG_DIR"] = str(tmp / "config")
        os.environ["MEDVIEW_DATA_DIR"] = str(tmp / "data")
        report = run_soak(tmp, jobs=args.jobs, clients=args.clients, workers=args.workers,
                          seed=args.seed, kill_every=(lo, hi), fetch=args.fetch)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report.summary())
    twice = [j for j, n in report.completions.items() if n > 1]
    if twice:
        print("completed twice:", *twice)
    for name, why in report.failed:
        print(f"  failed {name}: {why}")
    ok = not report.wrong and not report.unclear and not report.leftovers and \
        max(report.completions.values(), default=0) <= 1
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
