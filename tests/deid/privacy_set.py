"""A privacy test set: real series from the shared data with identity planted where it hides.

:func:`build` copies a few real instances (a GE CT from dcmqi, a Siemens MR from
dcm_qa_decubitus) and makes an ultrasound-like image from a CT slice with the patient's name
and ID drawn into its pixels (``cv2.putText``). Into every instance it plants the patient's
names and IDs, physicians, institution, station, device serial, accession number, dates, free
text in descriptions and comments, private attributes (a private block and a private
sequence), names nested two sequences deep, an overlay with a comment and a curve.

:func:`score` is the MIDI-B measure: of the actions the profile requires on these instances,
the share done right (each planted value gone from its attribute, each UID replaced
consistently, each kept attribute unchanged, private attributes gone, the de-identification
marked). Importable by the benchmark (``benchmarks/deid.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAME = "Zyxwvut^Quinbert"
PLANTED = {
    "PatientName": NAME,
    "PatientID": "MRN-PLANT-8812734",
    "OtherPatientIDs": "OPID-5550123",
    "PatientBirthDate": "19451231",
    "PatientAddress": "12 Plantlane Sometown",
    "PatientTelephoneNumbers": "555-0199-PLANT",
    "PatientComments": "Zyxwvut says hello",
    "ReferringPhysicianName": "Drplanted^Ormsby",
    "PerformingPhysicianName": "Perfdoc^Walloon",
    "OperatorsName": "Operplant^Techie",
    "InstitutionName": "Plantinstitute General Hospital",
    "InstitutionAddress": "77 Plantstreet Road Sometown",
    "InstitutionalDepartmentName": "Plantdept Radiology",
    "StationName": "PLANTSTATION7",
    "DeviceSerialNumber": "SERIAL-PLANT-4471",
    "AccessionNumber": "ACC-PLANT-99321",
    "StudyID": "STUDYPLANT42",
    "StudyDescription": "CT for Zyxwvut Quinbert MRN-PLANT-8812734",
    "SeriesDescription": "Quinbert follow-up",
    "ImageComments": "patient Zyxwvut called back",
    "ContrastBolusRoute": "route told by Quinbert",   # not in Table E.1-1: free text
    "StudyDate": "20190417",
    "SeriesDate": "20190417",
    "AcquisitionDate": "20190417",
    "ContentDate": "20190417",
}
PRIVATE_VALUES = ("Zyxwvut^Quinbert private", "MRN-PLANT-8812734-PRIV")
NESTED = {"PatientName": "Nestedzyx^Quinbert", "InstitutionName": "Nestedplant Clinic"}
OVERLAY_COMMENT = "overlay of Zyxwvut"
CURVE_TEXT = "curve of Quinbert"
SENDER_AE = "PLANTSENDERAE"
BURNED_IN = ("ZYXWVUT QUINBERT", "MRN 8812734")
#: values that must not survive in any byte of a basic-profile share
IDENTIFYING = sorted({
    *(v for k, v in PLANTED.items() if k not in ("ContrastBolusRoute",)),
    "Zyxwvut", "Quinbert", "Ormsby", "Walloon", "Operplant", "Plantinstitute", "Plantstreet",
    "Plantdept", "PLANTSTATION7", "8812734", "5550123", "Nestedzyx", "Nestedplant", SENDER_AE,
    *PRIVATE_VALUES,
})
KEEP = ("Modality", "SOPClassUID", "Rows", "Columns", "ImagePositionPatient",
        "ImageOrientationPatient", "PixelSpacing", "BitsAllocated", "Manufacturer")
UIDS = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def _sources(data: Path) -> list[Path]:
    ct = sorted((data / "dcmqi_seg/data/segmentations/ct-3slice").iterdir())
    mr = sorted(p for p in (data / "dcm_qa_decubitus/In/HFS").rglob("*") if p.is_file())[:2]
    return [*ct, *mr]


def _plant(ds, pid_suffix: str = "") -> None:
    from pydicom.dataset import Dataset

    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value + (pid_suffix if keyword == "PatientID" else ""))
    ds.file_meta.SourceApplicationEntityTitle = SENDER_AE   # who sent it: a site's name
    block = ds.private_block(0x0009, "PLANTVENDOR", create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUES[0])
    block.add_new(0x02, "LO", PRIVATE_VALUES[1])
    inner = Dataset()
    inner.PatientName = NESTED["PatientName"]
    inner.InstitutionName = NESTED["InstitutionName"]
    block.add_new(0x03, "SQ", [inner])
    # two sequences deep: a request with a name and an institution inside a code item
    deep = Dataset()
    deep.PatientName = NESTED["PatientName"]
    deep.InstitutionName = NESTED["InstitutionName"]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D1100", "SRT", "Head"
    code.AnatomicRegionModifierSequence = [deep]
    ds.AnatomicRegionSequence = [code]
    request = Dataset()
    request.RequestedProcedureDescription = "scan of Quinbert"
    request.ScheduledProcedureStepID = "SPS-PLANT-3321"
    ds.RequestAttributesSequence = [request]
    # an overlay (with its comment) and a curve: whole repeating groups go
    rows, cols = int(ds.Rows), int(ds.Columns)
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", cols)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60004000, "LT", OVERLAY_COMMENT)
    ds.add_new(0x60003000, "OW", np.zeros(rows * cols // 8, np.uint8).tobytes())
    ds.add_new(0x50000022, "LO", CURVE_TEXT)


def _ultrasound(ct_path: Path, out: Path, pid_suffix: str) -> Path:
    """A US-like 8-bit image made from a CT slice, the name and ID drawn into its pixels."""
    import cv2
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.dcmread(ct_path)
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    img = np.clip((hu + 160) / 400 * 255, 0, 255).astype(np.uint8)
    img = cv2.resize(img, (640, 480))
    img[:70] = 0
    cv2.putText(img, BURNED_IN[0], (20, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    cv2.putText(img, BURNED_IN[1], (20, 62), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    for kw in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
               "SliceThickness", "RescaleSlope", "RescaleIntercept", "WindowCenter",
               "WindowWidth", "FrameOfReferenceUID", "PositionReferenceIndicator",
               "SliceLocation", "KVP", "RescaleType", "ImageType"):
        if kw in ds:
            delattr(ds, kw)
    ds.SOPClassUID = US_IMAGE
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = img.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 7, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = img.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = US_IMAGE, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    _plant(ds, pid_suffix)
    ds.save_as(out, enforce_file_format=True)
    return out


def build(data: Path, folder: Path, *, pid_suffix: str = "") -> list[Path]:
    """Write the privacy set into ``folder`` (created); returns its files."""
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(_sources(data)):
        ds = pydicom.dcmread(src)
        ds.decompress() if ds.file_meta.TransferSyntaxUID.is_compressed else None
        _plant(ds, pid_suffix)
        path = folder / f"src{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    ct = _sources(data)[0]
    out.append(_ultrasound(ct, folder / "us.dcm", pid_suffix))
    return out


# -- the score ---------------------------------------------------------------------------------
@dataclass
class Score:
    done: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def check(self, ok: bool, what: str) -> None:
        self.total += 1
        if ok:
            self.done += 1
        else:
            self.failures.append(what)


_UID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def _text(ds, keyword: str) -> str:
    if keyword not in ds:
        return ""
    return str(ds[keyword].value or "")


def _walk_values(ds):
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk_values(item)
        elif elem.VR not in ("OB", "OW", "OF", "OD", "OL", "UN") and elem.value is not None:
            yield str(elem.value)


def score(pairs, *, keep_pixels: bool = True) -> Score:
    """Score de-identified datasets against their sources: ``pairs`` of (source, output)."""
    s = Score()
    uid_map: dict[str, str] = {}
    for src, out in pairs:
        tag = f"{src.SOPClassUID.name if hasattr(src.SOPClassUID, 'name') else ''}"
        for keyword, value in PLANTED.items():
            got = _text(out, keyword)
            plain = value.replace("^", " ").lower()
            s.check(value.lower() not in got.lower() and plain not in got.replace("^", " ")
                    .lower(), f"{tag} {keyword}: planted value left ({got!r})")
        for keyword in ("PatientName", "PatientID"):   # Type 2: present (Z or a pseudonym)
            s.check(keyword in out, f"{tag} {keyword}: removed (Type 2)")
        values = " ".join(_walk_values(out)).lower()
        for v in (*PRIVATE_VALUES, *NESTED.values(), OVERLAY_COMMENT, CURVE_TEXT,
                  "scan of Quinbert", "SPS-PLANT-3321"):
            s.check(v.lower() not in values, f"{tag}: {v!r} left somewhere in the header")
        s.check(not any(e.tag.is_private for e in out.iterall()), f"{tag}: private left")
        s.check(not any(e.tag.group & 0xFF00 in (0x5000, 0x6000) for e in out),
                f"{tag}: overlay/curve group left")
        for keyword in UIDS:
            if keyword not in src:
                continue
            old, new = str(src[keyword].value), _text(out, keyword)
            consistent = uid_map.setdefault(old, new) == new
            s.check(bool(_UID.match(new)) and new != old and consistent and len(new) <= 64,
                    f"{tag} {keyword}: not replaced consistently ({new!r})")
        for keyword in KEEP:
            if keyword in src:
                s.check(keyword in out and out[keyword].value == src[keyword].value,
                        f"{tag} {keyword}: not kept")
        if keep_pixels and src.SOPClassUID != US_IMAGE:
            s.check(out.PixelData == src.PixelData, f"{tag}: pixels changed")
        s.check(SENDER_AE not in str(getattr(out, "file_meta", "")),
                f"{tag}: the sender's AE title left in the file meta")
        s.check(_text(out, "PatientIdentityRemoved") == "YES",
                f"{tag}: Patient Identity Removed not YES")
    return s


def grep_files(paths, needles=IDENTIFYING) -> list[tuple[str, str]]:
    """(file, needle) for every identifying value found in any byte of the files
    (case-insensitive)."""
    found = []
    lowered = [n.lower().encode("utf-8") for n in needles]
    for p in paths:
        data = Path(p).read_bytes().lower()
        found.extend((str(p), n.decode()) for n in lowered if n in data)
    return found
