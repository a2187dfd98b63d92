"""A 2,000-slice 512² CT in the real window: time to the first image painted, and memory.

Writes (once, into ``--dir``, default a folder in /tmp) a CT series of ``--slices`` files made
from the real 512² slices of ``kits_dupe_positions`` (cycled, each with its own position,
instance number and UIDs; 1 GB of int16 at 2,000 slices), indexes it into a temporary
catalog, then in a fresh process per run (so the peak RSS belongs to this open alone):

a. starts the real main window offscreen, opens the series with ``open_series`` (what a
   double-click does) and measures until ``first_image_shown`` (emitted after the view has
   repainted with the middle slice) and until ``series_opened`` (every slice read);
b. records the process's peak RSS (VmHWM) before the open and after it, against the size of
   the volume: target ≤ 1.3× its size (one array, nothing held twice);
c. as the reference, SimpleITK's ``ImageSeriesReader`` (int16) in its own process: nothing
   to show until the whole series is read, and its peak RSS.

Prints a table and the targets (first image ≤ 0.5 s, peak ≤ 1.3× the volume). Asserts
nothing: the machines are noisy; compare within one run.

Usage::

    python benchmarks/big_series.py [--slices 2000] [--repeat 3] [--dir /tmp/medview-ct2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, print_table

DATA = Path(os.environ.get("MEDVIEW_TEST_DATA", "/work/shared/data"))
TARGET_FIRST_S = 0.5
TARGET_MEMORY = 1.3


def write_real_series(folder: Path, slices: int) -> None:
    """``slices`` files cycling the real kits CT slices, spaced 0.8 mm, one series."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    sources = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))
    if not sources:
        raise SystemExit(f"needs the real CT of {DATA / 'kits_dupe_positions'} (SOURCES.md)")
    real = [pydicom.dcmread(p) for p in sources]
    folder.mkdir(parents=True, exist_ok=True)
    root = "1.2.826.0.1.3680043.8.498.1818"
    t0 = time.perf_counter()
    for i in range(slices):
        ds = real[i % len(real)]
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.StudyInstanceUID = f"{root}.1"
        ds.SeriesInstanceUID = f"{root}.2"
        ds.FrameOfReferenceUID = f"{root}.3"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}.4.{i + 1}"
        ds.SeriesDescription = f"{slices} real CT slices (kits, cycled)"
        ds.SeriesNumber = 18
        ds.InstanceNumber = i + 1
        x, y = ds.ImagePositionPatient[:2]
        ds.ImagePositionPatient = [x, y, -0.8 * i]
        ds.SliceLocation = -0.8 * i
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.save_as(folder / f"CT{i:05d}.dcm", enforce_file_format=True)
    print(f"wrote {slices} files from {len(real)} real slices to {folder} in "
          f"{time.perf_counter() - t0:.1f} s")


_WINDOW_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

from PySide6.QtCore import QEventLoop
from medview.gui.app import create_app
from medview.gui.main_window import MainWindow

app = create_app()
win = MainWindow(catalog_path=sys.argv[1])
win.resize(1200, 800)
win.show()
loop = QEventLoop()
marks = {}
win.first_image_shown.connect(lambda v: (marks.setdefault("first", time.perf_counter())))
win.series_opened.connect(lambda v: (marks.setdefault("full", time.perf_counter()),
                                     loop.quit()))
for _ in range(50):
    app.processEvents()
uid = sys.argv[2]
before = hwm()
t0 = time.perf_counter()
win.open_series(uid)
loop.exec()
volume = win.state.volume
peak = hwm()
print(json.dumps({"first": marks["first"] - t0, "full": marks["full"] - t0,
                  "nbytes": volume.array.nbytes, "dtype": str(volume.array.dtype),
                  "shape": volume.shape, "before": before, "peak": peak}))
win.close()
"""

_SITK_CHILD = r"""
import json, sys, time
import SimpleITK as sitk

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

before = hwm()
t0 = time.perf_counter()
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(sys.argv[1]))
reader.SetOutputPixelType(sitk.sitkInt16)
image = reader.Execute()
seconds = time.perf_counter() - t0
n = image.GetNumberOfPixels() * 2
print(json.dumps({"full": seconds, "nbytes": n, "before": before, "peak": hwm()}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, cwd=REPO)
    if out.returncode:
        raise RuntimeError(f"child failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="series folder (written when empty)")
    ap.add_argument("--no-reference", action="store_true", help="skip SimpleITK")
    args = ap.parse_args(argv)
    folder = Path(args.dir or Path(tempfile.gettempdir()) / f"medview-ct{args.slices}")
    if len(list(folder.glob("*.dcm"))) != args.slices:
        write_real_series(folder, args.slices)
    with tempfile.TemporaryDirectory(prefix="medview-big-") as tmp:
        from medview.dicom.catalog.db import Catalog

        db = Path(tmp) / "catalog.sqlite"
        with Catalog(db) as cat:
            report = cat.index([folder])
            (series,) = cat.series()
        print(f"{os.cpu_count()} cores; {series.instances} slices indexed in "
              f"{report.seconds:.1f} s")
        runs = [child(_WINDOW_CHILD, str(db), series.uid) for _ in range(args.repeat)]
    first = statistics.median(r["first"] for r in runs)
    full = statistics.median(r["full"] for r in runs)
    r = runs[0]
    nbytes = r["nbytes"]
    grown = statistics.median(x["peak"] - x["before"] for x in runs)
    peak = statistics.median(x["peak"] for x in runs)
    rows = [["medview window: first image painted", f"{first:.3f}", "", ""],
            ["medview window: every slice", f"{full:.3f}", f"{grown / nbytes:.2f}",
             f"{peak / nbytes:.2f}"]]
    if not args.no_reference:
        ref = child(_SITK_CHILD, str(folder))
        rows.append(["SimpleITK ImageSeriesReader (int16)", f"{ref['full']:.3f}",
                     f"{(ref['peak'] - ref['before']) / ref['nbytes']:.2f}",
                     f"{ref['peak'] / ref['nbytes']:.2f}"])
    print(f"volume {'×'.join(map(str, r['shape']))} {r['dtype']}, {nbytes / 2**20:,.0f} MiB; "
          f"median of {args.repeat} fresh processes\n")
    print_table(["", "seconds", "peak RSS added ×vol", "peak RSS ×vol"], rows)
    if not args.no_reference:
        print(f"\nfirst image {ref['full'] / first:.0f}× sooner than SimpleITK's volume; "
              f"whole volume {ref['full'] / full:.2f}× SimpleITK's speed")
    print("\ntargets")
    print(f"  first image ≤ {TARGET_FIRST_S} s: "
          f"{'met' if first <= TARGET_FIRST_S else 'MISSED'} ({first:.3f} s)")
    print(f"  peak RSS added by the open ≤ {TARGET_MEMORY}× the volume: "
          f"{'met' if grown / nbytes <= TARGET_MEMORY else 'MISSED'} ({grown / nbytes:.2f}×; "
          f"the whole process incl. Qt and libraries {peak / nbytes:.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
