"""Viewer speed: slice changes per second in the real widgets, and cold start to the window.

Runs offscreen (``QT_QPA_PLATFORM=offscreen`` is set here). For each view of a 512×512×300
CT (the phantom, in memory) the state moves through slices and the widget repaints
synchronously (window/level mapping, label overlay off, corner overlays, crosshair and
drawing included, 2×2 layout so the crosshair and all three views are live). The reference is
a bare pyqtgraph ImageItem in a ViewBox of the same size showing the same planes, so the
ratio says what medview's overlays, crosshair and bookkeeping cost on top of drawing.

Targets (issue 4): ≥ 100 frames/s axial, ≥ 60 frames/s coronal/sagittal; cold start < 2 s.
Issue 17: the same scroll with a 10 mm slab (MIP, average) on every view, ≥ 30 frames/s;
and the frame rate of an oblique crosshair drag.

Usage: ``python benchmarks/viewer.py [--slices N] [--frames F] [--no-cold-start]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import REPO


def _frames_per_second(step, repaint, frames: int) -> float:
    for i in range(10):  # warm up caches and pyqtgraph's LUT paths
        step(i)
        repaint()
    t0 = time.perf_counter()
    for i in range(frames):
        step(i)
        repaint()
    return frames / (time.perf_counter() - t0)


def bench_views(n_slices: int, frames: int) -> None:
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from medview.app.state import ViewerState
    from medview.core.volume import Volume
    from medview.gui.app import create_app
    from medview.gui.view_grid import ViewGrid
    from phantoms.anatomy import ct_phantom_volume

    app = create_app()
    hu = ct_phantom_volume((n_slices, 512, 512), (0.7, 0.7, 1.0)).astype(np.int16)
    volume = Volume(hu, (0.7, 0.7, 1.0), (-179.0, -179.0, -150.0), np.eye(3),
                    {"Modality": "CT", "Units": "HU", "PatientName": "PHANTOM^CT"})
    state = ViewerState()
    grid = ViewGrid(state)
    grid.resize(1400, 1200)  # each view about 700×600 screen pixels
    grid.show()
    state.set_volume(volume)
    state.set_window(50, 400)
    grid.set_layout("2x2")
    app.processEvents()

    # reference: a bare ImageItem in a ViewBox of the same size
    ref = pg.GraphicsView()
    box = pg.ViewBox(lockAspect=True, invertY=True)
    ref.setCentralItem(box)
    item = pg.ImageItem(axisOrder="row-major")
    box.addItem(item)
    ref.resize(grid.views["axial"].size())
    ref.show()
    app.processEvents()

    print(f"volume {volume.shape[::-1]} int16, views "
          f"{grid.views['axial'].width()}×{grid.views['axial'].height()} screen px")
    print(f"{'view':<10}{'medview fps':>13}{'10 mm MIP fps':>15}{'10 mm avg fps':>15}"
          f"{'bare pyqtgraph fps':>21}{'ratio':>8}{'target':>9}{'slab ≥ 30':>11}")
    for plane in ("axial", "coronal", "sagittal"):
        view = grid.views[plane]
        g = state.geometry(plane)
        n = g.n_slices

        def step_medview(i, plane=plane, n=n):
            state.set_plane_slice(plane, (i * 7) % n)

        def step_ref(i, g=g, n=n):
            item.setImage(g.image(volume.array, (i * 7) % n), autoLevels=False,
                          levels=(-150, 250))

        if plane == "axial":
            item.setImage(g.image(volume.array, 0), autoLevels=False, levels=(-150, 250))
        box.autoRange(padding=0)
        state.slab.set_mode("off")
        ours = _frames_per_second(step_medview, view.viewport().repaint, frames)
        # issue 17: the same scroll with a 10 mm slab on every view (the other two views'
        # slabs do not change: the projector's cache keeps them)
        state.slab.set_thickness(10.0)
        slab_fps = {}
        for mode in ("mip", "average"):
            state.slab.set_mode(mode)
            slab_fps[mode] = _frames_per_second(step_medview, view.viewport().repaint, frames)
        state.slab.set_mode("off")
        bare = _frames_per_second(step_ref, ref.viewport().repaint, frames)
        target = 100 if plane == state.native_plane else 60
        slab_ok = min(slab_fps.values()) >= 30
        print(f"{plane:<10}{ours:>13.0f}{slab_fps['mip']:>15.0f}{slab_fps['average']:>15.0f}"
              f"{bare:>21.0f}{ours / bare:>8.2f}"
              f"{'≥ ' + str(target):>9}  {'met' if ours >= target else 'MISSED'}"
              f"{'met' if slab_ok else 'MISSED':>9}")
    bench_oblique(state, grid, frames)
    grid.close()
    ref.close()
    QApplication.processEvents()


def bench_oblique(state, grid, frames: int) -> None:
    """Turning the crosshair (issue 17): frames per second while dragging (coarse
    sampling of the two turning planes, all three views repainted), and one full-resolution
    frame after the drag."""
    import math

    frames = max(10, frames // 5)

    def turn(i):
        state.mpr.rotate_in_view("axial", math.radians(0.5 * (i % 60)), base=base,
                                 coarse=True)

    def repaint():
        for view in grid.views.values():
            view.viewport().repaint()

    base = state.mpr.current_frame()
    fps = _frames_per_second(turn, repaint, frames)
    t0 = time.perf_counter()
    state.mpr.set_coarse(False)
    repaint()
    full_ms = (time.perf_counter() - t0) * 1000
    state.mpr.reset()
    print(f"oblique drag (2×2, two planes resampled per frame, coarse): {fps:.0f} fps; "
          f"full-resolution frame after the drag: {full_ms:.0f} ms")


def cold_start(repeat: int = 3) -> None:
    """Start ``medview`` (the window on an empty catalog) and read when it was shown."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        # a scratch catalog, settings file and cache: the user's own stay untouched
        env = dict(os.environ, MEDVIEW_DB=os.path.join(tmp, "catalog.sqlite"),
                   MEDVIEW_SETTINGS=os.path.join(tmp, "settings.ini"),
                   MEDVIEW_CACHE_DIR=os.path.join(tmp, "cache"),
                   MEDVIEW_GUI_EXIT_AFTER_MS="50", PYTHONPATH=str(REPO))
        code = "import sys; from medview.cli import main; sys.exit(main([]))"
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, timeout=60)
            for line in out.stderr.splitlines():
                if "window shown" in line:
                    times.append(float(line.split("window shown")[1].split()[0]))
    if not times:
        print("cold start: the window did not report being shown")
        return
    best, worst = min(times), max(times)
    print(f"cold start to the window shown: best {best:.2f} s, worst {worst:.2f} s "
          f"of {len(times)} (target < 2 s: {'met' if worst < 2 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--no-cold-start", action="store_true")
    args = parser.parse_args()
    bench_views(args.slices, args.frames)
    if not args.no_cold_start:
        cold_start()


if __name__ == "__main__":
    main()
