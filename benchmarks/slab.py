"""Thick-slab projection speed: medview.core.reformat.slab vs plain NumPy, in one process.

On a 512×512×N CT phantom (in memory, 0.7 × 0.7 × 1.0 mm by default) it times, for the axial,
coronal and sagittal views and slabs of 5, 10 and 30 mm, the median milliseconds of one slab:

- ``numpy``: ``array[slab].max(axis=…)`` / ``.min`` / ``.mean`` — the plain reference;
- ``medview``: ``project_slab`` (no cache, no ``[x, z, y]`` copy);
- for the average also ``cumsum``: the query of a cumulative sum per axis (what it would cost
  per slab once built; the build time and memory are printed below the table).

then the frames per second of a 2×2 layout whose three views all recompute a 10 mm slab each
frame (the worst case: scrolling one view recomputes only that view, SlabProjector keeps the
others), the sagittal slabs again from SlabProjector's optional ``[x, z, y]`` copy, the same on
a gantry-tilted (sheared) grid, where the axial slab reads each plane shifted, and last an
oblique MPR plane sampled by medview (``map_coordinates``, order 1) beside SimpleITK's
``Resample`` of the same plane. Target (issue 17): ≥ 30 frames/s with a 10 mm slab on a 512²
CT in the 2×2 layout, i.e. well under 8 ms per view.

Usage: ``python benchmarks/slab.py [--slices 300] [--z-mm 1.0] [--repeat 15]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import REPO  # noqa: F401  (puts this checkout first on sys.path)

VIEWS = {"axial": 2, "coronal": 1, "sagittal": 0}
REDUCE = {"mip": "max", "minip": "min", "average": "mean"}


def _ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _numpy_slab(array, axis, lo, hi, mode):
    sel = [slice(None)] * 3
    sel[2 - axis] = slice(lo, hi)
    return getattr(array[tuple(sel)], REDUCE[mode])(axis=2 - axis)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--z-mm", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    import numpy as np

    from medview.core.reformat.slab import plan_slab, project_slab
    from medview.core.volume import Volume
    from phantoms.anatomy import ct_phantom_volume

    spacing = (0.7, 0.7, args.z_mm)
    hu = ct_phantom_volume((args.slices, 512, 512), spacing).astype(np.int16)
    vol = Volume(hu, spacing, (-179.0, -179.0, -150.0), np.eye(3), {"Modality": "CT"})
    print(f"CT phantom {hu.shape[2]}×{hu.shape[1]}×{hu.shape[0]} int16, "
          f"spacing {spacing} mm, {hu.nbytes / 2**20:.0f} MiB; median of {args.repeat}")

    t0 = time.perf_counter()
    cums = {axis: np.cumsum(hu, axis=2 - axis, dtype=np.int32) for axis in VIEWS.values()}
    build_s = time.perf_counter() - t0

    def cumsum_mean(cums, axis, lo, hi):
        c = cums[axis]
        top = np.take(c, hi - 1, axis=2 - axis)
        below = np.take(c, lo - 1, axis=2 - axis) if lo > 0 else 0
        return (top - below) / np.float32(hi - lo)

    print(f"\n{'view':9} {'mm':>4} {'planes':>6} {'mode':8} {'numpy ms':>9} {'medview ms':>11} "
          f"{'numpy/medview':>14} {'cumsum ms':>10}")
    ten_mm = {}
    for name, axis in VIEWS.items():
        index = hu.shape[2 - axis] // 2
        for mm in (5.0, 10.0, 30.0):
            plan = plan_slab(vol, axis=axis, index=index, thickness_mm=mm)
            lo, hi = plan.planes[0], plan.planes[-1] + 1
            for mode in ("mip", "minip", "average"):
                t_np = _ms(lambda a=axis, m=mode, lo=lo, hi=hi: _numpy_slab(hu, a, lo, hi, m),
                           args.repeat)
                t_mv = _ms(lambda a=axis, i=index, t=mm, m=mode: project_slab(
                    vol, axis=a, index=i, thickness_mm=t, mode=m), args.repeat)
                cs = ""
                if mode == "average":
                    t_cs = _ms(lambda a=axis, lo=lo, hi=hi: cumsum_mean(cums, a, lo, hi),
                               args.repeat)
                    cs = f"{t_cs:10.2f}"
                if mm == 10.0:
                    ten_mm[(name, mode)] = t_mv
                print(f"{name:9} {mm:4.0f} {plan.n_planes:6d} {mode:8} {t_np:9.2f} "
                      f"{t_mv:11.2f} {t_np / t_mv:13.1f}× {cs}")
    print(f"\ncumulative sums (int32, one per axis): built in {build_s:.2f} s, "
          f"{sum(c.nbytes for c in cums.values()) / 2**20:.0f} MiB "
          f"({sum(c.nbytes for c in cums.values()) / hu.nbytes:.0f}× the volume)")
    cums.clear()  # free the 6× before the next part

    print("\n2×2 layout, all three views recomputing a 10 mm slab every frame:")
    for mode in ("mip", "minip", "average"):
        total = sum(ten_mm[(name, mode)] for name in VIEWS)
        print(f"  {mode:8} {total:6.2f} ms per frame → {1e3 / total:6.0f} frames/s "
              f"(slowest view {max(ten_mm[(n, mode)] for n in VIEWS):.2f} ms)")

    # sagittal slabs from an [x, z, y] copy (SlabProjector(x_major=True)): time and memory
    from medview.core.reformat.slab import SlabProjector

    proj = SlabProjector(vol, cache_size=0, x_major=True)
    t0 = time.perf_counter()
    proj.project(axis=0, index=256, thickness_mm=0.0)
    print(f"\nsagittal with SlabProjector(x_major=True): copy made in "
          f"{time.perf_counter() - t0:.2f} s, +{hu.nbytes / 2**20:.0f} MiB")
    for mm in (5.0, 10.0, 30.0):
        row = []
        for mode in ("mip", "minip", "average"):
            t = _ms(lambda t=mm, m=mode, p=proj: p.project(axis=0, index=256, thickness_mm=t,
                                                            mode=m), args.repeat)
            if mm == 10.0:
                ten_mm[("sagittal-x-major", mode)] = t
            row.append(f"{mode} {t:6.2f} ms")
        print(f"  {mm:4.0f} mm: " + ", ".join(row))
    for mode in ("mip", "minip", "average"):
        total = sum(ten_mm[(n, mode)] for n in ("axial", "coronal", "sagittal-x-major"))
        print(f"  2×2, 10 mm {mode:8} {total:6.2f} ms per frame → {1e3 / total:6.0f} frames/s")
    proj = None  # free the copy before the next part

    # the same volume on a sheared grid: 18.5° gantry tilt, as the GE and Philips heads
    tilt = np.radians(18.5)
    direction = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(tilt), 0.0], [0.0, -np.sin(tilt), 1.0]])
    sheared = Volume(hu, spacing, (-179.0, -179.0, -150.0), direction, {"Modality": "CT"})
    print("\nsheared grid (18.5° tilt), 10 mm slab:")
    total = {m: 0.0 for m in ("mip", "minip", "average")}
    for name, axis in VIEWS.items():
        index = hu.shape[2 - axis] // 2
        plan = plan_slab(sheared, axis=axis, index=index, thickness_mm=10.0)
        row = []
        for mode in total:
            t = _ms(lambda a=axis, i=index, m=mode: project_slab(
                sheared, axis=a, index=i, thickness_mm=10.0, mode=m), args.repeat)
            total[mode] += t
            row.append(f"{mode} {t:6.2f} ms")
        shifted = int(np.count_nonzero(plan.shifts.any(axis=1)))
        print(f"  {name:9} {plan.n_planes:3d} planes ({shifted} shifted): " + ", ".join(row))
    print("  2×2: " + ", ".join(f"{m} {1e3 / t:.0f} frames/s" for m, t in total.items()))
    _oblique(vol, args.repeat)


def _oblique(vol, repeat: int) -> None:
    """An oblique MPR plane: medview's sample_plane vs SimpleITK's Resample of that plane."""
    import numpy as np
    import SimpleITK as sitk

    from medview.core.reformat.oblique import MprFrame, mpr_plane, sample_plane

    image = vol.to_sitk()
    fill = float(vol.array.min())
    print("\noblique MPR plane (trilinear), medview sample_plane vs SimpleITK Resample:")
    frame = MprFrame.acquisition(vol)
    for degrees in (0.0, 30.0):
        turned = frame.rotated_in_view("sagittal", np.radians(degrees))
        for name in ("axial", "coronal"):
            plane = mpr_plane(vol, turned, name)
            axes = np.column_stack([plane.col_step / plane.pixel_mm[0],
                                    plane.row_step / plane.pixel_mm[1], plane.normal])
            t_mv = _ms(lambda p=plane: sample_plane(vol, p, fill_value=fill), repeat)
            t_sitk = _ms(lambda p=plane, a=axes: sitk.Resample(
                image, [p.columns, p.rows, 1], sitk.Transform(), sitk.sitkLinear,
                tuple(p.origin), (*p.pixel_mm, 1.0), tuple(a.ravel()), fill,
                sitk.sitkFloat32), repeat)
            print(f"  {name:8} turned {degrees:4.0f}° ({plane.columns}×{plane.rows} px): "
                  f"medview {t_mv:6.1f} ms, SimpleITK {t_sitk:6.1f} ms "
                  f"(SimpleITK/medview {t_sitk / t_mv:.2f}×, SimpleITK uses "
                  f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} threads)")


if __name__ == "__main__":
    main()
