"""Fuzz medview and three references on the same seeded corpus of mutated DICOM folders.

Each folder holds 3–12 slices of one real series from shared/data (CT with duplicate
positions, sagittal MR, gantry-tilted CT, a CT with its SEG, RLE / JPEG / JPEG-LS / JPEG 2000
slices), some of them mutated (tests/fuzz/mutate.py). Every run is a forked child with a
wall-time limit and the address space limited to the parent's plus 2 GiB; the classes are
defined in tests/fuzz/harness.py. Tools: medview (``index``, ``series``, ``convert`` through
``medview.cli.main`` and ``medview.load``), dcm2niix (the binary), SimpleITK's
ImageSeriesReader (every series GDCM finds) and a pydicom loop (``dcmread`` +
``pixel_array`` per file).

    python benchmarks/fuzz.py --n 1000 --seed 1            # the large corpus, all tools
    python benchmarks/fuzz.py --seed 1 --only 17 --keep    # one folder, kept, described
    python benchmarks/fuzz.py --n 200 --tools medview --failures out.jsonl

It prints a table of classes per tool and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _preload() -> None:
    """Import what every child uses once, so that each fork starts warm."""
    import nibabel  # noqa: F401
    import pydicom  # noqa: F401
    import SimpleITK  # noqa: F401

    import medview.cli
    import medview.dicom.catalog.db
    import medview.dicom.pixels.read
    import medview.dicom.series.loading
    import medview.formats.volume_io  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    from fuzz.harness import TOOLS, describe_case, failures, run_corpus, summarize
    from fuzz.isolate import GIB
    from realparts import DATA

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="folders (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first folder index")
    ap.add_argument("--only", type=int, nargs="*", help="just these folder indices")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds per run (hang)")
    ap.add_argument("--mem-gib", type=float, default=2.0, help="memory limit per run")
    ap.add_argument("--parallel", type=int, default=2, help="children at a time (max 2)")
    ap.add_argument("--work", help="working folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep every folder and output")
    ap.add_argument("--failures", help="write every failure as JSON lines here")
    ap.add_argument("--quiet", action="store_true", help="no line per failing folder")
    args = ap.parse_args(argv)
    tools_ = tuple(t for t in args.tools.split(",") if t)
    unknown = set(tools_) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tools {sorted(unknown)}; choose from {TOOLS}")
    _preload()
    from fuzz.bases import prepare_bases

    indices = args.only if args.only else range(args.start, args.start + args.n)
    with tempfile.TemporaryDirectory(prefix="medview-fuzz-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        bases = prepare_bases(DATA, work / "bases")
        t0 = time.perf_counter()
        done = [0]

        if args.failures:  # written as folders finish, so an interrupted run keeps them
            open(args.failures, "w").close()

        def progress(res) -> None:
            done[0] += 1
            if args.failures:
                with open(args.failures, "a") as f:
                    for row in failures([res]):
                        f.write(json.dumps(row) + "\n")
            bad = {t: r.cls for t, r in res.tools.items() if r.cls != "clean" or r.lost}
            if args.only or (bad and not args.quiet):
                lost = {t: r.lost for t, r in res.tools.items() if r.lost}
                print(f"[{done[0]}] folder {res.case['index']}: {bad or ''} lost {lost}",
                      flush=True)
            if args.only:
                print(describe_case(res.case))
                for t, r in res.tools.items():
                    for op, (cls, detail) in r.runs.items():
                        print(f"  {t} {op}: {cls} {detail[:800]}")

        results = run_corpus(bases, DATA, work / "runs", seed=args.seed, indices=indices,
                             tools_=tools_, timeout_s=args.timeout,
                             mem_bytes=int(args.mem_gib * GIB),
                             parallel=max(1, min(2, args.parallel)), keep=args.keep,
                             on_folder=progress)
        seconds = time.perf_counter() - t0
        print_table(summarize(results, tools_), seconds, args)
        if args.keep:
            print(f"folders and outputs kept in {work / 'runs'}")
    return 0


def print_table(summary: dict, seconds: float, args) -> None:
    tools_ = list(summary)
    first = summary[tools_[0]]
    print(f"\nseed {args.seed}: {first['folders']} folders ({first['with_intact']} with intact "
          f"slices, {first['intact_slices']} intact slices), {seconds:.0f} s, timeout "
          f"{args.timeout:g} s, memory limit {args.mem_gib:g} GiB\n")
    rows = [("crash", "crash"), ("hang", "hang"), ("over 2 GiB", "over_2gib"),
            ("clean", "clean"), ("folders losing intact slices", "intact_lost_folders"),
            ("intact slices lost", "intact_lost_slices")]
    width = max(len(r[0]) for r in rows) + 2
    print("".ljust(width) + "".join(t.rjust(11) for t in tools_))
    for label, key in rows:
        print(label.ljust(width) + "".join(str(summary[t][key]).rjust(11) for t in tools_))


if __name__ == "__main__":
    sys.exit(main())
