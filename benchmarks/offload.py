"""Offload: what sending a job to `medview serve` costs, and what a Dask cluster gains.

    .venv/bin/python benchmarks/offload.py [--slices 300] [--size 512] [--batch 8]
        [--batch-slices 24] [--batch-size 192] [--skip-roundtrip] [--skip-dask]

1. Round trip on loopback (a real ``medview serve`` over TLS, started here): the scribble
   classifier chain (``resources/chains/scribble_classifier.json``) on the synthetic CT phantom
   of ``benchmarks/classifier.py`` (``--slices``×``--size``², float32 + uint8 scribbles) runs
   locally, then on the server, once with raw arrays and once with blosc2. The overhead is the
   client's encode + upload + download + decode time (and, for reference, the end-to-end time
   minus the server's compute time); target: ≤ 25 % of the local run time.
2. Batch on Dask: ``--batch`` series (``--batch-slices``×``--batch-size``², each its own job)
   through ``medview serve --dask`` on a cluster of 1, then 2, single-threaded worker processes
   (``dask scheduler`` / ``dask worker --nthreads 1``, ``MEDVIEW_THREADS=1``); target: 2 workers
   ≥ 1.7× faster than 1. "compute s" is the steps' time summed over the jobs, "busy workers"
   that divided by the wall time; the script also prints how many cores the machine gives
   two processes at that moment (other work shares these machines).

Everything listens on 127.0.0.1 only and is stopped by process id at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks._common import print_table  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_server(folder: Path, env: dict, *extra: str) -> tuple[subprocess.Popen, str, Path, str]:
    """A TLS `medview serve` with a fresh certificate and token; returns proc, url, cert, token."""
    import httpx

    from medview.server.auth import add_token
    from medview.server.tls import make_self_signed

    cert, key = make_self_signed(folder / "tls")
    token = add_token("bench", folder / "tokens.json")
    port = free_port()
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - kept open for the child's life
    proc = subprocess.Popen(
        [sys.executable, "-m", "medview.cli", "serve", "--port", str(port), "--cert", str(cert),
         "--key", str(key), "--tokens", str(folder / "tokens.json"), "--state-dir",
         str(folder / "state"), "--max-upload-mb", "4096", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError((folder / "serve.log").read_text())
        try:
            if httpx.get(f"{url}/health", verify=ctx, timeout=2).status_code == 200:
                return proc, url, cert, token
        except httpx.TransportError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("medview serve did not start")


def roundtrip(args, env: dict, tmp: Path) -> list[list]:
    from benchmarks.classifier import phantom
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain
    from medview.remote.client import RemoteClient
    from medview.remote.run import collect_job, submit_job

    vol, _, scr, _ = phantom(args.slices, args.size)
    chain = Chain.load(ROOT / "resources" / "chains" / "scribble_classifier.json")
    t0 = time.perf_counter()
    local = run_chain(chain, {"image": vol, "scribbles": scr})
    t_local = time.perf_counter() - t0
    rows = [["local run", f"{t_local:.2f}", "", "", "", "", ""]]
    proc, url, cert, token = start_server(tmp / "rt", env, "--workers", "1")
    try:
        for enc in ("raw", "blosc2"):
            with RemoteClient(url, token, ca_bundle=str(cert), name="bench",
                              timeout_s=600) as c:
                t0 = time.perf_counter()
                job = submit_job(c, chain, {"image": vol, "scribbles": scr}, encoding=enc)
                res = collect_job(c, job)
                total = time.perf_counter() - t0
            same = np.array_equal(res.values["segmentation"].array,
                                  local.values["segmentation"].array)
            compute = sum(res.seconds.values())
            tt = job.timings
            transfer = tt["encode"] + tt["upload"] + tt["download"] + tt["decode"]
            rows.append([f"server, {enc}", f"{total:.2f}",
                         f"{job.upload_bytes / 2**20:.0f}",
                         f"{tt['encode']:.2f}+{tt['upload']:.2f}/{tt['download']:.2f}+"
                         f"{tt['decode']:.2f}",
                         f"{transfer:.2f} ({100 * transfer / t_local:.1f} %)",
                         f"{total - compute:.2f} ({100 * (total - compute) / t_local:.1f} %)",
                         "yes" if same else "NO"])
    finally:
        stop(proc)
    return rows


def start_dask(n: int, env: dict, logs: Path) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", f"127.0.0.1:{free_port()}"],
                              stdout=open(logs / "sched.log", "w"),  # noqa: SIM115
                              stderr=subprocess.STDOUT, env=env)]
    wenv = {**env, "MEDVIEW_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for i in range(n):
        procs.append(subprocess.Popen(
            [dask, "worker", addr, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
             "--dashboard-address", "127.0.0.1:0"],
            stdout=open(logs / f"w{i}.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env=wenv))
    with Client(addr, timeout="30s", set_as_default=False) as c:
        c.wait_for_workers(n, timeout=60)
    return addr, procs


def dask_batch(args, env: dict, tmp: Path) -> list[list]:
    from medview.core.volume import Volume
    from medview.dicom.phantom import ct_phantom_volume
    from medview.pipeline.chain import Chain
    from medview.remote.client import RemoteClient
    from medview.remote.run import run_batch_remote

    shape = (args.batch_slices, args.batch_size, args.batch_size)
    sp = 0.7 * 512 / args.batch_size
    batch = [{"image": Volume(ct_phantom_volume(shape, (sp, sp, 1.0), seed=i)
                              .astype(np.float32), (sp, sp, 1.0))} for i in range(args.batch)]
    chain = Chain.from_dict({"steps": [
        {"step": "smooth.curvature_diffusion", "params": {"iterations": args.iterations,
                                                          "in_plane_only": True}},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0}},
        {"step": "segment.fill_holes", "params": {"in_plane_only": True}}]})
    rows, seconds = [], {}
    for n in (1, 2):
        folder = tmp / f"dask{n}"
        folder.mkdir()
        addr, procs = start_dask(n, env, folder)
        try:
            proc, url, cert, token = start_server(folder, env, "--dask", addr)
            try:
                with RemoteClient(url, token, ca_bundle=str(cert), timeout_s=600) as c:
                    run_batch_remote(chain, batch[:2], client=c,  # warm the workers up
                                     encoding=args.encoding)
                    t0 = time.perf_counter()
                    results = run_batch_remote(chain, batch, client=c, encoding=args.encoding)
                    seconds[n] = time.perf_counter() - t0
                assert len(results) == len(batch)
            finally:
                stop(proc)
        finally:
            for p in reversed(procs):
                stop(p)
        compute = sum(sum(r.seconds.values()) for r in results)
        rows.append([f"{n} worker{'s' if n > 1 else ''}", f"{seconds[n]:.2f}",
                     f"{seconds[1] / seconds[n]:.2f}×", f"{compute:.2f}",
                     f"{compute / seconds[n]:.2f}"])
    return rows


def _spin(seconds: float) -> int:
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n


def machine_parallelism(seconds: float = 2.0) -> float:
    """How many cores this busy machine gives us now: pure-Python spin loops in 2 processes
    vs 1 (2.0 on an idle 2-core machine)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_spin, [0.1, 0.1])
        one = pool.apply(_spin, (seconds,))
        two = sum(pool.map(_spin, [seconds, seconds]))
    return two / one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batch-slices", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=40,
                   help="curvature diffusion iterations per batch series (the work per job)")
    p.add_argument("--encoding", default="auto", choices=["auto", "raw", "blosc2"],
                   help="how the batch's volumes travel")
    p.add_argument("--skip-roundtrip", action="store_true")
    p.add_argument("--skip-dask", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="medview-offload-bench-") as t:
        tmp = Path(t)
        env = dict(os.environ, MEDVIEW_CONFIG_DIR=str(tmp / "config"),
                   MEDVIEW_DATA_DIR=str(tmp / "data"))
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(ROOT), env.get("PYTHONPATH")) if x)
        os.environ["MEDVIEW_DATA_DIR"] = env["MEDVIEW_DATA_DIR"]  # this process's audit log
        if not args.skip_roundtrip:
            print(f"Round trip on loopback, {args.slices}×{args.size}² CT + scribbles, "
                  "scribble classifier chain (target: overhead ≤ 25 % of the local run)")
            print_table(["run", "s", "upload MiB", "enc+up / down+dec s", "transfer overhead",
                         "total − compute", "same result"], roundtrip(args, env, tmp))
        if not args.skip_dask:
            print(f"\nBatch of {args.batch} series ({args.batch_slices}×{args.batch_size}²) "
                  "through medview serve --dask (target: 2 workers ≥ 1.7× 1 worker)")
            before = machine_parallelism()
            rows = dask_batch(args, env, tmp)
            print(f"(this machine gave {before:.2f}× before and {machine_parallelism():.2f}× "
                  "after on two spinning processes; other work shares it)")
            print_table(["cluster", "s", "speed-up", "compute s", "busy workers"], rows)


if __name__ == "__main__":
    main()
