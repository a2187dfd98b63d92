"""Make the small compressed DICOM samples that ``medview selftest`` decodes.

Usage (from the repository root, in an environment with the test and gui extras)::

    python packaging/make_selftest_samples.py [OUT_DIR]      # default resources/selftest

One slice of the bundled demo study (a real sagittal T1 MR, see resources/demo/README.md) is
reduced to 64×64 (4×4 block mean, still 12-bit) and written once per transfer syntax:
explicit VR little endian (the reference), deflated, RLE (pydicom's encoder), JPEG-LS lossless
(pyjpegls), JPEG 2000 lossless (pylibjpeg-openjpeg), JPEG lossless SV1 (GDCM), and JPEG
baseline on an 8-bit copy (GDCM). ``manifest.json`` lists each file with its transfer syntax,
its reference and how close a lossy decode must come to it. UIDs are derived
from the source's, so running this again gives the same files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "resources" / "demo" / "t1_sag_hfs"
SLICE = 17  # a mid-sagittal slice: brain, skull, neck
SIZE = 64

LABELS = {
    ExplicitVRLittleEndian: "explicit VR little endian",
    DeflatedExplicitVRLittleEndian: "deflated explicit VR little endian",
    RLELossless: "RLE lossless",
    JPEGLSLossless: "JPEG-LS lossless",
    JPEG2000Lossless: "JPEG 2000 lossless",
    JPEGLosslessSV1: "JPEG lossless SV1",
    JPEGBaseline8Bit: "JPEG baseline (8-bit, lossy)",
}

# removed from the copies: not needed to decode or place the slice, and they make files large
_DROP = ("0029",)  # Siemens private CSA headers


def _reduce(ds: pydicom.Dataset) -> np.ndarray:
    a = ds.pixel_array.astype(np.float64)
    f = a.shape[0] // SIZE
    small = a.reshape(SIZE, f, SIZE, f).mean(axis=(1, 3))
    return np.round(small).astype(np.uint16)


def _base(src: pydicom.Dataset, pixels: np.ndarray, name: str) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    for elem in src:
        if elem.tag.is_private or elem.tag == 0x7FE00010:
            continue
        ds.add(copy.deepcopy(elem))
    ds.file_meta = copy.deepcopy(src.file_meta)
    ds.Rows, ds.Columns = pixels.shape
    row, col = (float(v) for v in src.PixelSpacing)
    f = src.Rows // SIZE
    ds.PixelSpacing = [row * f, col * f]
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[src.SeriesInstanceUID, "selftest"])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[src.SOPInstanceUID, "selftest", name])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = "medview selftest sample"
    ds.ImageComments = f"64x64 reduction of a demo study slice, {name}"
    for key in ("LargestImagePixelValue", "SmallestImagePixelValue", "WindowCenter",
                "WindowWidth", "WindowCenterWidthExplanation"):
        if key in ds:
            del ds[key]
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _to_8bit(ds: pydicom.Dataset, pixels: np.ndarray) -> pydicom.Dataset:
    scaled = np.round(pixels.astype(np.float64) * 255.0 / max(int(pixels.max()), 1))
    ds8 = copy.deepcopy(ds)
    ds8.BitsAllocated, ds8.BitsStored, ds8.HighBit = 8, 8, 7
    ds8.PixelData = scaled.astype(np.uint8).tobytes()
    ds8.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SOPInstanceUID, "8bit"])
    ds8.file_meta.MediaStorageSOPInstanceUID = ds8.SOPInstanceUID
    return ds8


def _gdcm_transcode(src: Path, dst: Path, syntax: str) -> None:
    """In a process of its own: GDCM beside pyjpegls's CharLS in one process crashes."""
    proc = subprocess.run([sys.executable, __file__, "--gdcm", str(src), str(dst), syntax],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"GDCM transcoding {src} to {syntax} failed: {proc.stderr[-2000:]}")


def _gdcm_transcode_here(src: Path, dst: Path, syntax: str) -> None:
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(str(src))
    if not reader.Read():
        raise RuntimeError(f"GDCM cannot read {src}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(syntax)))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"GDCM cannot encode {src} as {syntax}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(dst))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"GDCM cannot write {dst}")


def _with_new_uid(path: Path, name: str) -> None:
    """GDCM keeps the source's SOP Instance UID; every sample gets its own."""
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[ds.SOPInstanceUID, name])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


def make(out: Path) -> list[dict]:
    files = sorted(SOURCE.glob("*.dcm"))
    src = pydicom.dcmread(files[SLICE])
    pixels = _reduce(src)
    out.mkdir(parents=True, exist_ok=True)
    entries = []

    def add(name: str, syntax: UID, reference: str, max_mean_abs_error: float) -> None:
        ds = pydicom.dcmread(out / name)
        if ds.file_meta.TransferSyntaxUID != syntax:
            raise RuntimeError(f"{name}: written as {ds.file_meta.TransferSyntaxUID}, "
                               f"wanted {syntax}")
        entries.append({"file": name, "transfer_syntax": str(syntax),
                        "label": LABELS.get(syntax, syntax.name), "reference": reference,
                        "max_mean_abs_error": max_mean_abs_error})

    native = _base(src, pixels, "native")
    native.save_as(out / "native.dcm", enforce_file_format=True)
    add("native.dcm", ExplicitVRLittleEndian, "native.dcm", 0.0)
    native8 = _to_8bit(native, pixels)
    native8.save_as(out / "native_8bit.dcm", enforce_file_format=True)
    add("native_8bit.dcm", ExplicitVRLittleEndian, "native_8bit.dcm", 0.0)
    entries[-1]["label"] += " (8-bit)"

    for name, syntax in [("deflated.dcm", DeflatedExplicitVRLittleEndian),
                         ("rle.dcm", RLELossless),
                         ("jpeg_ls_lossless.dcm", JPEGLSLossless),
                         ("jpeg2000_lossless.dcm", JPEG2000Lossless)]:
        ds = _base(src, pixels, name)
        if syntax == DeflatedExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax, generate_instance_uid=False)
        ds.save_as(out / name, enforce_file_format=True)
        add(name, syntax, "native.dcm", 0.0)

    with tempfile.TemporaryDirectory() as tmp:
        ref16 = Path(tmp) / "ref16.dcm"
        ref8 = Path(tmp) / "ref8.dcm"
        _base(src, pixels, "gdcm").save_as(ref16, enforce_file_format=True)
        native8.save_as(ref8, enforce_file_format=True)
        for name, syntax, ref, reference, err in [
            ("jpeg_lossless_sv1.dcm", JPEGLosslessSV1, ref16, "native.dcm", 0.0),
            # lossy: a mean error bound for 8-bit values. (GDCM's 12-bit JPEG extended output
            # is refused by libjpeg, GDCM and Pillow alike: no sample of that syntax here.)
            ("jpeg_baseline.dcm", JPEGBaseline8Bit, ref8, "native_8bit.dcm", 6.0),
        ]:
            _gdcm_transcode(ref, out / name, str(syntax))
            _with_new_uid(out / name, name)
            add(name, syntax, reference, err)
    return entries


def main(argv: list[str]) -> int:
    if argv[:1] == ["--gdcm"]:
        _gdcm_transcode_here(Path(argv[1]), Path(argv[2]), argv[3])
        return 0
    out = Path(argv[0]) if argv else REPO / "resources" / "selftest"
    tmp = Path(tempfile.mkdtemp(prefix="selftest-", dir=out.parent if out.parent.exists()
                                else None))
    try:
        entries = make(tmp)
        manifest = {
            "source": f"resources/demo/t1_sag_hfs/{sorted(SOURCE.glob('*.dcm'))[SLICE].name}",
            "samples": entries,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / "README.md").write_text(README)
        shutil.copy(SOURCE.parent / "LICENSE", tmp / "LICENSE")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    total = 0
    for e in entries:
        size = (out / e["file"]).stat().st_size
        total += size
        digest = hashlib.sha256((out / e["file"]).read_bytes()).hexdigest()[:12]
        print(f"{e['file']:28s} {e['label']:36s} {size:7,d} B  {digest}")
    print(f"total {total:,} bytes in {out}")
    return 0


README = """\
# Samples for `medview selftest`

One slice of the bundled demo study (`../demo/t1_sag_hfs`, a real sagittal T1 MR by
Chris Rorden from https://github.com/neurolabusc/dcm_qa_decubitus, BSD 2-Clause License, see
`LICENSE` beside this file), reduced to 64×64 pixels (4×4 block mean, 12-bit), without its
private tags, and written once per transfer syntax. `manifest.json` lists every file, its
transfer syntax, the file whose pixels it must decode to, and the mean error allowed for
the lossy ones. Made by `packaging/make_selftest_samples.py`; `medview selftest` decodes each.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
