"""Indexing headers: medview's scan and catalog vs a plain pydicom ``stop_before_pixels`` loop.

Writes ``--files`` (default 3000) synthetic CT-like DICOM files with pydicom (a realistic
header of about 100 elements with a few sequences and private tags, ``--size``² int16 pixels)
into a temporary folder (or reuses ``--dir``), then, in this one process and with a warm page
cache, times

a. ``pydicom.dcmread(f, stop_before_pixels=True)`` over every file: the reference;
b. ``medview.dicom.scan.scanner.scan_paths(folder, workers=1)``: the fast parser alone;
c. ``scan_paths(folder)``: with its default process pool decision;
d. ``Catalog.index([folder])`` first pass into a new catalog;
e. ``Catalog.index([folder])`` again on the unchanged folder (stat only);

and prints files/s and the ratios to (a). Targets (the indexing issue): (c) and (d) ≥ 2× (a);
(e) ≥ 20× (d). It asserts nothing; these machines are noisy, so compare ratios of one run.

Usage::

    python benchmarks/index.py [--files 3000] [--size 256] [--dir DIR] [--keep] [--workers N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table

TARGETS = {"scan_vs_pydicom": 2.0, "index_vs_pydicom": 2.0, "reindex_vs_index": 20.0}


def make_dataset(i: int, n: int, size: int, study_uid: str, series_uid: str, frame_uid: str):
    """One CT slice of a synthetic series with a header as busy as a real scanner's."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    meta.ImplementationVersionName = "MEDVIEW_BENCH"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = "20240102"
    ds.InstanceCreationTime = "101010"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240102"
    ds.StudyTime = ds.SeriesTime = "100000"
    ds.AcquisitionTime = ds.ContentTime = f"1001{i % 60:02d}"
    ds.AccessionNumber = "ACC12345"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Medical"
    ds.InstitutionName = "General Hospital"
    ds.InstitutionAddress = "1 Hospital Road"
    ds.ReferringPhysicianName = "Doctor^Referring"
    ds.StationName = "CT01"
    ds.StudyDescription = "CT CHEST ABDOMEN PELVIS"
    code = Dataset()
    code.CodeValue = "CTCAP"
    code.CodingSchemeDesignator = "99LOCAL"
    code.CodeMeaning = "CT chest abdomen pelvis with contrast"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.SeriesDescription = "Body 1.0 CE"
    ds.OperatorsName = "Tech^One"
    ds.ManufacturerModelName = "Scanner 9000"
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = Sequence([ref, ref])
    ds.PatientName = "Bench^Patient^^^"
    ds.PatientID = "BENCH001"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "F"
    ds.PatientAge = "064Y"
    ds.PatientWeight = 70.5
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = 1.0
    ds.KVP = 120
    ds.DataCollectionDiameter = 500.0
    ds.DeviceSerialNumber = "12345"
    ds.SoftwareVersions = ["1.0.0", "2.3"]
    ds.ProtocolName = "CAP"
    ds.ReconstructionDiameter = 360.0
    ds.DistanceSourceToDetector = 1085.6
    ds.DistanceSourceToPatient = 595.0
    ds.GantryDetectorTilt = 0.0
    ds.TableHeight = 150.0
    ds.RotationDirection = "CW"
    ds.ExposureTime = 500
    ds.XRayTubeCurrent = 250
    ds.Exposure = 125
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = 30
    ds.FocalSpots = 1.2
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.RevolutionTime = 0.5
    ds.SingleCollimationWidth = 0.625
    ds.TotalCollimationWidth = 40.0
    ds.TableSpeed = 78.75
    ds.TableFeedPerRotation = 39.375
    ds.SpiralPitchFactor = 0.984
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 3
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = i + 1
    z = -float(i)
    ds.ImagePositionPatient = [-180.0, -180.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = "SN"
    ds.SliceLocation = z
    ds.ImagesInAcquisition = n
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.PixelSpacing = [360.0 / size, 360.0 / size]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelPaddingValue = -2000
    ds.WindowCenter = [40, 400]
    ds.WindowWidth = [400, 1500]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = ["ABDOMEN", "LUNG"]
    ds.LossyImageCompression = "00"
    block = ds.private_block(0x0009, "ACME CT PRIVATE", create=True)
    block.add_new(0x01, "LO", "some vendor text")
    block.add_new(0x02, "DS", "1.5")
    block.add_new(0x03, "OB", bytes(1024))  # a vendor blob, skipped by the fast parser
    y, x = np.mgrid[:size, :size]
    pixels = ((x + y + i) % 2000 - 1000).astype(np.int16)
    ds.PixelData = pixels.tobytes()
    return ds


def write_files(folder: Path, n: int, size: int) -> list[Path]:
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for i in range(n):
        ds = make_dataset(i, n, size, study, series, frame)
        p = folder / f"IM{i:05d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def time_it(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--dir", help="reuse or fill this folder instead of a temporary one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--workers", type=int, default=None, help="processes for (c) and (d)")
    args = ap.parse_args(argv)

    import pydicom

    from medview.dicom.scan.scanner import scan_paths

    tmp = None
    if args.dir:
        folder = Path(args.dir)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="medview-index-bench-"))
        folder = tmp / "ct"
    try:
        paths = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
        if len(paths) >= args.files:
            paths = paths[: args.files]
            print(f"reusing {len(paths)} files in {folder}")
        else:
            t, paths = time_it(lambda: write_files(folder, args.files, args.size))
            print(f"wrote {len(paths)} files ({args.size}×{args.size} int16) in {t:.1f} s")
        for p in paths:  # warm the page cache: we compare parsers, not disks
            p.read_bytes()
        n = len(paths)

        def pydicom_loop():
            return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]

        rows = []
        t_ref, _ = time_it(pydicom_loop)
        rows.append(("a. pydicom stop_before_pixels", t_ref, n / t_ref, 1.0))
        t_scan1, (h1, e1) = time_it(lambda: scan_paths(folder, workers=1))
        rows.append(("b. scan_paths, 1 process", t_scan1, n / t_scan1, t_ref / t_scan1))
        t_scan, (h, e) = time_it(lambda: scan_paths(folder, workers=args.workers))
        rows.append(("c. scan_paths, default pool", t_scan, n / t_scan, t_ref / t_scan))
        assert len(h1) == len(h) == n and not e and not e1, (len(h), e[:3])

        ratios = {"scan_vs_pydicom": t_ref / min(t_scan, t_scan1)}
        try:
            from medview.dicom.catalog.db import Catalog
        except ImportError:
            Catalog = None
        if Catalog is not None:
            db = (tmp or Path(tempfile.mkdtemp())) / "bench-catalog.sqlite"
            with Catalog(db) as cat:
                t_idx, rep = time_it(lambda: cat.index([folder]))
                assert rep.added == n, rep
                rows.append(("d. Catalog.index, first pass", t_idx, n / t_idx, t_ref / t_idx))
                t_re, rep2 = time_it(lambda: cat.index([folder]))
                assert rep2.unchanged == n, rep2
                rows.append(("e. Catalog.index, unchanged", t_re, n / t_re, t_ref / t_re))
            ratios["index_vs_pydicom"] = t_ref / t_idx
            ratios["reindex_vs_index"] = t_idx / t_re
        print()
        print_table(
            ["", "seconds", "files/s", "× pydicom"],
            [(r[0], f"{r[1]:.3f}", f"{r[2]:,.0f}", f"{r[3]:.2f}") for r in rows],
        )
        print()
        for key, target in TARGETS.items():
            if key in ratios:
                ok = "ok" if ratios[key] >= target else "BELOW TARGET"
                print(f"{key}: {ratios[key]:.1f}× (target ≥ {target:g}×) {ok}")
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp is not None:
            print(f"kept {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
