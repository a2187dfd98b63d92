"""Every processing step against the fastest reference here, side by side in one run.

    .venv/bin/python benchmarks/steps.py [--slices 300] [--size 512] [--only PREFIX] [--repeat 3]
    .venv/bin/python benchmarks/steps.py --size 2000x512 --memory-only   # issue 18's CT

The volume is the synthetic CT phantom as float32 (512×512×300 by default). For each case in
``benchmarks/step_cases/*.py`` it prints medview's time (median of --repeat runs through the
chain runner), the reference's time, their ratio (target ≤ 1.2) and medview's peak memory above
the input as a multiple of the volume (target ≤ 3 copies), measured in a child process.
``--memory-only`` prints just that, beside each step's declared factor
(``register(..., memory=...)``), and the runner's refusal for a step that would not fit in the
memory available.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.step_cases import Case  # noqa: E402


def phantom(slices: int, size: int):
    from medview.core.volume import Volume
    from phantoms import ct_phantom_volume

    # a big phantom takes minutes to make: made once, kept in the temp folder for the
    # child processes (one per step) to load
    cache = Path(tempfile.gettempdir()) / f"medview-phantom-{slices}x{size}.npy"
    if slices >= 1000 and cache.exists():
        arr = np.load(cache)
    else:
        arr = ct_phantom_volume((slices, size, size),
                                (0.7 * 512 / size, 0.7 * 512 / size, 1.0)).astype(np.float32)
        if slices >= 1000:
            np.save(cache.with_suffix(".tmp.npy"), arr)
            os.replace(cache.with_suffix(".tmp.npy"), cache)
    return Volume(arr, (0.7 * 512 / size, 0.7 * 512 / size, 1.0),
                  metadata={"Modality": "CT"})


def all_cases(only: str | None) -> list[Case]:
    import benchmarks.step_cases as pkg

    cases = []
    for mod in pkgutil.iter_modules(pkg.__path__):
        cases += importlib.import_module(f"benchmarks.step_cases.{mod.name}").CASES
    prefixes = tuple(only.split(",")) if only else ()
    return [c for c in cases if not prefixes or c.step.startswith(prefixes)]


def make_inputs(case: Case, vol) -> dict:
    """The case's inputs: ``image`` and its extra inputs (a moving volume, a label map)."""
    return {"image": vol, **{name: make(vol) for name, make in case.extra_inputs.items()}}


def case_params(case: Case, vol) -> dict:
    """The step's params: the case's own and those its ``setup`` makes from the volume."""
    return {**case.params, **(case.setup(vol) if case.setup else {})}


def run_medview(case: Case, vol, inputs: dict | None = None, params: dict | None = None):
    from medview.core.labelmap import LabelMap
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain

    inputs = make_inputs(case, vol) if inputs is None else inputs
    params = case_params(case, vol) if params is None else params
    kinds = {"image": "volume"}
    step_inputs = {}
    for name in case.extra_inputs:
        kinds[name] = "labelmap" if isinstance(inputs[name], LabelMap) else "volume"
        step_inputs[name] = name
    raw = {"step": case.step, "params": params}
    if step_inputs:
        raw["inputs"] = step_inputs
    chain = Chain.from_dict({"inputs": kinds, "steps": [raw]})
    return run_chain(chain, inputs).result


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def child_peak(step: str, slices: int, size: int, timeout: float | None = None) -> dict:
    """Peak RSS above the loaded inputs, in volumes, for one case, in a fresh process; or the
    runner's refusal (``{"refused": message}``) when the step would not fit."""
    code = f"""
import sys, json
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.steps import phantom, all_cases, case_params, make_inputs, run_medview
from medview.pipeline.memory import NotEnoughMemory
vol = phantom({slices}, {size})
case = [c for c in all_cases({step!r}) if c.step == {step!r}][0]
inputs = make_inputs(case, vol)  # loaded before the count starts, as the image is
params = case_params(case, vol)  # and the case's setup (a model trained on the volume)
def status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
# ru_maxrss is inherited across exec from the parent's high-water mark: reset the kernel's
# own peak (VmHWM) instead and read it back
open('/proc/self/clear_refs', 'w').write('5')
base = status('VmRSS')
try:
    run_medview(case, vol, inputs, params)
except NotEnoughMemory as exc:
    print(json.dumps({{"refused": str(exc)}}))
    raise SystemExit(0)
peak = status('VmHWM')
print(json.dumps({{"peak": (peak - base) / vol.array.nbytes}}))
"""
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _size(text: str) -> tuple[int | None, int]:
    """``512`` (in-plane) or ``2000x512`` (slices × in-plane)."""
    if "x" in text:
        slices, size = text.lower().split("x")
        return int(slices), int(size)
    return None, int(text)


def memory_table(args) -> None:
    """Peak memory of every step in a child process, against its declared factor and the
    3-copy target; refusals are printed with their message."""
    from medview.pipeline.registry import get_step

    nbytes = args.slices * args.size * args.size * 4
    print(f"volume {args.slices}×{args.size}×{args.size} float32, {nbytes / 2**20:.0f} MiB; "
          f"peak memory above the input, in volumes, each step in its own process\n")
    print(f"{'step':30} {'declared':>8} {'measured':>8} {'≤ 3?':>5}  note")
    for case in all_cases(args.only):
        declared = get_step(case.step).memory
        got = child_peak(case.step, args.slices, args.size, timeout=args.timeout)
        shown = "-" if declared is None else f"{declared:g}"
        if "peak" in got:
            ok = "yes" if got["peak"] <= 3.0 else "NO"
            over = " (above the declared factor)" if declared is not None and \
                got["peak"] > declared * 1.05 + 0.05 else ""
            print(f"{case.step:30} {shown:>8} {got['peak']:8.2f} {ok:>5}{over}", flush=True)
        elif "refused" in got:
            print(f"{case.step:30} {shown:>8} {'-':>8} {'ref.':>5}  {got['refused']}",
                  flush=True)
        else:
            print(f"{case.step:30} {shown:>8} {'-':>8} {'?':>5}  {got['error']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", default="512",
                    help="in-plane size (512) or slices×size (2000x512: issue 18's CT)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="only steps whose id starts with this (comma-separated)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true",
                    help="only the memory table (declared factor, measured peak, refusals)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per step (memory)")
    args = ap.parse_args()
    slices, args.size = _size(args.size)
    args.slices = slices or args.slices
    if args.memory_only:
        memory_table(args)
        return
    vol = phantom(args.slices, args.size)
    print(f"volume {vol.shape} float32, {vol.array.nbytes / 2**20:.0f} MiB\n")
    print(f"{'step':28} {'medview s':>10} {'reference':40} {'ref s':>8} {'ratio':>6} "
          f"{'peak×vol':>8}")
    for case in all_cases(args.only):
        try:
            run_medview(case, vol)  # warm-up (imports, thread pools)
            t_mv = timed(lambda case=case: run_medview(case, vol), args.repeat)
            t_ref = timed(lambda case=case: case.reference(vol), args.repeat)
        except Exception as exc:  # a broken case must not hide the others
            print(f"{case.step:28} FAILED: {type(exc).__name__}: {exc}")
            continue
        got = {} if args.no_memory else child_peak(case.step, args.slices, args.size)
        peak = got.get("peak", float("nan"))
        print(f"{case.step:28} {t_mv:10.3f} {case.reference_name:40} {t_ref:8.3f} "
              f"{t_mv / t_ref:6.2f} {peak:8.2f}", flush=True)


if __name__ == "__main__":
    main()
