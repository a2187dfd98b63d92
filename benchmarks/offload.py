"""Offload: what sending a job to `medview serve` costs, and what a Dask cluster gains.

    .venv/bin/python benchmarks/offload.py [--slices 300] [--size 512] [--batch 16]
        [--batch-slices 32] [--batch-size 256] [--big-mb 300] [--split-slices 600]
        [--skip-roundtrip] [--skip-dask] [--skip-big] [--skip-split]

1. Round trip on loopback (a real ``medview serve`` over TLS, started here): the scribble
   classifier chain (``resources/chains/scribble_classifier.json``) on the synthetic CT phantom
   of ``benchmarks/classifier.py`` (``--slices``×``--size``², float32 + uint8 scribbles) runs
   locally, then on the server, once with raw arrays and once with blosc2. The overhead is the
   client's encode + upload + download + decode time (and, for reference, the end-to-end time
   minus the server's compute time); target: ≤ 25 % of the local run time.
2. A big result from Dask: a chain of five gamma steps on a small int16 CT returns five float32
   volumes, ``--big-mb`` MiB in all, through ``medview serve --dask`` twice: with
   ``--dask-fetch-results`` (the worker spools the result, the server fetches it in 8 MiB
   chunks into the job's part file) and with the worker writing it into the job folder. Either
   way each step's output is written as soon as the step has made it (fetched: the server
   fetches it meanwhile) and the client downloads the early outputs while the later steps
   compute. Either way the client downloads it while it is written (a growing
   part file; ``result_ready`` / ``streaming`` in the job's status) into a file and maps it
   (no decode copy); the voxels are compared with a local run ("same"). End to end minus the
   steps' compute time against a plain HTTPS download (uvicorn + Starlette ``FileResponse``,
   the same TLS, an httpx client streaming into a file) of a file of the result's size,
   measured between the runs; target ≤ 1.5×. Also against the same download read with the
   standard library's ``http.client`` into a 1 MiB buffer (about twice as fast as httpx on
   loopback; medview's client reads a result's body that way). The breakdown: upload, wait
   (until the result streams), download, settle (until the job has ended after the
   download), decode.
3. Batch on Dask: ``--batch`` series (``--batch-slices``×``--batch-size``², each its own job)
   through ``medview serve --dask`` on a cluster of 1, then 2, single-threaded worker processes
   (``dask scheduler`` / ``dask worker --nthreads 1``, ``MEDVIEW_THREADS=1``); target: 2 workers
   ≥ 1.7× faster than 1. "compute s" is the steps' time summed over the jobs, "busy workers"
   that divided by the wall time; the script also prints how many cores the machine gives
   two processes at that moment (other work shares these machines). The batch streams
   (:func:`medview.remote.batch.stream_remote`: submitted as the server has room, collected as
   each is done).
4. One volume across workers: a ``--split-slices``×512² float32 volume, Gaussian (σ 1.5 mm,
   3D) + Sobel (3D), on a 2-worker cluster whole (one worker) and split (``--split``: slabs
   with halos over both); the steps' compute time, the speed-up and the bytes the slabs moved.

Everything listens on 127.0.0.1 only and is stopped by process id at the end.
"""

from __future__ import annotations

import argparse
import contextlib
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


def _stream(chain, client, volumes, encoding):
    """The batch through :func:`stream_remote`, results kept in memory."""
    from medview.remote.batch import BatchItem, stream_remote

    items = [BatchItem(f"s{i}", "") for i in range(len(volumes))]
    by_name = {it.name: v for it, v in zip(items, volumes, strict=True)}
    results = []

    def deliver(item, inputs, result):
        results.append(result)
        return []

    report = stream_remote(chain, items, client=client, encoding=encoding,
                           load=lambda it: {"image": by_name[it.name]}, deliver=deliver,
                           on_event=lambda msg: None)
    return report, results


def dask_batch(args, env: dict, tmp: Path) -> list[list]:
    from medview.core.volume import Volume
    from medview.pipeline.chain import Chain
    from medview.remote.client import RemoteClient
    from phantoms import ct_phantom_volume

    shape = (args.batch_slices, args.batch_size, args.batch_size)
    sp = 0.7 * 512 / args.batch_size
    batch = [Volume(ct_phantom_volume(shape, (sp, sp, 1.0), seed=i).astype(np.float32),
                    (sp, sp, 1.0)) for i in range(args.batch)]
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
                    _stream(chain, c, batch[:2], args.encoding)  # warm the workers up
                    t0 = time.perf_counter()
                    report, results = _stream(chain, c, batch, args.encoding)
                    seconds[n] = time.perf_counter() - t0
                assert len(report.written) == len(batch), report.failed
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


@contextlib.contextmanager
def plain_https(size: int, env: dict, tmp: Path):
    """A plain uvicorn + Starlette FileResponse server (the same TLS stack and 1 MiB chunks as
    medview serve's results) of a file of ``size`` bytes; yields ``{client: download()}`` →
    seconds to stream it over loopback HTTPS into a file: with httpx (the usual Python client)
    and with the standard library's ``http.client`` reading into a 1 MiB buffer (what medview's
    client does for a result's body: about twice as fast as httpx here)."""
    import http.client
    import ssl

    import httpx

    from medview.server.tls import make_self_signed

    folder = tmp / "plain"
    folder.mkdir(parents=True)
    cert, key = make_self_signed(folder / "tls")
    blob = folder / "blob.bin"
    with open(blob, "wb") as f:
        for _ in range(size // (16 << 20)):
            f.write(np.random.default_rng(1).bytes(16 << 20))
        f.write(b"\0" * (size % (16 << 20)))
    (folder / "app.py").write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.responses import FileResponse\n"
        "from starlette.routing import Route\n"
        "FileResponse.chunk_size = 1 << 20\n"
        f"app = Starlette(routes=[Route('/blob', lambda r: FileResponse({str(blob)!r}))])\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
         "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--log-level", "warning"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(verify=ctx, timeout=60) as c:
            for _ in range(100):
                try:
                    c.get(f"https://127.0.0.1:{port}/blob", headers={"Range": "bytes=0-0"})
                    break
                except httpx.TransportError:
                    time.sleep(0.1)

            def download() -> float:
                t0 = time.perf_counter()
                with c.stream("GET", f"https://127.0.0.1:{port}/blob") as r, \
                        open(folder / "got.bin", "wb") as out:
                    for chunk in r.iter_bytes(1 << 20):
                        out.write(chunk)
                took = time.perf_counter() - t0
                (folder / "got.bin").unlink()
                return took

            def download_stdlib() -> float:
                t0 = time.perf_counter()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
                conn.request("GET", "/blob")
                r = conn.getresponse()
                buf = bytearray(1 << 20)
                view = memoryview(buf)
                with open(folder / "got.bin", "wb") as out:
                    while n := r.readinto(buf):
                        out.write(view[:n])
                conn.close()
                took = time.perf_counter() - t0
                (folder / "got.bin").unlink()
                return took

            yield {"httpx": download, "http.client": download_stdlib}
    finally:
        stop(proc)
        blob.unlink()


def big_result(args, env: dict, tmp: Path) -> list[list]:
    from medview.core.volume import Volume
    from medview.pipeline.chain import Chain
    from medview.remote.client import RemoteClient
    from medview.remote.run import collect_job, submit_job

    n_steps = 5
    slices = max(1, int(args.big_mb * 2**20 / (n_steps * 512 * 512 * 4)))
    arr = np.random.default_rng(2).integers(-1000, 2000, (slices, 512, 512), dtype=np.int16)
    vol = Volume(arr, (0.7, 0.7, 1.0))
    chain = Chain.from_dict({"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.9}}]
                             * n_steps})
    from medview.pipeline.runner import run_chain

    local = run_chain(chain, {"image": vol}).values
    size = 0
    folder = tmp / "big"
    folder.mkdir()
    addr, procs = start_dask(1, env, folder)
    rows, plain = [], {"httpx": [], "http.client": []}
    try:
        for mode, extra in (("fetched from the worker", ("--dask-fetch-results",)),
                            ("written into the job folder", ())):
            sub = folder / mode.split()[0]
            sub.mkdir()
            proc, url, cert, token = start_server(sub, env, "--dask", addr, *extra)
            try:
                with RemoteClient(url, token, ca_bundle=str(cert), timeout_s=600) as c, \
                        contextlib.ExitStack() as stack:
                    best, dl, all_same = None, None, True
                    for _ in range(3):
                        t0 = time.perf_counter()
                        job = submit_job(c, chain, {"image": vol}, encoding="raw")
                        res = collect_job(c, job)
                        total = time.perf_counter() - t0
                        compute = sum(res.seconds.values())
                        size = c.status(job.status.id).result_bytes
                        same = all(np.array_equal(res.values[k].array, local[k].array)
                                   for k in local if k != "image") and \
                            len(res.values) == len(local) - 1
                        del res  # its memory (a map of the download) is free for what follows
                        if best is None or total - compute < best[0] - best[1]:
                            best = (total, compute, dict(job.timings))
                        all_same = all_same and same
                        # the plain download of the same bytes, between the runs (this
                        # machine's load changes by the second); one file per mode: a new
                        # 300 MB file per run took memory the next run then lacked
                        if dl is None:
                            dl = stack.enter_context(
                                plain_https(size, env, tmp / f"p-{mode.split()[0]}"))
                        for kind, download in dl.items():
                            plain[kind].append(min(download() for _ in range(2)))
            finally:
                stop(proc)
            total, compute, tt = best
            rows.append([mode, f"{size / 2**20:.0f}", f"{job.upload_bytes / 2**20:.0f}",
                         f"{total:.2f}", f"{compute:.2f}", f"{total - compute:.2f}",
                         f"{tt['upload']:.2f}/{tt.get('wait', 0):.2f}/{tt['download']:.2f}/"
                         f"{tt.get('settle', 0):.2f}/{tt['decode']:.2f}",
                         "yes" if all_same else "NO"])
    finally:
        for p in reversed(procs):
            stop(p)
    fastest = {kind: min(v) for kind, v in plain.items()}
    for r in rows:
        r[7:7] = [f"{float(r[5]) / fastest['httpx']:.2f}×",
                  f"{float(r[5]) / fastest['http.client']:.2f}×"]
    for kind, v in plain.items():
        rows.append([f"plain HTTPS download, {kind}", rows[0][1], "", f"{fastest[kind]:.2f}",
                     "", f"{fastest[kind]:.2f}",
                     f"download {fastest[kind]:.2f} (slowest {max(v):.2f})",
                     f"{fastest[kind] / fastest['httpx']:.2f}×",
                     f"{fastest[kind] / fastest['http.client']:.2f}×", ""])
    return rows


def split_volume(args, env: dict, tmp: Path) -> list[list]:
    from medview.core.volume import Volume
    from medview.pipeline.chain import Chain
    from medview.remote.client import RemoteClient
    from medview.remote.run import collect_job, submit_job

    rng = np.random.default_rng(3)
    vol = Volume(rng.normal(0, 100, (args.split_slices, 512, 512)).astype(np.float32),
                 (0.7, 0.7, 1.0))
    chain = Chain.from_dict({"steps": [{"step": "smooth.gaussian",
                                        "params": {"sigma_mm": 1.5}},
                                       {"step": "features.sobel"}]})
    folder = tmp / "split"
    folder.mkdir()
    addr, procs = start_dask(2, env, folder)
    rows, compute = [], {}
    try:
        proc, url, cert, token = start_server(folder, env, "--dask", addr)
        try:
            with RemoteClient(url, token, ca_bundle=str(cert), timeout_s=900) as c:
                outs = {}
                for split in (False, True):
                    job = submit_job(c, chain, {"image": vol}, encoding="raw", split=split)
                    res = collect_job(c, job)
                    compute[split] = sum(res.seconds.values())
                    outs[split] = res.result.array
                    moved = (job.result_meta.get("split") or {}).get("bytes_moved", 0)
                    rows.append(["split over 2 workers" if split else "whole, 1 worker",
                                 f"{compute[split]:.2f}",
                                 f"{compute[False] / compute[split]:.2f}×",
                                 f"{moved / 2**20:.0f}"])
                same = np.array_equal(outs[False], outs[True])
        finally:
            stop(proc)
    finally:
        for p in reversed(procs):
            stop(p)
    for r in rows:
        r.append("yes" if same else "NO")
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
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batch-slices", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=40,
                   help="curvature diffusion iterations per batch series (the work per job)")
    p.add_argument("--encoding", default="auto", choices=["auto", "raw", "blosc2"],
                   help="how the batch's volumes travel")
    p.add_argument("--big-mb", type=float, default=300.0,
                   help="size of the big result in MiB")
    p.add_argument("--split-slices", type=int, default=600)
    p.add_argument("--skip-roundtrip", action="store_true")
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--skip-split", action="store_true")
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
        if not args.skip_big:
            print(f"\nA {args.big_mb:.0f} MiB result from a 1-worker Dask cluster "
                  "(target: end to end minus compute ≤ 1.5× a plain HTTPS download; this "
                  f"machine gives {machine_parallelism():.2f}× on two spinning processes now)")
            print_table(["result", "MiB", "upload MiB", "total s", "compute s",
                         "total − compute", "up/wait/down/settle/decode s", "vs httpx",
                         "vs http.client", "same"], big_result(args, env, tmp))
        if not args.skip_split:
            print(f"\nOne {args.split_slices}×512² volume, Gaussian + Sobel (3D) on 2 workers")
            print_table(["run", "compute s", "speed-up", "slab MiB moved", "same voxels"],
                        split_volume(args, env, tmp))
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
