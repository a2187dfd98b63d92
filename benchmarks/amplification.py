"""Decompression amplification against a real ``medview serve``: peak memory of its worker.

Starts ``medview serve`` (TLS, one pool process) from a medview source tree (``--repo``,
default this checkout; pass an older checkout to see the figures before a change), uploads a
few-KB blosc2 bundle whose one array declares ``--mib`` MiB of zeros with a threshold chain,
and prints: the upload's size, the HTTP status, the job's end state, the pool process's peak
RSS (``VmHWM``) before and after, the server's peak RSS, and the bytes left on disk in the job
store. It asserts nothing.

Usage::

    python benchmarks/amplification.py [--repo DIR] [--mib 1024] [--max-upload-mb 512]
        [--max-decoded-mb MB]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, print_table

CHAIN = {"steps": [{"step": "segment.threshold", "version": 1,
                    "params": {"low": -1.0, "high": 1.0}}]}


def payload(mib: int) -> bytes:
    import blosc2

    step = 16 << 20
    chunk = blosc2.compress2(bytes(step), typesize=1, clevel=1, codec=blosc2.Codec.ZSTD,
                             filter=blosc2.Filter.SHUFFLE)
    n = (mib << 20) // step
    blob = (struct.pack("<Q", len(chunk)) + chunk) * n
    item = {"name": "image", "kind": "volume", "encoding": "blosc2", "dtype": "|u1",
            "geometry": {"shape": [n * 16, 1024, 1024], "spacing": [1.0, 1.0, 1.0],
                         "origin": [0.0, 0.0, 0.0],
                         "direction": [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]},
            "metadata": {}, "nbytes": len(blob)}
    head = json.dumps({"meta": {"chain": CHAIN}, "items": [item]}).encode()
    return struct.pack("<4sQ", b"MVB1", len(head)) + head + blob


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(REPO), help="medview source tree to serve from")
    ap.add_argument("--mib", type=int, default=1024, help="declared decoded size (MiB)")
    ap.add_argument("--max-upload-mb", type=float, default=512.0)
    ap.add_argument("--max-decoded-mb", type=float, default=None)
    args = ap.parse_args()
    import httpx
    import psutil

    body = payload(args.mib)
    with tempfile.TemporaryDirectory(prefix="medview-amp-") as tmp:
        root = Path(tmp)
        env = dict(os.environ, PYTHONPATH=args.repo, MEDVIEW_CONFIG_DIR=str(root / "cfg"),
                   MEDVIEW_DATA_DIR=str(root / "data"))
        # -m puts the working folder first on sys.path: run from the tree being measured
        cli = [sys.executable, "-m", "medview.cli"]
        subprocess.run([*cli, "serve", "make-cert", str(root / "tls")], env=env, check=True,
                       cwd=args.repo, capture_output=True)
        token = subprocess.run([*cli, "serve", "add-token", "bench", "--tokens",
                                str(root / "tokens.json")], env=env, check=True,
                               capture_output=True, text=True).stdout.strip()
        port = free_port()
        extra = [] if args.max_decoded_mb is None else ["--max-decoded-mb",
                                                        str(args.max_decoded_mb)]
        with open(root / "serve.log", "w") as log:
            proc = subprocess.Popen(
                [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--cert",
                 str(root / "tls" / "cert.pem"), "--key", str(root / "tls" / "key.pem"),
                 "--tokens", str(root / "tokens.json"), "--state-dir", str(root / "state"),
                 "--workers", "1", "--max-upload-mb", str(args.max_upload_mb), *extra],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=args.repo)
        try:
            ctx = ssl.create_default_context(cafile=str(root / "tls" / "cert.pem"))
            http = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ctx, timeout=600,
                                headers={"Authorization": f"Bearer {token}"})
            end = time.monotonic() + 60
            while time.monotonic() < end:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            parent = psutil.Process(proc.pid)
            workers = []
            while time.monotonic() < end and not workers:
                workers = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
                time.sleep(0.1)
            time.sleep(3.0)  # let the pool process finish importing (warm-up)
            before = {p.pid: vm_hwm(p.pid) for p in workers}
            t0 = time.perf_counter()
            r = http.post("/api/v1/jobs", content=body)
            answer_s = time.perf_counter() - t0
            state = "-"
            if r.status_code in (200, 201):
                job = r.json()["id"]
                while True:
                    st = http.get(f"/api/v1/jobs/{job}").json()
                    if st["state"] not in ("queued", "running"):
                        state = st["state"] + (f" ({st['error'][:60]})" if st["error"] else "")
                        break
                    time.sleep(0.2)
            after = {pid: vm_hwm(pid) for pid in before}
            on_disk = sum(f.stat().st_size for f in (root / "state").rglob("*")
                          if f.is_file() and "jobs" in f.parts)
            server_peak = vm_hwm(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    mb = 1e6
    print(f"medview serve from {args.repo}; --max-upload-mb {args.max_upload_mb}"
          + (f" --max-decoded-mb {args.max_decoded_mb}" if extra else ""))
    print_table(["upload bytes", "declares", "HTTP", "answer s", "job", "worker peak before MB",
                 "worker peak after MB", "server peak MB", "job store bytes"],
                [[len(body), f"{args.mib} MiB", r.status_code, f"{answer_s:.2f}", state,
                  f"{max(before.values(), default=0) / mb:.0f}",
                  f"{max(after.values(), default=0) / mb:.0f}", f"{server_peak / mb:.0f}",
                  on_disk]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
