"""Backup throughput, side by side: ``medview.pacs.backup`` against a plain dicomweb-client
STOW-RS loop, on the same files, to the same Orthanc, in one process.

    .venv/bin/python benchmarks/backup.py [--slices 300] [--repeat 3] [--keep]

The shared data holds no CT of hundreds of slices, so a 300-slice CT is generated in a
temporary folder: scanner headers (new UIDs, positions, instance numbers) on the real 512²
pixel data of the KiTS slices (``kits_dupe_positions``, cycled). It is indexed into a temporary
catalog (not timed: a backup starts from the catalog), and an Orthanc with its DICOMweb plugin
is started on free loopback ports.

Each repeat empties the archive and runs, in turns:

a. the reference: ``for f in files: client.store_instances([pydicom.dcmread(f)])``;
b. ``medview.pacs.backup.backup`` of the study (a fresh journal): its query + send time is
   compared with (a); its read-back verification (WADO-RS, decoded pixel hash and identifying
   attributes of every instance) is reported separately;
c. the same backup again: everything already there and verified (the incremental case).

Prints medians, MiB/s and the ratio a / b (target ≥ 1.0×). These machines are noisy: compare
ratios of one run. The user's audit log and journal are not touched (a temporary data folder).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO

sys.path.insert(0, str(REPO / "tests" / "pacs"))  # the Orthanc process helper of the tests
from orthanc_proc import PASSWORD, USER, Orthanc

DATA = Path(os.environ.get("MEDVIEW_TEST_DATA", "/work/shared/data"))


def make_ct(folder: Path, slices: int) -> list[Path]:
    """``slices`` CT files: generated headers on the real KiTS pixel data."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = sorted((DATA / "kits_dupe_positions").glob("*.dcm"))
    if not sources:
        raise SystemExit(f"needs the real CT of {DATA / 'kits_dupe_positions'} (SOURCES.md)")
    templates = [pydicom.dcmread(f) for f in sources]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(slices):
        ds = templates[k % len(templates)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName = "BACKUP-BENCH", "BENCH^BACKUP"
        ds.SeriesDescription, ds.SeriesNumber = f"bench CT {slices} slices", 1
        ds.InstanceNumber = k + 1
        x, y, _z = ds.ImagePositionPatient
        ds.ImagePositionPatient = [x, y, -1.0 * k]
        ds.SliceLocation = -1.0 * k
        path = folder / f"ct{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None,
                    help="instances per STOW-RS request (default: medview's)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="medview-backup-bench-"))
    os.environ["MEDVIEW_DATA_DIR"] = str(work / "data")  # audit log and journal: not the user's
    import pydicom
    import requests
    from dicomweb_client.api import DICOMwebClient

    from medview.dicom.catalog.db import Catalog
    from medview.pacs._backup_journal import Journal
    from medview.pacs.backup import backup
    from medview.pacs.nodes import WebNode

    orthanc = None
    try:
        t0 = time.perf_counter()
        files = make_ct(work / "ct", args.slices)
        mib = sum(f.stat().st_size for f in files) / 2**20
        print(f"wrote {len(files)} CT files ({mib:.0f} MiB, real 512² pixels) in "
              f"{time.perf_counter() - t0:.1f} s")
        catalog = Catalog(work / "catalog.sqlite")
        catalog.index([work / "ct"], workers=1)
        [study_uid] = [s.uid for s in catalog.studies()]
        orthanc = Orthanc(work / "orthanc").start()
        # the secret comes from this object, not the keyring: a subclass answering it
        node = type("BenchWeb", (WebNode,), {"secret": lambda self: PASSWORD})(
            "bench", orthanc.dicomweb, "basic", USER, timeout_s=120)

        def plain_loop() -> float:
            session = requests.Session()
            session.auth = (USER, PASSWORD)
            client = DICOMwebClient(orthanc.dicomweb, session=session)
            t0 = time.perf_counter()
            for f in files:
                client.store_instances([pydicom.dcmread(f)])
            seconds = time.perf_counter() - t0
            session.close()
            return seconds

        batch = {"batch": args.batch} if args.batch else {}

        def medview_backup(k: int):
            with Journal(work / f"journal{k}.sqlite") as journal:
                t0 = time.perf_counter()
                report = backup(node, catalog, [study_uid], journal=journal, **batch)
                total = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = backup(node, catalog, [study_uid], journal=journal)
                incremental = time.perf_counter() - t0
            assert report.complete and len(report.sent) == len(files), report.summary()
            assert again.complete and len(again.verified_before) == len(files)
            s = report.seconds
            return s["query"] + s["send"], s["verify"], total, incremental

        plain, ours, verify, totals, incr = [], [], [], [], []
        for k in range(args.repeat):
            for which in (("plain", "medview") if k % 2 == 0 else ("medview", "plain")):
                orthanc.delete_all()
                if which == "plain":
                    plain.append(plain_loop())
                    assert len(orthanc.rest("/instances")) == len(files)
                else:
                    send_s, verify_s, total_s, incr_s = medview_backup(k)
                    ours.append(send_s)
                    verify.append(verify_s)
                    totals.append(total_s)
                    incr.append(incr_s)
            print(f"  repeat {k + 1}: plain STOW loop {plain[-1]:.2f} s, medview send "
                  f"{ours[-1]:.2f} s + verify {verify[-1]:.2f} s")
        a, b = statistics.median(plain), statistics.median(ours)
        v, t, i = statistics.median(verify), statistics.median(totals), statistics.median(incr)
        n = len(files)
        print(f"\n{n} instances, {mib:.0f} MiB, medians of {args.repeat}:")
        print(f"  a. plain dicomweb-client STOW loop  {a:6.2f} s  {mib / a:6.1f} MiB/s  "
              f"{n / a:6.1f} inst/s")
        print(f"  b. medview backup: query + send     {b:6.2f} s  {mib / b:6.1f} MiB/s  "
              f"{n / b:6.1f} inst/s")
        print(f"     medview backup: verification     {v:6.2f} s  {mib / v:6.1f} MiB/s  "
              "(WADO-RS read-back, decoded pixel hash, identifying attributes)")
        print(f"     medview backup: whole run        {t:6.2f} s")
        print(f"  c. incremental run (all there and verified before) {i:.2f} s")
        print(f"\nratio send a/b = {a / b:.2f}× (target ≥ 1.0×); with verification "
              f"a/(b+verify) = {a / t:.2f}×")
    finally:
        if orthanc is not None:
            orthanc.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
