"""Shared by the backup tests: an empty real Orthanc, a catalog of real series (and one
result medview wrote), and an independent instance-by-instance comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from realparts import DATA, require

KITS = DATA / "kits_dupe_positions"             # 11 real CT slices, 512²
TS = DATA / "dcm_qa_ts" / "In"                  # one MR in 9 transfer syntaxes
LIVER = DATA / "dcmqi_seg" / "data" / "segmentations"  # a 3-slice CT and dcmqi's SEG of it
HFS = DATA / "dcm_qa_decubitus" / "In" / "HFS"  # 35 real MR slices

# written out here, not imported from medview: the test must not share the code it checks
IDENTIFYING = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
               "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
               "StudyDate", "AccessionNumber", "Modality", "SeriesNumber", "InstanceNumber")


def web_node_for(archive, name: str = "archive"):
    """A DICOMweb node (basic auth, secret in the test's 0600 file) for ``archive``."""
    from orthanc_proc import PASSWORD, USER

    from medview.pacs.nodes import WebNode, add_node

    return add_node(WebNode(name, archive.dicomweb, "basic", USER, timeout_s=20), PASSWORD)


def write_result(folder: Path) -> Path:
    """A SEG medview writes (highdicom, Manufacturer medview) on the real 3-slice liver CT."""
    import medview
    from medview.core.labelmap import LabelMap, Segment
    from medview.dicom.export.seg import write_seg

    vol = medview.load(LIVER / "ct-3slice")
    lab = np.zeros(vol.shape, np.uint8)
    lab[vol.array > 100] = 1
    seg = Segment(1, "Dense", (240, 240, 200), ("91723000", "SCT", "Anatomical Structure"),
                  ("3138006", "SCT", "Bone tissue"))
    folder.mkdir(parents=True, exist_ok=True)
    return write_seg(LabelMap.like(vol, lab, segments=(seg,)), folder / "result.seg.dcm",
                     source=vol)


def real_catalog(tmp: Path, *, with_result: bool = True, more: tuple = ()):
    """A catalog of real series: the KiTS CT, the 9-syntax MR, the liver CT with dcmqi's SEG,
    and (``with_result``) a SEG medview wrote; plus ``more`` folders."""
    from medview.dicom.catalog.db import Catalog

    for p in (KITS, TS, LIVER):
        require(p.is_dir(), f"real DICOM test data at {p}")
    paths = [KITS, TS, LIVER / "ct-3slice", LIVER / "liver.dcm", *more]
    if with_result:
        paths.append(write_result(tmp / "results"))
    catalog = Catalog(tmp / "catalog.sqlite")
    report = catalog.index(paths, workers=1)
    assert report.added >= 24, report.errors
    return catalog


def catalog_files(catalog) -> dict[str, Path]:
    """SOP Instance UID → file of every instance in ``catalog``."""
    return {h.sop_instance_uid: Path(h.path)
            for s in catalog.series() for h in catalog.instances(s.uid)}


def decoded(ds) -> np.ndarray | None:
    """The decoded pixel values, bits above Bits Stored cleared (PS3.5 8.1.1 leaves them
    undefined, and a transcoding archive drops them)."""
    if "PixelData" not in ds:
        return None
    arr = ds.pixel_array
    bits = int(ds.get("BitsStored", 0) or 0)
    if arr.dtype.kind == "u" and 0 < bits < arr.dtype.itemsize * 8:
        arr = arr & ((1 << bits) - 1)
    return arr


def assert_same_instance(original: Path, copy, what: str) -> None:
    """Equal decoded pixel values and identifying attributes (``copy``: path or dataset)."""
    a = pydicom.dcmread(original)
    b = copy if isinstance(copy, pydicom.Dataset) else pydicom.dcmread(copy)
    for key in IDENTIFYING:
        assert str(a.get(key, "")) == str(b.get(key, "")), f"{what}: {key} of {original}"
    pa, pb = decoded(a), decoded(b)
    assert (pa is None) == (pb is None), f"{what}: pixel data of {original}"
    if pa is not None:
        assert pa.shape == pb.shape and np.array_equal(pa, pb), \
            f"{what}: pixel values of {original}"


def archive_sops(archive) -> list[str]:
    """Every SOP Instance UID the archive holds, one entry per stored instance (Orthanc's
    own REST API, not DICOMweb), so a duplicate would show twice."""
    out = []
    for oid in archive.rest("/instances"):
        out.append(archive.rest(f"/instances/{oid}/simplified-tags")["SOPInstanceUID"])
    return out
