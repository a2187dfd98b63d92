"""The clean source series the fuzz corpus is made from, prepared once into a cache folder.

Each base is one real single-frame series from ``shared/data``, sorted along its slice
normal, with every slice's reference kept beside it: the physical values (stored values
through Rescale Slope/Intercept, decoded by pydicom from the unmutated file) and the
geometry its own header gives (ImagePositionPatient, ImageOrientationPatient, PixelSpacing).
That reference is what "an intact slice loads" is checked against.

``dcm_qa_ts`` holds one Siemens mosaic in nine transfer syntaxes; it becomes a series of
plain 384×384 slices (mosaic markers and Siemens private groups removed, the same compressed
codestream kept, each copy moved one slice thickness along the normal), so that folders hold
RLE / JPEG lossless / JPEG-LS / JPEG 2000 slices, one syntax or several mixed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: name → folder (relative to the data folder) of every single-frame base series
SERIES_FOLDERS = {
    "kits_ct": "kits_dupe_positions",
    "mr_hfs": "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag",
    "mr_hfdl": "dcm_qa_decubitus/In/HFDL/2_t1_fl2d_sag",
    "ct_ge_tilt": "dcm_qa_ct/In/GE",
    "ct_philips_tilt": "dcm_qa_ct/In/Philips/S21610/S2010",
    "seg_ct3": "dcmqi_seg/data/segmentations/ct-3slice",
}
#: dcm_qa_ts file → base name (3.dcm, big endian, is written by pydicom 3 only with warnings)
TS_FILES = {"ts_explicit": 1, "ts_implicit": 2, "ts_rle": 4, "ts_jpegll": 5, "ts_jpegls": 7,
            "ts_j2k": 9}
TS_SLICES = 12
#: extra non-slice files some folders get: a SEG over seg_ct3 (mutable, never "intact")
EXTRA_FILES = {"seg_ct3": "dcmqi_seg/data/segmentations/liver.dcm"}
CACHE_VERSION = 2


@dataclass
class BaseSlice:
    """One clean slice: its file in the cache and its reference."""

    file: str  # path of the clean file (cache copy)
    ref: str  # .npy of the physical values, float64 [rows, cols]
    sop_uid: str
    position: list[float]
    orientation: list[float]
    spacing: list[float]  # PixelSpacing: row spacing, column spacing (mm)


def _physical(ds) -> np.ndarray:
    arr = ds.pixel_array.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return arr * slope + intercept


def _normal_order(dss) -> list[int]:
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    t = [float(np.dot(normal, np.asarray(d.ImagePositionPatient, dtype=float))) for d in dss]
    return sorted(range(len(dss)), key=lambda i: t[i])


def _slice_record(ds, file: Path, ref: Path, arr: np.ndarray) -> BaseSlice:
    small = arr.astype(np.int16)  # most slices hold integers: keep the cache small
    np.save(ref, small if np.array_equal(small, arr) else arr.astype(np.float32))
    return BaseSlice(str(file), str(ref), str(ds.SOPInstanceUID),
                     [float(v) for v in ds.ImagePositionPatient],
                     [float(v) for v in ds.ImageOrientationPatient],
                     [float(v) for v in ds.PixelSpacing])


def _prepare_series(src: Path, out: Path) -> list[BaseSlice]:
    import pydicom

    dss = []
    for p in sorted(src.iterdir()):
        if not p.is_file():
            continue
        ds = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        if "ImagePositionPatient" in ds and ds.get("Rows"):
            dss.append((p, ds))
    files = [p for p, _ in dss]
    slices = []
    for k, i in enumerate(_normal_order([d for _, d in dss])):
        target = out / f"s{k:03d}.dcm"
        shutil.copyfile(files[i], target)
        ds = pydicom.dcmread(target)
        slices.append(_slice_record(ds, target, out / f"s{k:03d}.npy", _physical(ds)))
    return slices


def _prepare_ts(data: Path, number: int, out: Path) -> list[BaseSlice]:
    """``TS_SLICES`` plain (non-mosaic) slices with the codestream of dcm_qa_ts/In/N.dcm."""
    import pydicom
    from pydicom.uid import generate_uid

    reference = _physical(pydicom.dcmread(data / "dcm_qa_ts/In/1.dcm"))  # uncompressed copy
    slices = []
    for k in range(TS_SLICES):
        ds = pydicom.dcmread(data / f"dcm_qa_ts/In/{number}.dcm")
        ds.remove_private_tags()
        ds.ImageType = [v for v in ds.ImageType if v != "MOSAIC"]
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        pos = np.asarray(ds.ImagePositionPatient, dtype=float) + k * 3.6 * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.SliceLocation = f"{float(np.dot(normal, pos)):.6f}"
        ds.InstanceNumber = k + 1
        ds.SeriesNumber = 100
        # one series for every syntax, so that folders can mix them; UIDs fixed per slice
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["medview-fuzz-ts", str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["medview-fuzz-ts-series"])
        target = out / f"s{k:03d}.dcm"
        ds.save_as(target)
        slices.append(_slice_record(ds, target, out / f"s{k:03d}.npy", reference))
    return slices


def prepare_bases(data: Path, cache: Path) -> dict[str, list[BaseSlice]]:
    """Every base series, prepared into ``cache`` (reused when already there)."""
    cache = Path(cache)
    index = cache / "bases.json"
    if index.exists():
        saved = json.loads(index.read_text())
        if saved.get("version") == CACHE_VERSION and saved.get("data") == str(data):
            return {k: [BaseSlice(**s) for s in v] for k, v in saved["bases"].items()}
    if cache.exists():
        shutil.rmtree(cache)
    bases: dict[str, list[BaseSlice]] = {}
    for name, rel in SERIES_FOLDERS.items():
        (cache / name).mkdir(parents=True)
        bases[name] = _prepare_series(Path(data) / rel, cache / name)
    for name, number in TS_FILES.items():
        (cache / name).mkdir(parents=True)
        bases[name] = _prepare_ts(Path(data), number, cache / name)
    index.write_text(json.dumps({"version": CACHE_VERSION, "data": str(data),
                                 "bases": {k: [asdict(s) for s in v] for k, v in bases.items()}}))
    return bases
