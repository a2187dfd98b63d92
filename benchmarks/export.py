"""Writing DICOM exports of a 512×512×300 CT: medview vs a plain highdicom / pydicom script.

Makes (or reuses ``--dir``) a phantom CT series, loads it, and times with the median of
``--repeat`` runs each:

a. a SEG of a two-segment label map (soft tissue, bone; about half the slices hold them):
   ``medview.dicom.export.seg.write_seg`` vs the bare highdicom call on the same source
   datasets (``hd.seg.Segmentation(...)`` + ``save_as``) — the reference;
b. a derived float series (the CT × 0.5 + 0.25, float32 → rescaled int16):
   ``write_derived_series`` vs a plain pydicom loop that copies each source header, sets new
   UIDs and pixel data and writes the file — the reference (no checks, no atomic folder);

then prints seconds and ratios (medview / reference). It asserts nothing.

Usage::

    python benchmarks/export.py [--slices 300] [--size 512] [--repeat 3] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import median_seconds, print_table, series_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    import highdicom as hd
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    import medview
    from medview.core.labelmap import LabelMap
    from medview.dicom.export.seg import _description, segment_numbering, write_seg
    from medview.dicom.export.series import write_derived_series

    with series_folder(args.dir, slices=args.slices, size=args.size, keep=args.keep) as folder:
        ct = medview.load(folder)
        lab = np.zeros(ct.shape, np.uint8)
        lab[(ct.array > 20) & (ct.array < 80)] = 1
        lab[ct.array > 300] = 2
        labels = LabelMap.like(ct, lab)
        derived = ct.with_array(ct.array.astype(np.float32) * 0.5 + 0.25)
        out = Path(tempfile.mkdtemp(prefix="medview-bench-export-"))
        try:
            counter = iter(range(10**6))

            def mv_seg():
                return write_seg(labels, out / f"seg{next(counter)}.dcm")

            def ref_seg():
                sources = [pydicom.dcmread(f, stop_before_pixels=True)
                           for f in ct.metadata["source_files"]]
                descs = [_description(k, s, "AUTOMATIC", "medview")
                         for k, (_, s) in enumerate(segment_numbering(labels), start=1)]
                seg = hd.seg.Segmentation(
                    source_images=sources, pixel_array=lab, segmentation_type="BINARY",
                    segment_descriptions=descs, series_instance_uid=hd.UID(),
                    series_number=1, sop_instance_uid=hd.UID(), instance_number=1,
                    manufacturer="x", manufacturer_model_name="x", software_versions="0",
                    device_serial_number="0")
                path = out / f"ref{next(counter)}.dcm"
                seg.save_as(path)
                return path

            def mv_series():
                return write_derived_series(derived, out / f"series{next(counter)}")

            def ref_series():
                target = out / f"refseries{next(counter)}"
                target.mkdir()
                series_uid = generate_uid()
                slope = 0.5
                for z, f in enumerate(ct.metadata["source_files"]):
                    ds = pydicom.dcmread(f, stop_before_pixels=True)
                    ds.SeriesInstanceUID = series_uid
                    ds.SOPInstanceUID = generate_uid()
                    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
                    ds.RescaleSlope, ds.RescaleIntercept = slope, 0.25
                    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
                    ds.PixelData = np.rint((derived.array[z] - 0.25) / slope).astype(
                        np.int16).tobytes()
                    ds["PixelData"].VR = "OW"
                    ds.save_as(target / f"{z:04d}.dcm")
                return target

            rows = []
            results = {}
            for name, fn in (("a. SEG medview", mv_seg), ("a. SEG highdicom", ref_seg),
                             ("b. series medview", mv_series),
                             ("b. series pydicom", ref_series)):
                seconds, _ = median_seconds(fn, args.repeat, warmup=1)
                results[name] = seconds
                rows.append((name, f"{seconds:.2f} s"))
            print(f"{args.slices} × {args.size}² CT, {int((lab > 0).any(axis=(1, 2)).sum())} "
                  "slices with labels; median of "
                  f"{args.repeat} runs each")
            print_table(("what", "time"), rows)
            print(f"SEG: medview / highdicom = "
                  f"{results['a. SEG medview'] / results['a. SEG highdicom']:.2f}")
            print(f"derived series: medview / plain pydicom = "
                  f"{results['b. series medview'] / results['b. series pydicom']:.2f}")
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
