"""Helpers shared by the benchmark scripts: timing, test series, memory in a child, tables.

Benchmarks run from the repository root (``python benchmarks/NAME.py``); they print figures
and ratios and assert nothing. These machines are noisy: compare ratios measured in one run.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere: import this checkout's medview
    sys.path.insert(0, str(REPO))


def median_seconds(fn: Callable[[], Any], repeat: int, *, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs.

    Returns the median in seconds and the last result. Each result is dropped before the next
    run so that two results never coexist in memory.
    """
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(max(1, repeat)):
        del result
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def read_all_bytes(paths: Sequence[Path]) -> int:
    """Read every file whole (``Path.read_bytes``); the floor any loader has to pay."""
    return sum(len(p.read_bytes()) for p in paths)


def read_into_fresh_array(paths: Sequence[Path]):
    """Read every file whole into one newly allocated byte array (no decoding)."""
    import numpy as np

    sizes = [p.stat().st_size for p in paths]
    out = np.empty(sum(sizes), np.uint8)
    pos = 0
    for p, n in zip(paths, sizes, strict=True):
        with open(p, "rb", buffering=0) as f:
            f.readinto(memoryview(out[pos:pos + n]))
        pos += n
    return out


@contextmanager
def series_folder(directory: str | None, *, slices: int, size: int, keep: bool):
    """A folder holding a phantom CT series of ``slices`` × ``size``² (written when needed).

    ``directory`` is reused when it already holds ``.dcm`` files, written into otherwise; when
    it is None a temporary folder is used and removed afterwards unless ``keep``.
    """
    from phantoms import write_ct_series

    tmp = None
    if directory is None:
        tmp = Path(tempfile.mkdtemp(prefix="medview-bench-"))
        folder = tmp / "ct"
    else:
        folder = Path(directory)
    try:
        existing = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        if existing:
            print(f"reusing {len(existing)} files in {folder}")
        else:
            t0 = time.perf_counter()
            spacing = 0.7 * 512 / size  # the same field of view at any matrix size
            write_ct_series(folder, shape=(slices, size, size),
                            spacing_xyz=(spacing, spacing, 1.0))
            print(f"wrote a {slices}×{size}×{size} phantom CT series to {folder} in "
                  f"{time.perf_counter() - t0:.1f} s")
        yield folder
    finally:
        if tmp is not None:
            if keep:
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


# -- memory -------------------------------------------------------------------------------
def rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss``; KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def report_child(result: dict) -> None:
    """Print a child's result as the one JSON line :func:`run_child` looks for."""
    print("RESULT " + json.dumps(result), flush=True)


def run_child(script: Path, args: Sequence[str], *, env: dict | None = None) -> dict:
    """Run ``python script args`` in a fresh process and return the dict it reported.

    Raises
    ------
    RuntimeError
        With the child's stderr when it failed or reported nothing.
    """
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, cwd=REPO, check=False)
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"child {' '.join(args)} failed (exit {run.returncode}):\n"
                       f"{run.stderr.strip()[-2000:]}")


# -- output -------------------------------------------------------------------------------
def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a plain-text table: first column left-aligned, the others right."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 0.1 else (
            f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}")
    return str(value)
