# Over 400 lines on purpose: the fields and their decoders are one schema.
"""The fields the header scan reads, and how their raw bytes become an :class:`InstanceHeader`.

Why one module: the one decoding of both readers' raw trees, so they cannot disagree.

Both readers of :mod:`medview.dicom.scan.scanner` (the fast parser in
:mod:`medview.dicom.scan._fastparse` and the pydicom path in :mod:`medview.dicom.scan._pydicom`)
produce the same *raw tree* (the undecoded bytes of the elements listed here); :func:`_build` turns
it into an
:class:`InstanceHeader`, so they cannot disagree on how a value is decoded.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings

from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan._checks import TXT, orientation_problem, value_problem
from medview.dicom.scan._memo import memo_check, orientation_problem_of, preamble_warning_of
from medview.dicom.scan.header import FrameInfo, InstanceHeader

log = logging.getLogger("medview.dicom.scan.scanner")  # records keep the public module's name

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE = {IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE}

_UNDEFINED = 0xFFFFFFFF
# key of the 128-byte preamble in the meta raw tree (no DICOM tag is negative)
PREAMBLE = -1
_PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005
_SHARED_FG = 0x52009229
_PER_FRAME_FG = 0x52009230
_SIEMENS_MR = "SIEMENS MR HEADER"
_SIEMENS_CSA = "SIEMENS CSA HEADER"

_BINARY_FORMAT = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "FL": "f",
    "FD": "d",
    "UV": "Q",
    "SV": "q",
}
_TXT = TXT  # pseudo-VR of values pydicom had already converted to text

# The data elements medview reads: tag -> (field, default VR, kind). Kinds: "str" (whole
# text, stripped), "strs" (tuple of values), "int"/"float" (first value), "vec2/3/6" (tuple of
# exactly n floats), "ints" (tuple of ints).
_TOP_FIELDS: dict[int, tuple[str, str, str]] = {
    0x00080008: ("image_type", "CS", "strs"),
    0x00080016: ("sop_class_uid", "UI", "str"),
    0x00080018: ("sop_instance_uid", "UI", "str"),
    0x00080020: ("study_date", "DA", "str"),
    0x00080030: ("study_time", "TM", "str"),
    0x00080032: ("acquisition_time", "TM", "str"),
    0x00080050: ("accession_number", "SH", "str"),
    0x00080060: ("modality", "CS", "str"),
    0x00080070: ("manufacturer", "LO", "str"),
    0x00081030: ("study_description", "LO", "str"),
    0x0008103E: ("series_description", "LO", "str"),
    0x00100010: ("patient_name", "PN", "str"),
    0x00100020: ("patient_id", "LO", "str"),
    0x00100030: ("patient_birth_date", "DA", "str"),
    0x00100040: ("patient_sex", "CS", "str"),
    0x00180015: ("body_part", "CS", "str"),
    0x00180050: ("slice_thickness", "DS", "float"),
    0x00180081: ("echo_time", "DS", "float"),
    0x00180086: ("echo_number", "IS", "int"),
    0x00180088: ("spacing_between_slices", "DS", "float"),
    0x00181060: ("trigger_time", "DS", "float"),
    0x00181120: ("gantry_tilt", "DS", "float"),
    0x0020000D: ("study_instance_uid", "UI", "str"),
    0x0020000E: ("series_instance_uid", "UI", "str"),
    0x00200011: ("series_number", "IS", "int"),
    0x00200012: ("acquisition_number", "IS", "int"),
    0x00200013: ("instance_number", "IS", "int"),
    0x00200032: ("image_position", "DS", "vec3"),
    0x00200037: ("image_orientation", "DS", "vec6"),
    0x00200052: ("frame_of_reference_uid", "UI", "str"),
    0x00200100: ("temporal_position", "IS", "int"),
    0x00280002: ("samples_per_pixel", "US", "int"),
    0x00280004: ("photometric_interpretation", "CS", "str"),
    0x00280006: ("planar_configuration", "US", "int"),
    0x00280008: ("number_of_frames", "IS", "int"),
    0x00280010: ("rows", "US", "int"),
    0x00280011: ("columns", "US", "int"),
    0x00280030: ("pixel_spacing", "DS", "vec2"),
    0x00280100: ("bits_allocated", "US", "int"),
    0x00280101: ("bits_stored", "US", "int"),
    0x00280102: ("high_bit", "US", "int"),
    0x00280103: ("pixel_representation", "US", "int"),
    0x00281050: ("window_center", "DS", "float"),
    0x00281051: ("window_width", "DS", "float"),
    0x00281052: ("rescale_intercept", "DS", "float"),
    0x00281053: ("rescale_slope", "DS", "float"),
    0x00281054: ("rescale_type", "LO", "str"),
}
_META_FIELDS: dict[int, tuple[str, str, str]] = {
    0x00020002: ("media_sop_class_uid", "UI", "str"),
    0x00020003: ("media_sop_instance_uid", "UI", "str"),
    0x00020010: ("transfer_syntax_uid", "UI", "str"),
}

# Functional groups: group sequence -> {leaf tag: (FrameInfo field, default VR, kind)}.
_FRAME_GROUPS: dict[int, dict[int, tuple[str, str, str]]] = {
    0x00209113: {0x00200032: ("image_position", "DS", "vec3")},  # PlanePositionSequence
    0x00209116: {0x00200037: ("image_orientation", "DS", "vec6")},  # PlaneOrientationSequence
    0x00289110: {  # PixelMeasuresSequence
        0x00280030: ("pixel_spacing", "DS", "vec2"),
        0x00180050: ("slice_thickness", "DS", "float"),
    },
    0x00289145: {  # PixelValueTransformationSequence
        0x00281053: ("rescale_slope", "DS", "float"),
        0x00281052: ("rescale_intercept", "DS", "float"),
    },
    0x00209111: {  # FrameContentSequence
        0x00209056: ("stack_id", "SH", "str"),
        0x00209057: ("in_stack_position", "UL", "int"),
        0x00209128: ("temporal_position", "UL", "int"),
        0x00209157: ("dimension_index", "UL", "ints"),
    },
    0x00189114: {0x00189082: ("echo_time", "FD", "float")},  # MREchoSequence
}

# Shared functional groups of a multi-frame without per-frame groups: they describe every
# frame, so they stand in for the top-level attributes the image lacks (header field names).
_SHARED_TOP: dict[int, dict[int, tuple[str, str, str]]] = {
    0x00209113: {0x00200032: ("image_position", "DS", "vec3")},
    0x00209116: {0x00200037: ("image_orientation", "DS", "vec6")},
    0x00289110: {
        0x00280030: ("pixel_spacing", "DS", "vec2"),
        0x00180050: ("slice_thickness", "DS", "float"),
        0x00180088: ("spacing_between_slices", "DS", "float"),
    },
    0x00289145: {
        0x00281053: ("rescale_slope", "DS", "float"),
        0x00281052: ("rescale_intercept", "DS", "float"),
    },
}

# Schema of the raw tree: tag -> None for a value to keep, a dict for a sequence to step into.
Schema = dict[int, "Schema | None"]
_GROUP_SCHEMA: Schema = {sq: dict.fromkeys(leaves) for sq, leaves in _FRAME_GROUPS.items()}
_SHARED_SCHEMA: Schema = {
    sq: {**dict.fromkeys(_FRAME_GROUPS.get(sq, {})), **dict.fromkeys(_SHARED_TOP.get(sq, {}))}
    for sq in {**_FRAME_GROUPS, **_SHARED_TOP}
}
_PRIVATE_TAGS = (
    [(g << 16) | e for g in (0x0019, 0x0029) for e in range(0x10, 0x100)]  # creators
    + [(0x0019 << 16) | (b << 8) | 0x0A for b in range(0x10, 0x100)]  # NumberOfImagesInMosaic
    + [(0x0029 << 16) | (b << 8) | 0x10 for b in range(0x10, 0x100)]  # CSA image header
)
TOP_SCHEMA: Schema = {
    **dict.fromkeys(_TOP_FIELDS),
    _CHARSET: None,
    **dict.fromkeys(_PRIVATE_TAGS),
    _SHARED_FG: _SHARED_SCHEMA,
    _PER_FRAME_FG: _GROUP_SCHEMA,
}

# A raw tree maps tags to (VR or None, value bytes) or to a list of item trees.
RawTree = dict[int, "tuple[str | None, bytes] | list[RawTree]"]


_PLAIN_CHARSETS = {"", "ISO_IR 6", "ISO_IR 100", "ISO 2022 IR 6", "ISO 2022 IR 100"}


def _text(raw: bytes, charsets: tuple[str, ...]) -> str:
    if all(c in _PLAIN_CHARSETS for c in charsets):
        return raw.decode("latin-1")
    if charsets == ("ISO_IR 192",):
        return raw.decode("utf-8", "replace")
    from pydicom.charset import convert_encodings, decode_bytes

    try:
        return decode_bytes(raw, convert_encodings(list(charsets)), {0x5C, 0x3D, 0x5E})
    except (ValueError, LookupError, UnicodeError):
        return raw.decode("latin-1")  # a damaged Specific Character Set: keep the bytes


def _values(raw: tuple[str | None, bytes], default_vr: str, little: bool, charsets) -> list:
    vr, data = raw
    if vr in (None, "UN", "OB", "OW"):
        vr = default_vr
    fmt = _BINARY_FORMAT.get(vr) if vr != _TXT else None
    if fmt is not None:
        size = struct.calcsize(fmt)
        n = len(data) // size
        return list(struct.unpack(f"{'<' if little else '>'}{n}{fmt}", data[: n * size]))
    text = _text(data, charsets) if charsets else data.decode("latin-1")
    return [v.strip(" \x00") for v in text.split("\\")]


def _to_int(v) -> int | None:
    if isinstance(v, int):
        return v
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return int(f) if f.is_integer() else None


def _to_float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def _decode(raw, default_vr: str, kind: str, little: bool, charsets):
    """Decode one raw value as ``kind``; None when absent or unusable."""
    if raw is None or isinstance(raw, list):
        return None
    if kind == "str":
        vr, data = raw
        if vr in _BINARY_FORMAT:
            return "\\".join(str(v) for v in _values(raw, default_vr, little, charsets))
        text = _text(data, charsets) if charsets else data.decode("latin-1")
        return text.strip(" \x00")
    values = _values(raw, default_vr, little, charsets)
    if kind == "strs":
        return tuple(values) if values != [""] else ()
    if kind == "int":
        return _to_int(values[0]) if values else None
    if kind == "float":
        return _to_float(values[0]) if values else None
    if kind == "ints":
        ints = [_to_int(v) for v in values if v != ""]
        return tuple(ints) if ints and None not in ints else None
    n = int(kind[3:])  # vecN
    floats = [_to_float(v) for v in values]
    return tuple(floats) if len(floats) == n and None not in floats else None


def _charsets(tree: RawTree) -> tuple[str, ...]:
    raw = tree.get(_CHARSET)
    if raw is None or isinstance(raw, list):
        return ()
    return memo_check("charset", raw[1], _parse_charsets)


def _parse_charsets(data: bytes) -> tuple[str, ...]:
    charsets = tuple(v.strip(" \x00") for v in data.decode("latin-1").split("\\"))
    # the plain ones decode as latin-1, which is what an empty tuple means to _text's callers
    return () if all(c in _PLAIN_CHARSETS for c in charsets) else charsets


def _private(tree: RawTree, group: int, creator: str, elem: int) -> tuple | None:
    for block in range(0x10, 0x100):
        raw = tree.get((group << 16) | block)
        if isinstance(raw, tuple) and raw[1].decode("latin-1").strip(" \x00") == creator:
            value = tree.get((group << 16) | (block << 8) | elem)
            return value if isinstance(value, tuple) else None
    return None


_csareader = None


def _csa():
    global _csareader
    if _csareader is None:
        with warnings.catch_warnings():
            # nibabel.nicom warns on import that its DICOM readers are experimental; we only
            # use its CSA header parser
            warnings.simplefilter("ignore", UserWarning)
            from nibabel.nicom import csareader
        _csareader = csareader
    return _csareader


def _siemens_mosaic(tree: RawTree, little: bool) -> tuple[int | None, tuple | None]:
    count = None
    raw = _private(tree, 0x0019, _SIEMENS_MR, 0x0A)
    if raw is not None:
        count = _decode(raw, "US", "int", little, ())
    normal = None
    raw = _private(tree, 0x0029, _SIEMENS_CSA, 0x10)
    if raw is not None and raw[1]:
        csa = _csa()
        try:
            info = csa.read(raw[1])
            if count is None:
                n = csa.get_n_mosaic(info)
                count = None if n is None else int(n)
            vec = csa.get_slice_normal(info)
            if vec is not None and len(vec) == 3:
                normal = tuple(float(x) for x in vec)
        except (
            csa.CSAError,
            AssertionError,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            UnicodeDecodeError,
            OverflowError,
            struct.error,
        ) as exc:
            # nibabel asserts on damaged CSA headers; they only cost us the mosaic hints
            log.debug("damaged Siemens CSA header ignored: %r", exc)
    return count, normal


def _frames(tree: RawTree, little: bool, charsets, problems: list[str]) -> tuple[FrameInfo, ...]:
    per_frame = tree.get(_PER_FRAME_FG)
    if not isinstance(per_frame, list):
        return ()
    shared_items = tree.get(_SHARED_FG)
    shared = shared_items[0] if isinstance(shared_items, list) and shared_items else {}
    frames = []
    for item in per_frame:
        values: dict = {}
        for sq, leaves in _FRAME_GROUPS.items():
            group = item.get(sq)
            if not (isinstance(group, list) and group):
                group = shared.get(sq)
            if not (isinstance(group, list) and group):
                continue
            for tag, (name, vr, kind) in leaves.items():
                values[name] = _decode(group[0].get(tag), vr, kind, little, charsets)
        why = orientation_problem(values.get("image_orientation"))
        if why is not None:
            if why not in problems:
                problems.append(why)
            values["image_orientation"] = None
        frames.append(FrameInfo(**values))
    return tuple(frames)


def _apply_shared_groups(h: InstanceHeader, tree: RawTree, little: bool, charsets) -> None:
    """Top-level geometry and rescale from the shared functional groups, where absent.

    An enhanced multi-frame without per-frame groups keeps its pixel spacing, orientation,
    position and rescale only there (PS3.3 C.7.6.16); without this it loaded on a 1 mm grid.
    """
    items = tree.get(_SHARED_FG)
    if not (isinstance(items, list) and items):
        return
    for sq, leaves in _SHARED_TOP.items():
        group = items[0].get(sq)
        if not (isinstance(group, list) and group):
            continue
        for tag, (name, vr, kind) in leaves.items():
            if tree.get(tag) is not None:
                continue  # the image's own top-level value wins
            value = _decode(group[0].get(tag), vr, kind, little, charsets)
            if value is not None:
                setattr(h, name, value)


# decoded top-level values by (byte order, character sets) then (tag, raw value): every
# decoded value is immutable (str, int, float, tuple), so sharing them between headers is safe
_MEMO: dict = {}
_MEMO_SIZE = 4096


def _build(
    path: str,
    st: os.stat_result,
    meta: RawTree,
    tree: RawTree,
    ts: str,
    little: bool,
    pixel: tuple | None,
) -> InstanceHeader:
    charsets = _charsets(tree)
    h = InstanceHeader(path=path, file_size=st.st_size, mtime_ns=st.st_mtime_ns)
    h.transfer_syntax_uid = ts
    fields = _TOP_FIELDS
    problems: list[str] = []
    # the files of a series repeat most values byte for byte: decode each once
    memo = _MEMO.get((little, charsets))
    if memo is None or len(memo) >= _MEMO_SIZE:
        if len(_MEMO) >= 16:  # files in many character sets: start again
            _MEMO.clear()
        memo = _MEMO[(little, charsets)] = {}
    for tag, raw in tree.items():
        spec = fields.get(tag)
        if spec is None:
            continue
        if raw.__class__ is tuple:
            key = (tag, raw)
            hit = memo.get(key)
            if hit is None:
                value = _decode(raw, spec[1], spec[2], little, charsets)
                hit = memo[key] = (spec[0], value, value_problem(tag, raw, spec, value))
            name, value, problem = hit
        else:
            value = _decode(raw, spec[1], spec[2], little, charsets)
            name, problem = spec[0], value_problem(tag, raw, spec, value)
        if problem is not None:
            problems.append(problem)
        if value is not None:
            setattr(h, name, value)
    preamble = meta.get(PREAMBLE)
    polyglot = preamble_warning_of(preamble[1] if isinstance(preamble, tuple) else None)
    if polyglot is not None:
        problems.insert(0, polyglot)
    if not h.sop_class_uid:
        h.sop_class_uid = _decode(meta.get(0x00020002), "UI", "str", True, ()) or ""
    if not h.sop_instance_uid:
        h.sop_instance_uid = _decode(meta.get(0x00020003), "UI", "str", True, ()) or ""
    if h.number_of_frames < 1:
        h.number_of_frames = 1
    if pixel is None:
        from medview.dicom.scan._checks import sop_class_name

        name = sop_class_name(h.sop_class_uid) if h.sop_class_uid else "unknown SOP class"
        if not h.sop_class_uid:
            # every DICOM object names its SOP class early (meta header or data set)
            raise UnreadableFileError(
                path, f"truncated: the file ends at byte {st.st_size:,} before its SOP Class "
                "UID and pixel data (or it is not a DICOM object)"
            )
        if (h.rows > 0 and h.columns > 0) or name.endswith("Image Storage"):
            # an image whose Pixel Data never comes: the file was cut
            size = f" {h.rows}×{h.columns}" if h.rows > 0 and h.columns > 0 else ""
            raise UnreadableFileError(
                path, f"truncated or incomplete: the file ends at byte {st.st_size:,} without "
                f"the Pixel Data element its{size} image ({name}) needs"
            )
        raise UnreadableFileError(
            path, f"no pixel data (a DICOMDIR/SR/presentation state? SOP class: {name})"
        )
    tag, offset, length = pixel
    h.has_pixel_data = True
    h.pixel_data_length = -1 if length == _UNDEFINED else int(length)
    if tag == _PIXEL_DATA and ts in _NATIVE and length != _UNDEFINED and offset is not None:
        h.pixel_data_offset = int(offset)
    if "MOSAIC" in h.image_type:
        h.mosaic_count, h.csa_slice_normal = _siemens_mosaic(tree, little)
    frame_problems: list[str] = []
    h.frames = _frames(tree, little, charsets, frame_problems)
    problems.extend(f"(0020,0037) ImageOrientationPatient of a frame ignored: {why}"
                    for why in frame_problems)
    if not h.frames:
        _apply_shared_groups(h, tree, little, charsets)
    why = orientation_problem_of(h.image_orientation)
    if why is not None:
        # a singular direction would reach the Volume; without it the slice has no geometry
        shown = "\\".join(f"{v:g}" for v in h.image_orientation)  # type: ignore[union-attr]
        problems.append(f"(0020,0037) ImageOrientationPatient: invalid value '{shown}' "
                        f"({why}); ignored")
        h.image_orientation = None
    if problems:
        h.warnings = tuple(problems)  # shown with the series (assemble), not logged per file
    return h
