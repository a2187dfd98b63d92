"""Live preview of the chain panel: milliseconds per previewed slice, against the 200 ms target.

    .venv/bin/python benchmarks/chain_preview.py [--data DIR] [--repeat 7]

For each case, a one-step (or short) chain is previewed on the middle slice of a real CT
(512×512 slices, default /work/shared/data/kits_dupe_positions) the way the panel does it:
:func:`medview.app.chain_preview.run_preview` cuts the slab (one slice for 2D steps, ±halo
slices when a step needs 3D context), runs the chain and takes the middle slice. Printed: the
median over --repeat runs, the slab's half-thickness, whether the preview equals a full run,
and the ratio to the 200 ms budget (≤ 1 meets it). "gui" adds the round trip through the
panel: from a parameter change (debounce timer skipped) to the preview shown in the state,
through the task pool and the queued signals.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BUDGET_S = 0.200

CASES = [
    ("threshold", [{"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0}}]),
    ("gaussian 2D", [{"step": "smooth.gaussian", "params": {"in_plane_only": True}}]),
    ("median 2D", [{"step": "smooth.median", "params": {"in_plane_only": True}}]),
    ("bilateral", [{"step": "smooth.bilateral"}]),
    ("sobel 2D", [{"step": "features.sobel", "params": {"mode": "2d"}}]),
    ("canny", [{"step": "features.canny"}]),
    ("otsu in-plane", [{"step": "segment.otsu", "params": {"in_plane_only": True}}]),
    ("CLAHE", [{"step": "enhance.clahe"}]),
    ("LBP", [{"step": "features.lbp"}]),
    ("Gabor bank", [{"step": "features.gabor"}]),
    ("curvature diffusion 2D",
     [{"step": "smooth.curvature_diffusion", "params": {"in_plane_only": True}}]),
    ("gaussian 2D + threshold + open 2D + fill 2D", [
        {"step": "smooth.gaussian", "params": {"in_plane_only": True}},
        {"step": "segment.threshold", "params": {"low": -950.0, "high": -400.0}},
        {"step": "segment.open", "params": {"radius_mm": 2.0, "in_plane_only": True}},
        {"step": "segment.fill_holes", "params": {"in_plane_only": True}}]),
    ("3D: gaussian 1 mm (slab)", [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}}]),
    ("3D: lung example chain (slab)", "ct_denoise_lung_threshold.json"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/kits_dupe_positions")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    import numpy as np

    import medview
    from medview.app.chain_preview import run_preview
    from medview.pipeline.chain import Chain
    from medview.pipeline.runner import run_chain

    volume = medview.load(args.data)
    z = volume.shape[0] // 2
    print(f"CT {volume.shape} {volume.array.dtype}, slice {z}; budget {BUDGET_S * 1000:.0f} ms")
    print(f"{'case':46s} {'ms':>8s} {'halo':>5s} {'exact':>6s} {'= full':>7s} {'÷ budget':>9s}")
    for name, steps in CASES:
        if isinstance(steps, str):
            chain = Chain.load(ROOT / "resources" / "chains" / steps)
        else:
            chain = Chain.from_dict({"steps": steps})
        run_preview(chain, {"image": volume}, z)  # warm-up (imports, OpenCV threads)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            p = run_preview(chain, {"image": volume}, z)
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        same = "-"
        if p.exact:  # check against a full run on a slab large enough to hold the context
            lo, hi = max(0, z - 20), min(volume.shape[0], z + 21)
            from medview.app.chain_preview import displayable, slab

            full = run_chain(chain, {"image": slab(volume, lo, hi)})
            _, value = displayable(full, set(chain.inputs))
            same = "yes" if np.array_equal(value.array[z - lo], p.image) else "NO"
        print(f"{name:46s} {median * 1000:8.1f} {p.halo:5d} {p.exact!s:>6s} {same:>7s} "
              f"{median / BUDGET_S:9.2f}")
    gui_round_trip(volume, z, args.repeat)


def gui_round_trip(volume, z: int, repeat: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    from medview.app.state import ViewerState
    from medview.gui.app import create_app
    from medview.gui.chain_panel import ChainPanel
    from medview.gui.tasks import TaskRunner

    create_app()
    state, tasks = ViewerState(), TaskRunner()
    layers = state.layers
    state.set_volume(volume)
    state.set_slice(z)
    panel = ChainPanel(state, layers, tasks)
    panel.add_step("segment.threshold")
    panel.preview_check.setChecked(True)
    loop = QEventLoop()
    panel.preview_ready.connect(lambda r: loop.quit())
    QTimer.singleShot(0, lambda: None)
    loop.exec()
    times = []
    spin = panel.form.fields["low"]
    for i in range(repeat):
        t0 = time.perf_counter()
        spin.setValue(-900.0 + i)
        panel.start_preview()  # what the debounce timer calls 250 ms later
        loop.exec()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"{'gui: threshold, change → preview shown':46s} {median * 1000:8.1f} "
          f"{'':5s} {'':6s} {'':7s} {median / BUDGET_S:9.2f}   (+ {250} ms debounce)")
    tasks.shutdown()


if __name__ == "__main__":
    main()
