"""``medview selftest``: open every subsystem without a screen and report, one line per check.

A support person runs it on an installed workstation (a .deb, the tarball, a Windows or macOS
installer, or a pip install) to see that the parts a package can lose are there and work:
the resources, every pixel decoder (each compressed transfer syntax, from the samples in
``resources/selftest``), the series loader and the catalog, the header scanner's process pool
(which a frozen application must support), a processing chain, NIfTI writing, a DICOM SEG
written and read back, the offload client's parts (HTTP client, token store, the blosc2 wire
format; no server is contacted) and the Qt stack (a real main window, offscreen).

Each check prints ``OK`` or ``FAIL`` with what it found; the command exits 1 when any failed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Check", "SelftestError", "run_selftest"]


class SelftestError(Exception):
    """A check found something wrong; the message says what."""


@dataclass
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name}: {self.detail} ({self.seconds:.2f} s)"


def _run(name: str, func: Callable[[], str], verbose: bool) -> Check:
    t0 = time.perf_counter()
    try:
        detail = func()
        ok = True
    except Exception as exc:  # a self-test reports every failure and goes on to the next check
        ok = False
        detail = f"{type(exc).__name__}: {exc}"
        if verbose:
            detail += "\n" + traceback.format_exc()
    return Check(name, ok, detail, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def _check_resources() -> str:
    from medview.resources import demo_study, resources_dir

    root = resources_dir()
    demo = sorted(demo_study().glob("*.dcm"))
    chains = sorted((root / "chains").glob("*.json"))
    manifest = root / "selftest" / "manifest.json"
    if not demo:
        raise SelftestError(f"no demo study in {demo_study()}")
    if not chains:
        raise SelftestError(f"no example chains in {root / 'chains'}")
    if not manifest.is_file():
        raise SelftestError(f"{manifest} is missing")
    return f"{root}: demo study of {len(demo)} files, {len(chains)} example chains"


def _samples() -> tuple[Path, list[dict]]:
    from medview.resources import resources_dir

    folder = resources_dir() / "selftest"
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder, manifest["samples"]


def _decode(path: Path):
    from medview.dicom.pixels.decoding import decode
    from medview.dicom.scan.scanner import scan_file

    header = scan_file(path)
    return header, decode(header)


def _decode_check(folder: Path, sample: dict) -> Callable[[], str]:
    def check() -> str:
        import numpy as np

        path = folder / sample["file"]
        header, pixels = _decode(path)
        if header.transfer_syntax_uid != sample["transfer_syntax"]:
            raise SelftestError(f"{path} has transfer syntax {header.transfer_syntax_uid}, "
                                f"the manifest says {sample['transfer_syntax']}")
        _, reference = _decode(folder / sample["reference"])
        if pixels.shape != reference.shape:
            raise SelftestError(f"{path}: decoded shape {pixels.shape}, reference "
                                f"{reference.shape}")
        error = float(np.abs(pixels.astype(np.float64) - reference).mean())
        bound = float(sample["max_mean_abs_error"])
        if error > bound:
            raise SelftestError(f"{path}: decoded pixels differ from {sample['reference']} by "
                                f"{error:.3g} on average (allowed {bound:g})")
        same = "identical to the reference" if error == 0 else f"mean error {error:.2f}"
        shape = "×".join(str(s) for s in pixels.shape[1:])
        return f"{sample['file']} → {shape} {pixels.dtype}, {same}"

    return check


def _check_scan_pool() -> str:
    """The header scanner's spawn process pool: a frozen app must start its workers."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from medview.dicom.scan.scanner import _scan_batch_packed
    from medview.resources import demo_study

    files = sorted(str(p) for p in demo_study().glob("*.dcm"))
    half = len(files) // 2
    with ProcessPoolExecutor(max_workers=2,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_scan_batch_packed, b) for b in (files[:half], files[half:])]
        results = [f.result(timeout=120) for f in futures]
    scanned = sum(len(packed) for packed, _ in results)
    errors = [e for _, errs in results for e in errs]
    if scanned != len(files) or errors:
        raise SelftestError(f"{scanned} of {len(files)} headers read in worker processes; "
                            f"errors: {errors[:3]}")
    return f"{scanned} headers read in 2 spawned worker processes"


class _State:
    """Values the later checks take from the earlier ones."""

    volume = None
    labels = None


def _check_catalog(tmp: Path) -> str:
    from medview.dicom.catalog.db import Catalog
    from medview.resources import demo_study

    n = len(list(demo_study().glob("*.dcm")))
    with Catalog(tmp / "catalog.sqlite") as cat:
        report = cat.index([demo_study()])
        series = cat.series()
    if report.added != n or report.errors:
        raise SelftestError(f"indexed {report.added} of {n} files; errors: {report.errors[:3]}")
    if len(series) != 1:
        raise SelftestError(f"the demo study should be one series, the catalog has {len(series)}")
    return f"{n} files indexed into a new catalog, 1 series"


def _check_load(state: _State) -> str:
    import medview
    from medview.resources import demo_study

    vol = medview.load(demo_study())
    n = len(list(demo_study().glob("*.dcm")))
    if vol.shape[0] != n:
        raise SelftestError(f"loaded {vol.shape[0]} slices of {n} files")
    state.volume = vol
    shape = "×".join(str(s) for s in reversed(vol.shape))
    return f"demo study → {shape} {vol.array.dtype}, spacing " + " × ".join(
        f"{s:.3g}" for s in vol.spacing) + " mm"


def _check_chain(state: _State) -> str:
    from medview.core.labelmap import LabelMap
    from medview.pipeline.chain import Chain
    from medview.pipeline.registry import all_steps
    from medview.pipeline.runner import run_chain
    from medview.resources import resources_dir

    if state.volume is None:
        raise SelftestError("no volume (the load check failed)")
    path = resources_dir() / "chains" / "mr_edge_map.json"
    chain = Chain.load(path)
    result = run_chain(chain, {"image": state.volume})
    edges = result.result
    if not isinstance(edges, LabelMap):
        raise SelftestError(f"{path.name} returned {type(edges).__name__}, not a label map")
    fraction = float((edges.array > 0).mean())
    if not 0.001 < fraction < 0.5:
        raise SelftestError(f"{path.name}: {fraction:.1%} of the voxels are edges")
    state.labels = edges
    return (f"{path.name} ({len(chain.steps)} steps of {len(all_steps())} registered): "
            f"{fraction:.1%} of the voxels are edges")


def _check_nifti(state: _State, tmp: Path) -> str:
    import numpy as np

    from medview.formats.volume_io import read_volume, write_volume

    if state.volume is None:
        raise SelftestError("no volume (the load check failed)")
    out = write_volume(state.volume, tmp / "demo.nii.gz")
    back = read_volume(out)
    if back.shape != state.volume.shape or not np.array_equal(back.array, state.volume.array):
        raise SelftestError(f"{out} read back differs from what was written")
    return f"{out.name} written and read back ({out.stat().st_size:,} bytes)"


def _check_seg(state: _State, tmp: Path, keep: Path | None) -> str:
    """The chain's label map as a DICOM SEG over the demo study (medview's exporter, which
    uses highdicom), read back with medview's SEG reader onto the same grid."""
    import numpy as np

    from medview.dicom.export.seg import write_seg
    from medview.dicom.series.seg import read_seg

    if state.labels is None or state.volume is None:
        raise SelftestError("no label map (the chain check failed)")
    folder = keep if keep is not None else tmp
    folder.mkdir(parents=True, exist_ok=True)
    out = write_seg(state.labels, folder / "selftest_seg.dcm", source=state.volume,
                    overwrite=True, series_description="medview selftest",
                    algorithm_name="medview selftest")
    back = read_seg(out, source=state.volume)
    written = state.labels.array > 0
    if back.shape != written.shape or not np.array_equal(back.array > 0, written):
        raise SelftestError(f"{out}: the segment read back differs from the label map written")
    return (f"{int(written.sum()):,} voxels over {written.shape[0]} slices written as "
            f"{out.name} ({out.stat().st_size:,} bytes) and read back identical")


def _check_offload_client(state: _State) -> str:
    """The offload client's parts, without a server: the HTTP client, the token store, and
    the demo volume through the wire format's blosc2 encoding and back."""
    import numpy as np

    from medview.remote.client import RemoteClient  # imports httpx
    from medview.remote.config import token_storage
    from medview.remote.wire import bundle_bytes, decode_bundle, encode_bundle

    if state.volume is None:
        raise SelftestError("no volume (the load check failed)")
    raw = state.volume.array.nbytes
    data = bundle_bytes(encode_bundle({"check": "selftest"}, {"image": state.volume},
                                      encoding="blosc2"))
    back = decode_bundle(data).values["image"]
    if not np.array_equal(back.array, state.volume.array) or back.spacing != state.volume.spacing:
        raise SelftestError("the volume sent through the blosc2 wire format came back different")
    return (f"{RemoteClient.__name__} ready; demo volume {raw / len(data):.1f}× smaller with "
            f"blosc2 and back identical; tokens: {token_storage()}")


def _check_gui(tmp: Path) -> str:
    # the self-test needs no screen: Qt's offscreen platform, chosen before Qt starts
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # Qt itself is imported only under medview.gui: here, only whether it is installed
    missing = [m for m in ("PySide6", "pyqtgraph") if importlib.util.find_spec(m) is None]
    if missing:
        raise SelftestError(f"the window's libraries are not installed ({', '.join(missing)}); "
                            "install medview[gui], or skip this check with --no-gui")
    from medview.gui.app import offscreen_check

    return offscreen_check(folder=tmp / "gui")


def _failing(message: str) -> Callable[[], str]:
    def check() -> str:
        raise SelftestError(message)

    return check


def _version() -> str:
    from medview import __version__

    return __version__


# ---------------------------------------------------------------------------------------------
def run_selftest(*, gui: bool = True, keep: str | os.PathLike | None = None,
                 verbose: bool = False, out=None) -> list[Check]:
    """Run every check, print one line per check to ``out`` (default stdout), return them.

    Parameters
    ----------
    gui : bool
        Also check the Qt stack (a main window created and drawn offscreen).
    keep : path, optional
        A folder to keep what the self-test wrote (the SEG), for inspection.
    verbose : bool
        Add the traceback to failed checks.
    """
    out = sys.stdout if out is None else out
    frozen = bool(getattr(sys, "frozen", False))
    print(f"medview {_version()} selftest: Python {platform.python_version()} on "
          f"{platform.system()} {platform.machine()}"
          f"{' (frozen application ' + sys.executable + ')' if frozen else ''}", file=out)
    checks: list[Check] = []

    def do(name: str, func: Callable[[], str]) -> None:
        check = _run(name, func, verbose)
        checks.append(check)
        print(check.line(), file=out, flush=True)

    state = _State()
    keep_dir = Path(keep) if keep is not None else None
    # the window's catalog may still be open at the end: Windows cannot delete open files
    with tempfile.TemporaryDirectory(prefix="medview-selftest-",
                                     ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        do("resources", _check_resources)
        try:
            folder, samples = _samples()
        except (OSError, ValueError, KeyError) as exc:
            do("decoders", _failing(f"the selftest samples cannot be read: {exc}"))
            samples = []
        for sample in samples:
            do(f"decode {sample['label']}", _decode_check(folder, sample))
        do("header scan process pool", _check_scan_pool)
        do("catalog", lambda: _check_catalog(tmp))
        do("load series", lambda: _check_load(state))
        do("processing chain", lambda: _check_chain(state))
        do("NIfTI export", lambda: _check_nifti(state, tmp))
        do("DICOM SEG", lambda: _check_seg(state, tmp, keep_dir))
        do("offload client", lambda: _check_offload_client(state))
        if gui:
            do("GUI (Qt offscreen)", lambda: _check_gui(tmp))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
          + (f"; FAILED: {', '.join(c.name for c in failed)}" if failed else ""), file=out)
    return checks
