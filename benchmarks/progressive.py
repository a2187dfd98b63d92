"""Never blank: time to the first slice and to the full volume, vs SimpleITK's full read.

Makes a 512×512×300 CT phantom series (or reuses ``--dir``), indexes it into a temporary
catalog, then with a warm page cache and the median of ``--repeat`` runs each, times

a. SimpleITK ``ImageSeriesReader`` (GDCM file names + Execute, int16): the reference, which
   shows nothing until the whole series is read;
b. ``medview.load(uid, catalog=cat)``: medview's full load;
c. progressive, headless (:mod:`medview.dicom.series.progressive`): planning + the middle slice
   (``read_first``), and planning + every slice (``fill``), with two reading threads and
   with one (what the window uses);
d. the real main window (offscreen): from ``open_series`` to the middle slice drawn
   (``first_image_shown``) and to the complete volume (``series_opened``), and the longest
   stall of a 10 ms timer meanwhile, in the single and the 2×2 layout; then reopening it
   from the volume cache.

It prints figures and ratios and asserts nothing. Targets (issue 4, "never frozen, never
blank"): first image within 0.5 s of opening a 300-slice series; the event loop never stalls
100 ms or more.

Usage::

    python benchmarks/progressive.py [--slices 300] [--size 512] [--repeat 5] [--dir DIR]
    python benchmarks/progressive.py --slices 2000 --repeat 1 --no-gui   # issue 18's size

It also loads the series in a fresh process and prints its peak RSS over the volume's size
(issue 18: ≤ 1.3× for a 2,000-slice CT).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import median_seconds, print_table, series_folder

TARGET_FIRST_S = 0.5
TARGET_STALL_MS = 100.0


def headless(folder: Path, db: Path, repeat: int) -> list[list]:
    import SimpleITK as sitk

    import medview
    from medview.dicom.catalog.db import Catalog
    from medview.dicom.series.progressive import open_progressive

    cat = Catalog(db)
    cat.index([folder])
    (record,) = cat.series()
    uid = record.uid

    def sitk_read():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        reader.SetOutputPixelType(sitk.sitkInt16)
        return reader.Execute()

    def first_only():
        load = open_progressive(uid, catalog=cat)
        load.read_first()
        return load

    def everything(threads):
        def run():
            load = open_progressive(uid, catalog=cat)
            load.read_first()
            for _ in load.fill(threads=threads):
                pass
            return load.result()
        return run

    t_sitk, _ = median_seconds(sitk_read, repeat)
    t_load, want = median_seconds(lambda: medview.load(uid, catalog=cat), repeat)
    t_first, _ = median_seconds(first_only, repeat)
    t_full2, got2 = median_seconds(everything(2), repeat)
    t_full1, got1 = median_seconds(everything(1), repeat)
    import numpy as np

    same = np.array_equal(got2.array, want.array) and np.array_equal(got1.array, want.array)
    cat.close()
    rows = [
        ["a. SimpleITK full read", "—", t_sitk, 1.0],
        ["b. medview.load (catalog)", "—", t_load, t_sitk / t_load],
        ["c. progressive, 2 threads", t_first, t_full2, t_sitk / t_full2],
        ["c. progressive, 1 thread", t_first, t_full1, t_sitk / t_full1],
    ]
    print(f"progressive result identical to medview.load: {same}")
    return rows


def gui(folder: Path, db: Path, repeat: int, layouts=("single", "2x2")) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from medview.gui.app import create_app
    from medview.gui.main_window import MainWindow

    app = create_app()
    win = MainWindow(catalog_path=db)
    win.resize(1200, 800)
    win.show()
    loop = QEventLoop()

    def wait(signal):
        fired = []
        signal.connect(lambda *a: (fired.append(a), loop.quit()))
        while not fired:
            loop.exec()

    win.import_folder(folder)
    wait(win.import_finished)
    uid = win.browser.series_uids()[0]
    for _ in range(20):
        app.processEvents()

    stall = {"longest": 0.0}
    clock = QElapsedTimer()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)

    def tick():
        stall["longest"] = max(stall["longest"], clock.nsecsElapsed() / 1e6)
        clock.restart()

    timer.timeout.connect(tick)
    firsts, fulls = [], []
    stalls: dict[str, list[float]] = {layout: [] for layout in layouts}
    marks = {}
    win.first_image_shown.connect(lambda v: marks.setdefault("first", time.perf_counter()))
    for layout in [layout for layout in layouts for _ in range(repeat)]:
        win.view_grid.set_layout(layout)
        win.volume_cache.clear()
        marks.clear()
        stall["longest"] = 0.0
        clock.start()
        timer.start()
        t0 = time.perf_counter()
        win.open_series(uid)
        wait(win.series_opened)
        t1 = time.perf_counter()
        timer.stop()
        firsts.append(marks["first"] - t0)
        fulls.append(t1 - t0)
        stalls[layout].append(max(stall["longest"], clock.nsecsElapsed() / 1e6))
    t0 = time.perf_counter()
    assert win.open_series(uid) is None  # from the cache, shown before it returns
    cached = time.perf_counter() - t0
    win.close()
    return {"first": sorted(firsts)[len(firsts) // 2], "full": sorted(fulls)[len(fulls) // 2],
            "stalls": stalls, "cached": cached}


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec (this benchmark process
# holds several volumes by then)
_MEMORY_CHILD = """
import json, sys
from medview.dicom.catalog.db import Catalog
import medview

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

cat = Catalog(sys.argv[2])
cat.index([sys.argv[1]])
(s,) = cat.series()
before = hwm()
vol = medview.load(s.series_uid, catalog=cat)
peak = hwm()
print(json.dumps({"nbytes": vol.array.nbytes, "before": before, "peak": peak}))
"""


def memory(folder: Path, db: Path) -> dict:
    """Peak RSS of a fresh process loading the series from the catalog, over the volume's
    size (target ≤ 1.3×: one array, nothing held twice)."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(folder), str(db)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--no-gui", action="store_true", help="skip the main-window figures")
    args = parser.parse_args(argv)
    with series_folder(args.dir, slices=args.slices, size=args.size, keep=False) as folder, \
            tempfile.TemporaryDirectory(prefix="medview-bench-prog-") as tmp:
        folder = Path(folder)
        print(f"series: {folder} ({args.slices} × {args.size}²), median of {args.repeat}")
        rows = headless(folder, Path(tmp) / "headless.sqlite", args.repeat)
        print_table(["loader", "first slice (s)", "full volume (s)", "speed-up vs SimpleITK"],
                    rows)
        first_vs_sitk = rows[0][2] / rows[2][1]
        print(f"first slice (headless) {first_vs_sitk:.0f}× sooner than SimpleITK's volume")
        m = memory(folder, Path(tmp) / "memory.sqlite")
        grown = m["peak"] - m["before"]
        print(f"memory: volume {m['nbytes'] / 2**20:,.0f} MiB; the load raised peak RSS by "
              f"{grown / 2**20:,.0f} MiB ({grown / m['nbytes']:.2f}× the volume; "
              f"{m['peak'] / m['nbytes']:.2f}× counting the interpreter and libraries)")
        if args.no_gui:
            return 0
        g = gui(folder, Path(tmp) / "gui.sqlite", args.repeat)
        print("\nmain window (offscreen), open_series →")
        print_table(["what", "seconds"], [
            ["first image drawn", g["first"]],
            ["complete volume", g["full"]],
            ["reopen from the cache", g["cached"]],
        ])
        for layout, values in g["stalls"].items():
            print(f"longest event-loop stall per load, {layout} layout (ms): "
                  + ", ".join(f"{s:.0f}" for s in values))
        print("\ntargets")
        print(f"  first image ≤ {TARGET_FIRST_S} s: "
              f"{'met' if g['first'] <= TARGET_FIRST_S else 'MISSED'} ({g['first']:.3f} s)")
        every = [s for values in g["stalls"].values() for s in values]
        worst = max(every)
        print(f"  stall < {TARGET_STALL_MS:.0f} ms: "
              f"{'met' if worst < TARGET_STALL_MS else 'MISSED'} (worst {worst:.0f} ms, "
              f"median {sorted(every)[len(every) // 2]:.0f} ms; a busy machine adds its own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
