"""Seeded, deterministic corpus folders: 3–12 clean slices of one base series, some mutated.

:func:`make_case` decides everything about folder ``index`` of corpus ``seed`` (which base,
which slices, which files are mutated and how) from ``random.Random(f"{seed}:{index}")``;
:func:`write_case` materialises it. The same (seed, index) always gives byte-identical files,
so a finding is reproduced with ``make_case(bases, seed, index)`` alone. Every file is
recorded with the mutations applied to it; files without any are *intact* (byte-identical
to the clean slice whose reference values :mod:`bases` keeps).

Mutations come in two kinds: element edits made with pydicom on the clean dataset (values
written raw, so that nothing validates them away) and byte edits on the encoded file.
"""

from __future__ import annotations

import io
import random
import struct
import warnings
from pathlib import Path

from fuzz.bases import EXTRA_FILES, BaseSlice
from fuzz.rawbytes import BYTE_MUTATIONS, garbage_file

FAMILIES = {  # family → (weight, bases)
    "kits_ct": (2, ["kits_ct"]),
    "mr": (2, ["mr_hfs", "mr_hfdl"]),
    "ct_tilt": (2, ["ct_ge_tilt", "ct_philips_tilt"]),
    "seg_ct3": (1, ["seg_ct3"]),
    "ts": (3, ["ts_explicit", "ts_implicit", "ts_rle", "ts_jpegll", "ts_jpegls", "ts_j2k"]),
}

_TEXT = {  # element keyword → (tag, VR, odd values)
    "NumberOfFrames": (0x00280008, "IS", ["0", "-1", "2", "3", "2000000", "2147483647",
                                          "1e9", "abc", ""]),
    "PhotometricInterpretation": (0x00280004, "CS", [
        "PALETTE COLOR", "YBR_FULL_422", "YBR_FULL", "RGB", "YBR_ICT", "YBR_RCT",
        "MONOCHROME1", "ARGB", "HSV", "", "XYZ"]),
    "ImagePositionPatient": (0x00200032, "DS", [
        "1e308\\0\\0", "NaN\\NaN\\NaN", "inf\\0\\0", "0\\0", "", "abc\\1\\2",
        "-1e308\\1e308\\0", "1e6\\1e6\\1e6"]),
    "ImageOrientationPatient": (0x00200037, "DS", [
        "0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "NaN\\0\\0\\0\\1\\0", "1e308\\0\\0\\0\\1\\0",
        "1\\0\\0", "0\\1\\0\\0\\0\\-1"]),
    "PixelSpacing": (0x00280030, "DS", ["0\\0", "-1\\-1", "NaN\\1", "1e308\\1e308", "1", ""]),
    "RescaleSlope": (0x00281053, "DS", ["0", "NaN", "1e308", "-1e-308", "abc"]),
    "RescaleIntercept": (0x00281052, "DS", ["1e308", "NaN", "-inf"]),
    "SOPInstanceUID": (0x00080018, "UI", ["../../x", "", "1.2.3" * 12, "1.2.abc"]),
}
_USHORT = {  # element keyword → (tag, odd values)
    "Rows": (0x00280010, [0, 1, 2, 65535, "x2", "-1", "+1"]),
    "Columns": (0x00280011, [0, 1, 2, 65535, "x2", "-1", "+1"]),
    "BitsAllocated": (0x00280100, [0, 1, 7, 12, 24, 32, 64, 255]),
    "BitsStored": (0x00280101, [0, 17, 33, 64]),
    "HighBit": (0x00280102, [0, 31, 200]),
    "SamplesPerPixel": (0x00280002, [0, 2, 3, 4, 65535]),
    "PixelRepresentation": (0x00280103, [2, 65535]),
}
#: mutation kind → weight (element edits, then byte edits; see BYTE_MUTATIONS)
ELEMENT_MUTATIONS = {"text": 6, "ushort": 6, "dup_sop": 1, "dup_position": 1, "deep_sequence": 1}
_DEEP_TAG = 0x00091099
_MARKER = b"MEDVIEW-FUZZ-DEEP-SEQUENCE-MARKER"


def make_case(bases: dict[str, list[BaseSlice]], seed: int, index: int) -> dict:
    """The recipe of folder ``index`` of corpus ``seed`` (JSON-able; no files written)."""
    rng = random.Random(f"{seed}:{index}")
    family = rng.choices(list(FAMILIES), weights=[w for w, _ in FAMILIES.values()])[0]
    names = FAMILIES[family][1]
    base = rng.choice(names)
    size = len(bases[base])
    n = min(size, rng.randint(3, 12))
    start = rng.randrange(size - n + 1)
    picks = list(range(start, start + n))
    if family == "ts" and rng.random() < 0.4:  # mixed syntaxes in one series
        slice_bases = [rng.choice(names) for _ in picks]
    else:
        slice_bases = [base] * n
    if rng.random() < 0.15:
        mutated = set(range(n))
    else:
        mutated = set(rng.sample(range(n), rng.randint(1, max(1, n - 1))))
    used = set()
    files = []
    for k, (b, s) in enumerate(zip(slice_bases, picks, strict=True)):
        name = _unique_name(rng, used)
        muts = _pick_mutations(rng) if k in mutated else []
        files.append({"name": name, "base": b, "slice": s, "intact": not muts,
                      "mutations": muts, "seed": rng.randrange(2**32)})
    if base in EXTRA_FILES and rng.random() < 0.5:
        muts = _pick_mutations(rng) if rng.random() < 0.5 else []
        files.append({"name": _unique_name(rng, used), "extra": EXTRA_FILES[base],
                      "intact": False, "mutations": muts, "seed": rng.randrange(2**32)})
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        files.append({"name": _unique_name(rng, used), "garbage": True, "intact": False,
                      "mutations": [{"kind": "garbage"}], "seed": rng.randrange(2**32)})
    return {"seed": seed, "index": index, "family": family, "base": base, "files": files}


def _unique_name(rng: random.Random, used: set) -> str:
    while True:
        name = f"IM{rng.randrange(10**6):06d}" + rng.choice([".dcm", ".dcm", "", ".DCM"])
        if name not in used:
            used.add(name)
            return name


def _pick_mutations(rng: random.Random) -> list[dict]:
    count = rng.choice([1, 1, 1, 2, 2, 3])
    kinds = {**ELEMENT_MUTATIONS, **{k: w for k, (w, _) in BYTE_MUTATIONS.items()}}
    chosen = rng.choices(list(kinds), weights=list(kinds.values()), k=count)
    out = []
    for kind in chosen:
        m = {"kind": kind}
        if kind == "text":
            key = rng.choice(list(_TEXT))
            m.update(element=key, value=rng.choice(_TEXT[key][2]))
        elif kind == "ushort":
            key = rng.choice(list(_USHORT))
            m.update(element=key, value=rng.choice(_USHORT[key][1]))
        elif kind == "deep_sequence":
            m.update(depth=rng.choice([64, 1000, 20000]), width=rng.choice([1, 1, 200]))
        out.append(m)
    # element edits first (they re-encode the dataset), byte edits on the result
    return sorted(out, key=lambda m: m["kind"] not in ELEMENT_MUTATIONS)


# ---------------------------------------------------------------------------------------------
# writing a case
# ---------------------------------------------------------------------------------------------
def write_case(case: dict, bases: dict[str, list[BaseSlice]], folder: Path, data: Path,
               *, clean: bool = False) -> Path:
    """Write the files of ``case`` into ``folder`` (made). ``clean``: unmutated slices only.

    With ``clean`` the folder holds the same slices as the case, each as its clean copy, and
    no garbage or extra file: what every tool is measured on to know which intact slices it
    loads when nothing is broken.
    """
    folder = Path(folder)
    folder.mkdir(parents=True)
    with warnings.catch_warnings():  # pydicom warns about the values we break on purpose
        warnings.simplefilter("ignore")
        _write_files(case, bases, folder, data, clean)
    return folder


def _write_files(case: dict, bases, folder: Path, data: Path, clean: bool) -> None:
    for f in case["files"]:
        if clean and "slice" not in f:
            continue
        rng = random.Random(f["seed"])
        if f.get("garbage"):
            data_bytes = garbage_file(rng)
        else:
            src = (Path(data) / f["extra"] if "extra" in f
                   else Path(bases[f["base"]][f["slice"]].file))
            data_bytes = src.read_bytes()
            if f["mutations"] and not clean:
                try:
                    data_bytes = mutate_bytes(data_bytes, f["mutations"], rng, case, bases)
                except (ValueError, IndexError, struct.error):
                    # a mutation that cannot apply to what earlier ones left (a tiny file):
                    # the file still differs from the clean one, deterministically
                    data_bytes = data_bytes[: len(data_bytes) // 2]
        (folder / f["name"]).write_bytes(data_bytes)


def mutate_bytes(data: bytes, mutations: list[dict], rng: random.Random, case: dict,
                 bases: dict[str, list[BaseSlice]]) -> bytes:
    """``data`` with ``mutations`` applied in order (element edits, then byte edits)."""
    element = [m for m in mutations if m["kind"] in ELEMENT_MUTATIONS]
    if element:
        data = _edit_elements(data, element, rng, case, bases)
    for m in mutations:
        if m["kind"] in BYTE_MUTATIONS:
            data = BYTE_MUTATIONS[m["kind"]][1](data, rng)
    return data


def _raw(tag: int, vr: str, value: bytes, little: bool, implicit: bool):
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    return RawDataElement(Tag(tag), None if implicit else vr, len(value), value, 0,
                          implicit, little)


def _text(value: str) -> bytes:
    raw = value.encode("latin-1")
    return raw + (b" " if len(raw) % 2 else b"")


def _edit_elements(data: bytes, mutations: list[dict], rng: random.Random, case: dict,
                   bases) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    little = ds.original_encoding[1] if ds.original_encoding[1] is not None else True
    implicit = bool(ds.original_encoding[0])
    others = [bases[f["base"]][f["slice"]] for f in case["files"] if "slice" in f]
    deep = None
    for m in mutations:
        kind = m["kind"]
        if kind == "text":
            tag, vr, _ = _TEXT[m["element"]]
            ds[tag] = _raw(tag, vr, _text(str(m["value"])), little, implicit)
        elif kind == "ushort":
            tag, _ = _USHORT[m["element"]]
            value = m["value"]
            current = int(ds.get(tag).value if tag in ds and ds.get(tag).value else 0)
            if value == "x2":
                value = current * 2
            elif value == "-1":
                value = current - 1
            elif value == "+1":
                value = current + 1
            value = max(0, min(65535, int(value)))
            ds[tag] = _raw(tag, "US", struct.pack("<H" if little else ">H", value),
                           little, implicit)
        elif kind == "dup_sop" and others:
            uid = rng.choice(others).sop_uid
            ds[0x00080018] = _raw(0x00080018, "UI", _text(uid).replace(b" ", b"\0"),
                                  little, implicit)
            if getattr(ds, "file_meta", None) is not None:
                ds.file_meta.MediaStorageSOPInstanceUID = uid
        elif kind == "dup_position" and others:
            pos = "\\".join(f"{v:.6g}" for v in rng.choice(others).position)
            ds[0x00200032] = _raw(0x00200032, "DS", _text(pos), little, implicit)
        elif kind == "deep_sequence":
            deep = m
            ds[_DEEP_TAG] = _raw(_DEEP_TAG, "OB", _MARKER + b"\0", little, implicit)
    buf = io.BytesIO()
    ds.save_as(buf)
    out = buf.getvalue()
    if deep is not None:
        out = _insert_deep(out, deep["depth"], deep["width"], little, implicit)
    return out


def _insert_deep(data: bytes, depth: int, width: int, little: bool, implicit: bool) -> bytes:
    """Replace the marker element by a sequence nested ``depth`` deep (``width`` items)."""
    at = data.find(_MARKER)
    if at < 0:
        return data
    head = 8 if implicit else 12
    end = at + len(_MARKER) + 1
    e = "<" if little else ">"
    tag = struct.pack(e + "HH", _DEEP_TAG >> 16, _DEEP_TAG & 0xFFFF)
    seq_open = tag + (b"" if implicit else b"SQ\0\0") + b"\xff\xff\xff\xff"
    item = struct.pack(e + "HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
    inner = b""
    if width > 1:  # a wide sequence at the bottom: many empty items
        inner = seq_open + (item + item_end) * (width * 50) + seq_end
    nested = (seq_open + item) * depth + inner + (item_end + seq_end) * depth
    return data[: at - head] + nested + data[end:]
