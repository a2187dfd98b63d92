"""De-identification, side by side: medview against dicognito and Kitware's dicom-anonymizer.

    .venv/bin/python benchmarks/deid.py [--slices 200] [--size 512] [--repeat 3] [--dir DIR]
                                        [--keep]

1. Speed: instances per second to read, de-identify and write each file of a phantom CT series
   (``--slices`` × ``--size``²), median of ``--repeat`` runs: medview's engine
   (``medview.deid.engine``, the basic profile), medview's whole ``share`` (plus the DICOMDIR
   and the report), dicognito and dicom-anonymizer with their defaults.
2. Privacy: each one's score on the privacy test set of ``tests/deid/privacy_set.py`` (real
   series from ``../shared/data`` with identity planted in standard, private and nested
   attributes, descriptions, dates, UIDs, overlays and curves) — the share of required actions
   done right, the MIDI-B measure — and how many planted values are left in the bytes of the
   files each writes.

The two libraries are not medview dependencies (no extra promises a version range CI does not
test): ``pip install dicognito dicom-anonymizer`` into the environment you benchmark in; the
versions found are printed with the figures, and a missing one is reported, not fatal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, series_folder

sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "deid"))


def _medview_engine():
    from medview.deid.engine import Deidentifier
    from medview.deid.keys import ProjectKey
    from medview.deid.profile import Options

    engine = Deidentifier(ProjectKey("bench", b"k" * 32), Options())
    return lambda ds: engine.deidentify(ds)


def _dicognito():
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    return anonymizer.anonymize


def _dicom_anonymizer():
    from dicomanonymizer import anonymize_dataset

    return anonymize_dataset


TOOLS = {"medview": _medview_engine, "dicognito": _dicognito,
         "dicom-anonymizer": _dicom_anonymizer}


def _per_file(make, files, out: Path) -> tuple[float, float]:
    """(seconds in the tool's de-identification, seconds for read + de-identify + write)."""
    import pydicom

    fn = make()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    inside = 0.0
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        t1 = time.perf_counter()
        fn(ds)
        inside += time.perf_counter() - t1
        ds.save_as(out / f"{i:06d}.dcm")
    return inside, time.perf_counter() - t0


def _share(files, out: Path):
    from medview.deid.share import share

    def run():
        shutil.rmtree(out, ignore_errors=True)
        return share(files, project="bench", destination=out, audit=False).instances
    return run


def _privacy(make, files, out: Path):
    """(score, leftovers): the privacy-set score and planted values left in written bytes."""
    import pydicom
    from privacy_set import grep_files, score

    fn = make()
    out.mkdir(parents=True, exist_ok=True)
    pairs, written = [], []
    for i, f in enumerate(files):
        src, ds = pydicom.dcmread(f), pydicom.dcmread(f)
        fn(ds)
        pairs.append((src, ds))
        path = out / f"{i:02d}.dcm"
        ds.save_as(path)
        written.append(path)
    return score(pairs), grep_files(written)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slices", type=int, default=200)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    from realparts import DATA

    work = Path(tempfile.mkdtemp(prefix="medview-bench-deid-"))
    # the share keeps its project key in a config folder of its own, not the user's
    os.environ["MEDVIEW_CONFIG_DIR"] = str(work / "config")
    os.environ["MEDVIEW_DATA_DIR"] = str(work / "data")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    available = {}
    for name, make in TOOLS.items():
        try:
            make()
            available[name] = make
            if name != "medview":
                from importlib.metadata import version

                print(f"{name} {version(name)}")
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); pip install {name}")
    try:
        with series_folder(args.dir, slices=args.slices, size=args.size,
                           keep=args.keep) as folder:
            files = sorted(folder.glob("*.dcm"))
            for f in files:
                f.read_bytes()   # warm the page cache for everyone
            print(f"\n1. speed on {len(files)} instances ({args.size}², median of "
                  f"{args.repeat}; ratios: the other's time / medview's)")
            # round robin, so that the machine's load drifts alike for every tool
            runs: dict[str, list[tuple[float, float]]] = {n: [] for n in available}
            shares = []
            for _ in range(args.repeat):
                for name, make in available.items():
                    runs[name].append(_per_file(make, files, work / name))
                t0 = time.perf_counter()
                _share(files, work / "share")()
                shares.append(time.perf_counter() - t0)
            n = len(files)
            med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v))
                   for k, v in runs.items()}
            base = med.get("medview", (0.0, 0.0))
            print(f"  {'':18s} {'de-identify only':>22s} {'read+de-id+write':>22s}")
            for name, (inside, whole) in med.items():
                ratio = (f"   medview ×{inside / base[0]:.2f} / ×{whole / base[1]:.2f}"
                         if name != "medview" and base[0] else "")
                print(f"  {name:18s} {n / inside:13.0f} inst/s {n / whole:13.1f} inst/s"
                      f"{ratio}")
            print(f"  {'medview share':18s} {'':>22s} {n / statistics.median(shares):13.1f} "
                  "inst/s  (+ DICOMDIR, report, audit off)")
        from privacy_set import build

        pset = build(DATA, work / "privacy-set")
        print(f"\n2. privacy set: {len(pset)} instances with planted identity")
        for name, make in available.items():
            t0 = time.perf_counter()
            s, left = _privacy(make, pset, work / f"privacy-{name}")
            print(f"  {name:18s} score {100 * s.fraction:6.2f} % ({s.done}/{s.total} required "
                  f"actions), planted values left in the bytes: {len(left)} "
                  f"({time.perf_counter() - t0:.2f} s)")
            for failure in s.failures[:6]:
                print(f"      missed: {failure[:110]}")
            if len(s.failures) > 6:
                print(f"      … {len(s.failures) - 6} more")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
