"""Start-up time of the packaged application: cold (its files out of the page cache) and warm.

Usage (after ``bash packaging/build.sh``; needs Xvfb)::

    python benchmarks/package_start.py [--app PATH] [--repeat 3]

``--app`` is the bundle's ``medview`` (default ``build/packaging/bundle/medview/medview``, or
an installed ``/usr/bin/medview``). For each run it starts the app on the demo study against
one Xvfb server (QT_QPA_PLATFORM=xcb) with ``MEDVIEW_GUI_SCREENSHOT`` set, so the app quits
once the first image is drawn, and reads the app's own log lines "window shown N s / series
shown N s after process start" (process start from /proc/self/stat). It also
times ``medview --version`` (the command line without Qt).

Cold runs first drop the bundle's own files from the page cache (posix_fadvise DONTNEED,
file by file: nothing else on the machine is evicted, so the system libraries stay cached as
they would on a desktop that has been up for a while). Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_APP = REPO / "build" / "packaging" / "bundle" / "medview" / "medview"


def evict(folder: Path) -> int:
    """Drop ``folder``'s files from the page cache; returns the bytes advised."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    return total


def resident_bytes(folder: Path) -> int | None:
    """Bytes of ``folder``'s files now in the page cache (util-linux ``fincore``)."""
    files = [str(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    total = 0
    for i in range(0, len(files), 500):
        try:
            out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", *files[i: i + 500]],
                                 capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        total += sum(int(v) for v in out.split())
    return total


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.terminate()
        raise SystemExit("Xvfb did not start")
    return proc, f":{number}"


def run_window(app: Path, display: str, tmp: Path) -> dict[str, float]:
    shot = tmp / "shot.png"
    shot.unlink(missing_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8", "DISPLAY": display,
           "QT_QPA_PLATFORM": "xcb", "MEDVIEW_DB": str(tmp / f"catalog-{time.time_ns()}.sqlite"),
           "MEDVIEW_SETTINGS": str(tmp / "settings.ini"), "MEDVIEW_CACHE_DIR": str(tmp / "cache"),
           "MEDVIEW_GUI_SCREENSHOT": str(shot), "MEDVIEW_GUI_EXIT_AFTER_MS": "120000"}
    t0 = time.perf_counter()
    proc = subprocess.run([str(app), "--demo"], capture_output=True, text=True, env=env,
                          timeout=300)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not shot.is_file():
        raise SystemExit(f"the app failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    found = {k: float(v) for k, v in re.findall(
        r"(window|series) shown ([0-9.]+) s after process start", proc.stderr)}
    return {"window": found["window"], "series": found["series"], "exit": wall}


def run_version(app: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(app), "--version"], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, default=DEFAULT_APP)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    app = args.app.resolve()
    if not app.is_file():
        raise SystemExit(f"{app} not found: run bash packaging/build.sh first")
    bundle = app.parent
    xvfb, display = start_xvfb()
    rows: dict[str, list[float]] = {}
    read_at_start = None
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            for _ in range(args.repeat):
                for mode in ("cold", "warm"):
                    if mode == "cold":
                        evict(bundle)
                    rows.setdefault(f"{mode} --version", []).append(run_version(app))
                    if mode == "cold":
                        evict(bundle)
                    r = run_window(app, display, tmp)
                    if mode == "cold" and read_at_start is None:
                        read_at_start = resident_bytes(bundle)
                    for key in ("window", "series", "exit"):
                        rows.setdefault(f"{mode} {key}", []).append(r[key])
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=30)
    size_mb = sum(p.stat().st_size for p in bundle.rglob("*")
                  if p.is_file() and not p.is_symlink()) / 2**20
    print(f"{app} ({size_mb:.0f} MB bundle), {args.repeat} runs each, medians in seconds:")
    if read_at_start is not None:
        print(f"  a cold start to the first image reads {read_at_start / 2**20:.0f} MB of the "
              "bundle (page cache after the first cold run)")
    labels = {"--version": "`medview --version` returns",
              "window": "window shown (from process start)",
              "series": "demo series drawn (from process start)",
              "exit": "screenshot taken and process exited"}
    for key in ("--version", "window", "series", "exit"):
        cold = statistics.median(rows[f"cold {key}"])
        warm = statistics.median(rows[f"warm {key}"])
        print(f"  {labels[key]:42s} cold {cold:6.2f}   warm {warm:6.2f}   "
              f"cold/warm {cold / warm:4.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
