"""Scale: importing 1k / 10k / 100k-file trees, process to process, against a pydicom loop.

Makes a tree of many series (patients / studies / series folders, series of 1 to 500 slices,
about 1 % junk: text notes and truncated DICOM files) in a temporary folder. Every file has a
scanner-like header (benchmarks/index.py's, about 100 elements, sequences, private tags) on
real CT pixels (a slice of ``kits_dupe_positions``, reduced to ``--matrix``²); files are made by
patching UIDs, positions and numbers into one pydicom-written template at fixed byte offsets,
so 100,000 files take seconds, not minutes.

For each size it runs, as separate processes with a warm page cache (the interpreter's start
counted on both sides):

a. ``python -c`` a plain ``pydicom.dcmread(f, stop_before_pixels=True)`` loop over ``os.walk``;
b. ``medview index`` into a new catalog (first import);
c. ``medview index`` again on the unchanged tree (re-index; median of ``--repeat`` runs);
d. ``medview --version`` and ``medview index --help`` (start-up alone, median of ``--repeat``);

medview is compiled to ``.pyc`` first (``python -m compileall medview``, into its own
``__pycache__`` folders, as an installed medview has them) and every process runs without
``PYTHONDONTWRITEBYTECODE``: otherwise each process would compile medview's modules again
(~0.02-0.03 s of every start-up). (Not a ``PYTHONPYCACHEPREFIX``: with one, Python ignores
the standard library's and the packages' own ``.pyc`` too and compiles them in the first
measured process.) The load average (``uptime``) is printed with the figures.

and prints seconds, CPU seconds (user + system, scan workers included: what a shared machine
measures best), files/s, peak RSS (GNU time's ``%M``: the largest of the process and the
scan workers) and the ratios: b vs a (target ≥ 4×), c vs b (target ≥ 20×), start-up
(≤ 0.15 s).
Peak RSS that stays the same from 1k to 100k files is the "memory flat in the number of files"
target. Asserts nothing: these machines are noisy (2 cores shared), compare ratios of one run.

Usage::

    python benchmarks/scale.py [--sizes 1000,10000] [--matrix 128] [--keep] [--repeat 5]
    python benchmarks/scale.py --sizes 100000        # about 3.5 GB of files at --matrix 128
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, print_table

DATA = Path(os.environ.get("MEDVIEW_TEST_DATA", "/work/shared/data"))
SERIES_SIZES = (1, 24, 120, 300, 500, 60, 2, 200)  # mixed: localizers to long CTs

# fixed-width placeholders patched per file (UID components never start with 0)
_STUDY = "2.25.1" + "8" * 30
_SERIES = "2.25.2" + "8" * 30
_SOP = "2.25.3" + "8" * 30
_FRAME = "2.25.4" + "8" * 30
_Z = "-77777.77"  # DS, 9 characters: "%9.2f"
_NUM = "777777"  # IS, 6 characters: "%6d"
_PID = "PID77777"
_SERNUM = "666666"


def _real_pixels(matrix: int):
    import numpy as np
    import pydicom

    files = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))
    if not files:
        raise SystemExit(f"needs the real CT of {DATA / 'kits_dupe_positions'} (see SOURCES.md)")
    ds = pydicom.dcmread(files[0])
    px = ds.pixel_array
    step = max(1, px.shape[0] // matrix)
    return np.ascontiguousarray(px[::step, ::step][:matrix, :matrix]).astype(np.int16)


def make_template(matrix: int) -> tuple[bytes, dict[str, list[int]]]:
    """One file's bytes with placeholders, and where each placeholder sits."""
    from index import make_dataset

    ds = make_dataset(0, 1, matrix, _STUDY, _SERIES, _FRAME)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _SOP
    ds.ImagePositionPatient = ["-180.0", "-180.0", _Z]
    ds.SliceLocation = _Z
    ds.InstanceNumber = _NUM
    ds.SeriesNumber = _SERNUM
    ds.PatientID = _PID
    px = _real_pixels(matrix)
    ds.Rows, ds.Columns = px.shape
    ds.PixelSpacing = [360.0 / px.shape[0]] * 2
    ds.PixelData = px.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    where = {}
    for key in (_STUDY, _SERIES, _SOP, _FRAME, _Z, _NUM, _PID, _SERNUM):
        raw, spots, i = key.encode(), [], -1
        while (i := data.find(raw, i + 1)) >= 0:
            spots.append(i)
        where[key] = spots
    return data, where


def make_tree(root: Path, n_files: int, matrix: int, *, seed: int = 0) -> dict:
    """Write ``n_files`` files under ``root``; returns counts of images, junk and series."""
    template, where = make_template(matrix)
    rng = random.Random(seed)
    buf = bytearray(template)
    written = images = junk = n_series = 0
    patient = 0
    while written < n_files:
        patient += 1
        for study in range(2):
            study_dir = root / f"P{patient:05d}" / f"ST{study}"
            for series in range(3):
                if written >= n_files:
                    break
                n_series += 1
                size = min(rng.choice(SERIES_SIZES), n_files - written)
                folder = study_dir / f"SE{series}"
                folder.mkdir(parents=True, exist_ok=True)
                ids = {_STUDY: f"2.25.1{patient:020d}{study:010d}",
                       _SERIES: f"2.25.2{n_series:030d}",
                       _FRAME: f"2.25.4{n_series:030d}",
                       _PID: f"PID{patient:05d}",
                       _SERNUM: f"{series + 1:6d}"}
                for key, value in ids.items():
                    for at in where[key]:
                        buf[at:at + len(value)] = value.encode()
                for i in range(size):
                    if written >= n_files:
                        break
                    sop = f"2.25.3{written:030d}".encode()
                    for at in where[_SOP]:
                        buf[at:at + len(sop)] = sop
                    z = f"{-1.25 * i:9.2f}".encode()
                    for at in where[_Z]:
                        buf[at:at + 9] = z
                    num = f"{i + 1:6d}".encode()
                    for at in where[_NUM]:
                        buf[at:at + 6] = num
                    (folder / f"IM{i:05d}.dcm").write_bytes(buf)
                    written += 1
                    images += 1
                    if written % 100 == 50 and written < n_files:  # ~1 % junk
                        if rng.random() < 0.5:
                            (folder / f"notes{i}.txt").write_text("not DICOM\n")
                        else:
                            (folder / f"cut{i}.dcm").write_bytes(bytes(buf[: len(buf) // 3]))
                        written += 1
                        junk += 1
    return {"files": written, "images": images, "junk": junk, "series": n_series}


_PYDICOM_LOOP = """
import os, sys, pydicom
n = 0
for top, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        try:
            pydicom.dcmread(os.path.join(top, name), stop_before_pixels=True)
            n += 1
        except Exception:
            pass
print(n)
"""


def run(cmd: list[str], env: dict | None = None) -> tuple[float, int, float, str]:
    """Wall seconds, peak RSS (bytes), CPU seconds (user + system) and output of ``cmd``.

    CPU seconds are what a machine shared with other work measures best: wall time there
    depends on who else runs (on an idle machine with the scan pool, wall < CPU).

    The peak comes from GNU time (``%M``, the largest of the process and the children it
    waited for): ``wait4`` from this process would not do, because Linux carries a process's
    peak RSS across fork and exec, so every child would report at least this process's size.
    """
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M CPU %U %S", *cmd],
                          capture_output=True, env=_env(env), cwd=REPO, check=False)
    seconds = time.perf_counter() - t0
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err[-500:]}")
    stats = [line.split() for line in err.splitlines() if line.startswith("MAXRSS ")][-1]
    cpu = float(stats[3]) + float(stats[4])  # user + system, children waited for included
    return seconds, int(stats[1]) * 1024, cpu, out


def _env(extra: dict | None = None) -> dict:
    """This environment, ``extra`` added, without PYTHONDONTWRITEBYTECODE (see the module's
    docstring: the measured processes use compiled medview modules, as installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def compile_medview(py: str) -> None:
    subprocess.run([py, "-m", "compileall", "-q", str(REPO / "medview")], env=_env(),
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def load() -> str:
    """The load averages (1, 5, 15 min): other work on a shared machine."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def warm(root: Path) -> int:
    total = 0
    for top, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(top, name), "rb") as f:
                total += len(f.read())
    return total


def mb(n: int) -> str:
    return f"{n / 2**20:.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="tree sizes in files, comma-separated")
    ap.add_argument("--matrix", type=int, default=128, help="pixels per side of every image")
    ap.add_argument("--repeat", type=int, default=5, help="start-up runs (median)")
    ap.add_argument("--keep", action="store_true", help="keep the trees")
    ap.add_argument("--no-reference", action="store_true", help="skip the pydicom loop")
    args = ap.parse_args(argv)
    py = sys.executable
    env = {"PYTHONPATH": str(REPO)}
    medview = [py, "-m", "medview"]

    compile_medview(py)
    print("medview compiled to .pyc first (python -m compileall medview, as installed); "
          "PYTHONDONTWRITEBYTECODE unset for every measured process")
    start = {}
    for label, extra in (("medview --version", ["--version"]),
                         ("medview index --help", ["index", "--help"]),
                         ("python -c pass", None)):
        cmd = [py, "-c", "pass"] if extra is None else medview + extra
        start[label] = statistics.median(run(cmd, env)[0] for _ in range(args.repeat))
    print(f"{os.cpu_count()} cores; load average {load()}")
    print_table(["start-up", "median s"], [(k, f"{v:.3f}") for k, v in start.items()])
    print()

    rows, ratios = [], []
    tmp = Path(tempfile.mkdtemp(prefix="medview-scale-"))
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            root = tmp / f"tree{n}"
            t0 = time.perf_counter()
            made = make_tree(root, n, args.matrix)
            size = warm(root)
            print(f"{n:,} files: {made['images']:,} images in {made['series']:,} series, "
                  f"{made['junk']} junk, {size / 2**30:.2f} GiB, made in "
                  f"{time.perf_counter() - t0:.1f} s")
            db = tmp / f"catalog{n}.sqlite"
            t_ref = c_ref = None
            if not args.no_reference:
                t_ref, rss, c_ref, _out = run([py, "-c", _PYDICOM_LOOP, str(root)], env)
                rows.append((f"{n:,}", "a. pydicom loop", f"{t_ref:.2f}", f"{c_ref:.2f}",
                             f"{n / t_ref:,.0f}", mb(rss), "1.00", "1.00"))
            t_idx, rss, c_idx, _out = run([*medview, "index", "--db", str(db), str(root)], env)
            rows.append((f"{n:,}", "b. medview index", f"{t_idx:.2f}", f"{c_idx:.2f}",
                         f"{n / t_idx:,.0f}", mb(rss), f"{t_ref / t_idx:.2f}" if t_ref else "-",
                         f"{c_ref / c_idx:.2f}" if c_ref else "-"))
            again = sorted(run([*medview, "index", "--db", str(db), str(root)], env)
                           for _ in range(max(1, args.repeat)))
            t_re, _rss, c_re, out = again[len(again) // 2]  # the median run
            if " 0 added, 0 updated" not in out or " 0 removed" not in out:
                raise RuntimeError(f"the re-index of the unchanged tree changed something: {out}")
            rss = max(r[1] for r in again)
            rows.append((f"{n:,}", "c. re-index", f"{t_re:.2f}", f"{c_re:.2f}",
                         f"{n / t_re:,.0f}", mb(rss), f"{t_ref / t_re:.2f}" if t_ref else "-",
                         f"{c_ref / c_re:.2f}" if c_ref else "-"))
            print(f"  measured at load average {load()}; re-index runs "
                  f"{', '.join(f'{r[0]:.3f}' for r in again)} s")
            ratios.append((n, t_ref / t_idx if t_ref else None, t_idx / t_re, t_idx, t_re,
                           c_ref / c_idx if c_ref else None, c_idx / c_re))
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        print()
        print_table(["files", "", "seconds", "CPU s", "files/s", "peak RSS MB", "× pydicom",
                     "× pydicom CPU"], rows)
        print()
        boot = start["medview index --help"]  # the interpreter and medview's imports
        for n, vs_ref, vs_first, t_idx, t_re, cpu_ref, cpu_first in ratios:
            ref = (f"{vs_ref:.1f}× the pydicom loop (CPU {cpu_ref:.1f}×; target ≥ 4×)"
                   if vs_ref else "")
            work = (t_idx - boot) / max(t_re - boot, 1e-3)
            print(f"{n:>7,} files: first import {ref}; re-index {vs_first:.1f}× faster than "
                  f"the first import (CPU {cpu_first:.1f}×; target ≥ 20×; {work:.0f}× without "
                  f"the {boot:.2f} s start-up both pay)")
        print(f"start-up: --version {start['medview --version']:.3f} s, index --help "
              f"{start['medview index --help']:.3f} s (target ≤ 0.15 s; bare python "
              f"{start['python -c pass']:.3f} s)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
