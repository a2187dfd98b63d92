"""Loading a CT series: medview vs SimpleITK's series reader vs reading the files' bytes.

Makes a 512×512×300 uncompressed CT series with the phantom writer (or reuses ``--dir``), then,
with a warm cache and the median of ``--repeat`` runs each, times

a. reading every file's bytes (``Path.read_bytes``): the floor;
b. SimpleITK ``ImageSeriesReader`` (GDCM file names + Execute), default pixel type and int16:
   the reference;
c. ``medview.load(folder)`` on a folder that is not indexed;
d. ``medview.load(series_uid, catalog=cat)`` from a catalog that indexed the folder;

then measures the peak memory of b, c and d above a baseline, each in a fresh process, as a
multiple of the volume's size, and checks that b, c and d give the same voxels and geometry.
It prints figures and ratios and asserts nothing. Targets (the loading issue): indexed load
≥ 5× faster than SimpleITK and ≤ 2× the byte-read time; not-indexed load at least as fast as
SimpleITK; peak memory ≤ 1.3× the volume.

Usage::

    python benchmarks/load.py [--slices 300] [--size 512] [--repeat 5] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

from _common import (
    median_seconds,
    peak_rss_bytes,
    print_table,
    read_all_bytes,
    read_into_fresh_array,
    report_child,
    rss_bytes,
    run_child,
    series_folder,
)

TARGETS = {"indexed_vs_sitk": 5.0, "indexed_vs_bytes": 2.0, "folder_vs_sitk": 1.0,
           "peak_memory": 1.3}


# -- the loaders ---------------------------------------------------------------------------
def load_sitk(folder: Path, pixel_type=None):
    """SimpleITK's series reader as its documentation shows it: GDCM's file order, Execute."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    if pixel_type is not None:
        reader.SetOutputPixelType(pixel_type)
    return reader.Execute()


def load_medview(source, catalog=None):
    import medview

    return medview.load(source, catalog=catalog)


def series_uid_of(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


# -- peak memory, in a fresh process ---------------------------------------------------------
def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ≥ 4.0: ``5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_since_reset() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def child_memory(mode: str, folder: Path, db: str | None) -> None:
    """Load once after a warm-up on a tiny series; report the peak RSS above the baseline."""
    import numpy as np

    import medview
    from phantoms import write_ct_series

    with tempfile.TemporaryDirectory(prefix="medview-bench-warm-") as tmp:
        tiny = Path(tmp) / "tiny"
        write_ct_series(tiny, shape=(3, 32, 32), spacing_xyz=(11.2, 11.2, 5.0))
        catalog = None
        if mode == "simpleitk":
            import SimpleITK as sitk

            load_sitk(tiny, sitk.sitkInt16)
        elif mode == "medview":
            medview.load(tiny)
        else:
            from medview.dicom.catalog.db import Catalog

            warm = Catalog(Path(tmp) / "warm.sqlite")
            warm.index([tiny])
            medview.load(series_uid_of(next(tiny.glob("*.dcm"))), catalog=warm)
            del warm
            catalog = Catalog(db)
            uid = series_uid_of(next(folder.glob("*.dcm")))
        gc.collect()
        baseline = rss_bytes()
        exact = _reset_peak()
        before = peak_rss_bytes()
        t0 = time.perf_counter()
        if mode == "simpleitk":
            image = load_sitk(folder, sitk.sitkInt16)
            array = sitk.GetArrayViewFromImage(image)  # no copy; image stays alive
        elif mode == "medview":
            array = medview.load(folder).array
        else:
            array = medview.load(uid, catalog=catalog).array
        seconds = time.perf_counter() - t0
        peak = _peak_since_reset() if exact else peak_rss_bytes()
        report_child({
            "mode": mode, "seconds": seconds, "nbytes": int(np.asarray(array).nbytes),
            "baseline": baseline, "peak": peak, "after": rss_bytes(), "exact": exact,
            "peak_before_load": before,
            "children_peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        })


# -- the run -------------------------------------------------------------------------------
def compare(name: str, ref, vol) -> str:
    """'identical' or what differs between two Volumes."""
    import numpy as np

    problems = []
    if ref.shape != vol.shape:
        return f"{name}: shape {vol.shape} ≠ {ref.shape}"
    if not np.array_equal(ref.array, vol.array):
        diff = np.abs(ref.array.astype(np.float64) - vol.array.astype(np.float64))
        problems.append(f"{int((diff > 0).sum())} voxels differ (max {diff.max():g})")
    for what in ("spacing", "origin", "direction"):
        if not np.allclose(getattr(ref, what), getattr(vol, what), atol=1e-4):
            problems.append(f"{what} {np.round(getattr(vol, what), 4).tolist()} ≠ "
                            f"{np.round(getattr(ref, what), 4).tolist()}")
    dtype = f"{vol.array.dtype}"
    return f"{name}: " + ("identical" if not problems else "; ".join(problems)) + f" ({dtype})"


def _try(label: str, fn):
    """Run ``fn``; on failure print why (the API under test may not exist yet) and go on."""
    try:
        return fn()
    except Exception as exc:  # a benchmark reports the failure and carries on
        print(f"\n{label}: FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc(limit=3, file=sys.stdout)
        return None


def run(args: argparse.Namespace) -> None:
    import SimpleITK as sitk

    from medview.core.volume import Volume

    work = Path(tempfile.mkdtemp(prefix="medview-bench-db-"))
    # medview.load(folder) must not touch the user's catalog
    os.environ.setdefault("MEDVIEW_DB", str(work / "default-catalog.sqlite"))
    with series_folder(args.dir, slices=args.slices, size=args.size, keep=args.keep) as folder:
        paths = sorted(folder.glob("*.dcm"))
        file_bytes = read_all_bytes(paths)  # warms the page cache
        print(f"{len(paths)} files, {file_bytes / 2**20:.0f} MiB; median of {args.repeat} "
              "warm runs each\n")
        rows: dict[str, tuple[float, str]] = {}
        vols: dict[str, Volume] = {}

        t, _ = median_seconds(lambda: read_all_bytes(paths), args.repeat)
        rows["a. read bytes (floor)"] = (t, "")
        # the same bytes, but into one new array as big as the volume: what any loader that
        # returns a fresh volume pays at least (page faults on new memory + the copy)
        t, _ = median_seconds(lambda: read_into_fresh_array(paths), args.repeat)
        rows["a2. read bytes into a new array"] = (t, "")
        for label, ptype in (("b. SimpleITK, default type", None),
                             ("b. SimpleITK, sitkInt16", sitk.sitkInt16)):
            t, img = median_seconds(lambda p=ptype: load_sitk(folder, p), args.repeat)
            rows[label] = (t, img.GetPixelIDTypeAsString())
            vols[label] = Volume.from_sitk(img)
            del img

        def folder_load():
            return median_seconds(lambda: load_medview(folder), args.repeat)

        if (res := _try("c. medview.load(folder)", folder_load)) is not None:
            rows["c. medview.load(folder)"] = (res[0], str(res[1].array.dtype))
            vols["c. medview.load(folder)"] = res[1]

        db = work / "catalog.sqlite"
        uid = series_uid_of(paths[0])

        def indexed_load():
            from medview.dicom.catalog.db import Catalog

            cat = Catalog(db)
            t0 = time.perf_counter()
            cat.index([folder])
            print(f"indexing {len(paths)} files took {time.perf_counter() - t0:.2f} s "
                  "(once; benchmarks/index.py measures indexing)")
            return median_seconds(lambda: load_medview(uid, catalog=cat), args.repeat)

        label_d = "d. medview.load(uid, catalog)"
        if (res := _try(label_d, indexed_load)) is not None:
            rows[label_d] = (res[0], str(res[1].array.dtype))
            vols[label_d] = res[1]

        memory = {}
        modes = [("b. SimpleITK, sitkInt16", "simpleitk"), ("c. medview.load(folder)", "medview")]
        if label_d in rows:
            modes.append((label_d, "medview-indexed"))
        for label, mode in modes:
            child_args = ["--child", mode, "--dir", str(folder), "--db", str(db)]
            got = _try(f"peak memory of {label}",
                       lambda a=child_args: run_child(Path(__file__), a))
            if got is not None:
                memory[label] = got

        print()
        sitk_t = rows["b. SimpleITK, sitkInt16"][0]
        bytes_t = rows["a. read bytes (floor)"][0]
        table = []
        for label, (t, dtype) in rows.items():
            mem = memory.get(label)
            peak = (mem["peak"] - mem["baseline"]) / mem["nbytes"] if mem else None
            table.append((label, t, sitk_t / t, t / bytes_t, peak, dtype))
        print_table(("loader", "seconds", "speed-up vs SimpleITK", "× byte-read time",
                     "peak memory × volume", "dtype"), table)
        for label, mem in memory.items():
            note = "" if mem["exact"] else " (ru_maxrss: includes earlier peaks)"
            if mem["children_peak"]:
                note += f"; its worker processes peaked at {mem['children_peak'] / 2**20:.0f} MiB"
            print(f"  {label}: baseline {mem['baseline'] / 2**20:.0f} MiB, peak +"
                  f"{(mem['peak'] - mem['baseline']) / 2**20:.0f} MiB, kept +"
                  f"{(mem['after'] - mem['baseline']) / 2**20:.0f} MiB, volume "
                  f"{mem['nbytes'] / 2**20:.0f} MiB{note}")

        print("\nsame voxels and geometry as SimpleITK (sitkInt16):")
        ref = vols["b. SimpleITK, sitkInt16"]
        for label, vol in vols.items():
            if label != "b. SimpleITK, sitkInt16":
                print("  " + compare(label, ref, vol))

        print("\ntargets:")
        _target("indexed load ≥ 5× faster than SimpleITK", rows.get(label_d),
                lambda t: sitk_t / t >= TARGETS["indexed_vs_sitk"], lambda t: sitk_t / t, "×")
        _target("indexed load ≤ 2× the byte-read time", rows.get(label_d),
                lambda t: t / bytes_t <= TARGETS["indexed_vs_bytes"], lambda t: t / bytes_t, "×")
        fresh_t = rows["a2. read bytes into a new array"][0]
        print(f"  (for reference: indexed load = {rows[label_d][0] / fresh_t:.2f}× reading the "
              "bytes into a new array)" if label_d in rows else "")
        _target("not-indexed load at least as fast as SimpleITK",
                rows.get("c. medview.load(folder)"),
                lambda t: t <= sitk_t, lambda t: sitk_t / t, "× SimpleITK's speed")
        for label in ("c. medview.load(folder)", label_d):
            mem = memory.get(label)
            ratio = (mem["peak"] - mem["baseline"]) / mem["nbytes"] if mem else None
            status = "not measured" if ratio is None else (
                "met" if ratio <= TARGETS["peak_memory"] else "MISSED")
            shown = "" if ratio is None else f" ({ratio:.2f}×)"
            print(f"  peak memory of {label[3:]} ≤ 1.3× volume: {status}{shown}")
    if args.keep:
        print(f"kept {work} (catalogs)")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _target(what: str, row, ok, value, unit: str) -> None:
    if row is None:
        print(f"  {what}: not measured")
        return
    print(f"  {what}: {'met' if ok(row[0]) else 'MISSED'} ({value(row[0]):.2f}{unit})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, help="slices (default 300)")
    parser.add_argument("--size", type=int, default=512, help="rows = columns (default 512)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs each (default 5)")
    parser.add_argument("--dir", help="use this series folder (written there if empty)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_memory(args.child, Path(args.dir), args.db)
    else:
        run(args)


if __name__ == "__main__":
    main()
