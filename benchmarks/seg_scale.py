"""Large segmentations: a 100-segment label map as DICOM SEG, LABELMAP beside BINARY.

Writes a phantom CT series (``--slices`` × ``--size``², default 300 × 512²) into a temporary
folder, makes an atlas-like label map of ``--segments`` (default 100) box-shaped organs that
each span a band of slices (as organs do), then times, for each encoding:

a. ``write_seg(labels, encoding=...)`` (export), file size and frame count;
b. ``read_seg(path, source=volume)`` (import as an overlay), checked voxel-equal.

Targets (issue 18): export and import each ≤ 5 s for 100 segments on 300 × 512² (LABELMAP,
the default); BINARY is measured beside it. Asserts nothing but equality.

Usage::

    python benchmarks/seg_scale.py [--slices 300] [--size 512] [--segments 100]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table


def atlas(shape: tuple[int, int, int], n_segments: int):
    """``n_segments`` labels as a grid of boxes: 5 bands along z, the rest in-plane."""
    import numpy as np

    nz, ny, nx = shape
    bands = 5
    per_band = -(-n_segments // bands)
    cols = int(np.ceil(np.sqrt(per_band)))
    rows = -(-per_band // cols)
    z = np.arange(nz) * bands // nz
    y = np.arange(ny) * rows // ny
    x = np.arange(nx) * cols // nx
    lab = (z[:, None, None] * per_band + y[None, :, None] * cols + x[None, None, :]) + 1
    lab[lab > n_segments] = 0
    lab = lab.astype(np.uint8 if n_segments < 256 else np.uint16)
    lab[:, :4, :] = 0  # some background
    return lab


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--segments", type=int, default=100)
    ap.add_argument("--encodings", default="labelmap,binary")
    args = ap.parse_args(argv)

    import numpy as np

    import medview
    from medview.core.labelmap import LabelMap
    from medview.dicom.export.seg import write_seg
    from medview.dicom.series.seg import read_seg
    from phantoms import write_ct_series

    tmp = Path(tempfile.mkdtemp(prefix="medview-seg-bench-"))
    try:
        t0 = time.perf_counter()
        write_ct_series(tmp / "ct", shape=(args.slices, args.size, args.size), seed=1)
        vol = medview.load(tmp / "ct")
        labels = LabelMap.like(vol, atlas(vol.shape, args.segments))
        print(f"{args.slices}×{args.size}² CT, {len(np.unique(labels.array)) - 1} segments, "
              f"made in {time.perf_counter() - t0:.1f} s")
        rows = []
        for enc in args.encodings.split(","):
            out = tmp / f"{enc}.seg.dcm"
            gc.collect()
            t0 = time.perf_counter()
            write_seg(labels, out, encoding=enc)
            t_write = time.perf_counter() - t0
            gc.collect()
            t0 = time.perf_counter()
            back = read_seg(out, source=vol)
            t_read = time.perf_counter() - t0
            equal = bool(np.array_equal(back.array, labels.array))
            import pydicom

            frames = int(pydicom.dcmread(out, stop_before_pixels=True).NumberOfFrames)
            rows.append((enc, f"{t_write:.2f}", f"{t_read:.2f}", f"{frames:,}",
                         f"{out.stat().st_size / 2**20:.1f}", "yes" if equal else "NO"))
            del back
        print()
        print_table(["encoding", "export s", "import s", "frames", "MiB", "voxel-equal"], rows)
        print("\ntarget: export and import each ≤ 5 s (labelmap)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
