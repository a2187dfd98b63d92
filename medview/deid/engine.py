"""De-identify one pydicom dataset in place, by Table E.1-1 and the chosen options.

Actions (PS3.15 E.1.1): ``X`` remove, ``Z`` empty, ``D`` a dummy value, ``K`` keep, ``C`` clean
(dates shifted by the patient's offset; text stripped of the identifying values found in the
instance), ``U`` UID replaced by the project's HMAC of it; ``U*`` a reference sequence kept with
its UIDs replaced. What the table does not name gets a careful default:

- private attributes (odd groups), curves (50xx) and overlays (60xx, whole groups): removed;
- sequences: walked (every item, at any depth up to :data:`MAX_DEPTH`; deeper ones removed);
- UIDs: replaced, except those the DICOM standard itself defines (``1.2.840.10008.…``: SOP
  classes, transfer syntaxes, context groups) and coding-scheme/registry UIDs;
- person names: removed; free text (LO SH LT ST UT UC) outside :data:`SAFE_TEXT`: emptied
  (keeps Type 2 attributes present); other dates: shifted, kept or emptied as the table's dates;
  AE titles: emptied; unknown-VR (UN) public attributes: removed;
- everything else (codes, numbers, geometry, pixel data): kept.

Patient's Name and Patient ID become the project's pseudonym of the patient.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

from medview.deid.keys import ProjectKey
from medview.deid.profile import Options, action_table, attribute_name, method_codes, method_text

__all__ = ["MAX_DEPTH", "SAFE_TEXT", "Deidentifier", "Tally"]

MAX_DEPTH = 16
TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})
_DICOM_ROOT = "1.2.840.10008."
_PATIENT_NAME, _PATIENT_ID = 0x00100010, 0x00100020
#: file meta attributes kept: version, SOP class and instance, transfer syntax
_META_KEEP = frozenset({0x00020001, 0x00020002, 0x00020003, 0x00020010})

#: free-text attributes the table does not name that carry no identity and that readers need
SAFE_TEXT = frozenset({
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "CodeValue",
    "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "LongCodeValue",
    "CodingSchemeName", "CodingSchemeResponsibleOrganization", "MappingResourceName",
    "ContextGroupExtensionFlag", "SegmentLabel", "SegmentDescription", "SegmentAlgorithmName",
    "RescaleType", "WindowCenterWidthExplanation", "ContentDescription", "ConvolutionKernel",
    "SequenceName", "ReceiveCoilName", "TransmitCoilName", "FilterType", "LossyImageCompression",
    "PixelSpacingCalibrationDescription", "AlgorithmName", "AlgorithmVersion",
    "LUTExplanation", "CodingSchemeExternalID", "BodyPartExamined", "ImagedNucleus",
    "PulseSequenceName", "Radiopharmaceutical", "ReconstructionMethod",
    "AttenuationCorrectionMethod", "ScatterCorrectionMethod", "RandomsCorrectionMethod",
})
#: UIDs the table does not name that identify a coding scheme or registry, not an instance
_KEEP_UID_KEYWORDS = ("CodingSchemeUID", "ContextUID", "MappingResourceUID",
                      "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID",
                      "CodingSchemeRegistry")
_DUMMY = {"PN": "ANONYMOUS", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "CS": "ANONYMIZED",
          "LT": "ANONYMIZED", "ST": "ANONYMIZED", "UT": "ANONYMIZED", "UC": "ANONYMIZED",
          "AE": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000",
          "AS": "000Y", "IS": "0", "DS": "0", "SS": 0, "US": 0, "SL": 0, "UL": 0, "FL": 0.0,
          "FD": 0.0, "SV": 0, "UV": 0}
_DATE = re.compile(r"^(\d{8})(.*)$")
_DIGITS = re.compile(r"\b\d{4}[-./]?\d{2}[-./]?\d{2}\b|\d{5,}")


@dataclass
class Tally:
    """What was done, by attribute name (never values): the report's counts."""

    removed: Counter = field(default_factory=Counter)
    emptied: Counter = field(default_factory=Counter)
    replaced: Counter = field(default_factory=Counter)
    shifted: Counter = field(default_factory=Counter)
    cleaned: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)     # kept because an option keeps it
    uids: Counter = field(default_factory=Counter)     # UIDs replaced

    def merge(self, other: Tally) -> None:
        for name in ("removed", "emptied", "replaced", "shifted", "cleaned", "kept", "uids"):
            getattr(self, name).update(getattr(other, name))

    def as_dict(self) -> dict:
        return {k: dict(sorted(getattr(self, k).items()))
                for k in ("removed", "emptied", "replaced", "shifted", "cleaned", "kept", "uids")}


def _keep_uid_tags() -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    return frozenset(t for t in (tag_for_keyword(k) for k in _KEEP_UID_KEYWORDS) if t)


def _safe_text_tags() -> frozenset[int]:
    from pydicom.datadict import tag_for_keyword

    return frozenset(t for t in (tag_for_keyword(k) for k in SAFE_TEXT) if t)


def _vr(ds, tag: int, raw) -> str:
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _many(value) -> bool:
    """Whether ``value`` holds several values (a MultiValue or list), not one string-like."""
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


@dataclass
class _Context:
    patient: str            # the identity the derivations are keyed on
    offset: dt.timedelta
    tally: Tally
    pseudonym: str = ""
    root: object = None
    cleaner: re.Pattern | None = None
    gathered: bool = False


class Deidentifier:
    """Apply one profile with one project key to datasets, one at a time.

    Parameters
    ----------
    key : ProjectKey
        The project's key (UIDs, pseudonyms, date offsets).
    options : Options
        The PS3.15 options chosen for this share.
    """

    def __init__(self, key: ProjectKey, options: Options):
        self.key = key
        self.options = options
        self.exact, self.patterns = action_table(options)
        self._keep_uid = _keep_uid_tags()
        self._safe_text = _safe_text_tags()
        # every pseudonym handed out: pseudonym → original identity (for the local mapping)
        self.patients: dict[str, dict[str, str]] = {}
        self._codes: list | None = None

    # -- per instance ------------------------------------------------------------------------
    def deidentify(self, ds, tally: Tally | None = None) -> str:
        """De-identify ``ds`` (a pydicom Dataset read with its file meta) in place; returns the
        patient's pseudonym."""
        tally = tally if tally is not None else Tally()
        pid = str(ds.get("PatientID", "") or "").strip()
        name = str(ds.get("PatientName", "") or "").strip()
        # without an ID the name and birth date stand for the patient (still one key per person)
        identity = pid or f"{name}|{ds.get('PatientBirthDate', '')}"
        pseudo = self.key.pseudonym(identity)
        self.patients.setdefault(pseudo, {"PatientID": pid, "PatientName": name})
        ctx = _Context(identity, self.key.date_offset(identity), tally, pseudo, ds)
        self._walk(ds, ctx, 0)
        for keyword in ("PatientName", "PatientID"):   # Type 2 in every patient module
            if keyword not in ds:
                setattr(ds, keyword, pseudo)
        self._mark(ds)
        self._file_meta(ds)
        return pseudo

    def _mark(self, ds) -> None:
        from pydicom.dataset import Dataset

        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = method_text(self.options)
        if self._codes is None:   # the same for every instance: made once (read-only items)
            self._codes = []
            for value, meaning in method_codes(self.options):
                item = Dataset()
                item.CodeValue, item.CodingSchemeDesignator = value, "DCM"
                item.CodeMeaning = meaning
                self._codes.append(item)
        ds.DeidentificationMethodCodeSequence = list(self._codes)
        o = self.options
        ds.LongitudinalTemporalInformationModified = (
            "MODIFIED" if o.retain_dates_modified else
            "UNMODIFIED" if o.retain_dates_full else "REMOVED")

    def _file_meta(self, ds) -> None:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

        meta = getattr(ds, "file_meta", None)
        if meta is None:
            meta = ds.file_meta = FileMetaDataset()
        # only what identifies the object and its encoding stays (not the sender's AE title,
        # not private information); the existing map is edited: a new FileMetaDataset costs
        # more than the whole de-identification
        for tag in list(meta.keys()):
            if int(tag) not in _META_KEEP:
                del meta[tag]
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "TransferSyntaxUID" not in meta:
            meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "MEDVIEW_DEID"
        ds.preamble = b"\0" * 128   # the source's preamble could carry anything

    # -- the walk ----------------------------------------------------------------------------
    def _action(self, tag: int, vr: str) -> str:
        action = self.exact.get(tag)
        if action is not None:
            return action
        group = tag >> 16
        for mask, value, act in self.patterns:
            if tag & mask == value:
                return act
        if group & 0xFF00 in (0x5000, 0x6000):
            return "X"   # curves and overlays: the whole repeating group
        if vr == "SQ":
            return "walk"
        if vr == "UI":
            return "uid?"
        if vr == "PN" or vr == "UN":
            return "X"
        if vr in TEXT_VRS:
            return "K" if tag in self._safe_text else "Z"
        if vr in ("DA", "DT"):
            o = self.options
            return "C" if o.retain_dates_modified else "K" if o.retain_dates_full else "Z"
        if vr == "AE":
            return "Z"
        return "K"

    def _walk(self, ds, ctx: _Context, depth: int) -> None:
        tally = ctx.tally
        for tag in list(ds.keys()):
            t = int(tag)
            if t >> 16 & 1:
                del ds[tag]
                tally.removed["private attributes"] += 1
                continue
            if t & 0xFFFF == 0:   # group lengths (retired): pydicom would write stale ones
                del ds[tag]
                continue
            if t in (_PATIENT_NAME, _PATIENT_ID):   # at any depth: the project's pseudonym
                ds[tag].value = ctx.pseudonym
                tally.replaced[attribute_name(t)] += 1
                continue
            raw = ds.get_item(tag)
            vr = _vr(ds, t, raw)
            action = self._action(t, vr)
            if action == "K" and vr != "SQ":
                if t in self.exact:
                    tally.kept[attribute_name(t)] += 1
                continue
            if action == "X":
                del ds[tag]
                tally.removed[attribute_name(t)] += 1
                continue
            elem = ds[tag]
            if vr == "SQ":
                if action == "Z":
                    elem.value = []
                    tally.emptied[attribute_name(t)] += 1
                    continue
                if depth + 1 > MAX_DEPTH:
                    del ds[tag]
                    tally.removed["sequences nested too deep"] += 1
                    continue
                for item in elem.value:
                    self._walk(item, ctx, depth + 1)
                continue
            if action == "Z":
                if not elem.is_empty:
                    elem.value = None
                    tally.emptied[attribute_name(t)] += 1
            elif action == "D":
                self._dummy(elem, vr, t, ctx)
            elif action == "U" or action == "uid?":
                self._uid(elem, t, action == "uid?", tally)
            elif action == "C":
                self._clean_value(elem, vr, t, ctx)

    def _dummy(self, elem, vr: str, tag: int, ctx: _Context) -> None:
        if vr == "UI":
            self._uid(elem, tag, False, ctx.tally)
            return
        dummy = _DUMMY.get(vr)
        if dummy is None:
            elem.value = None
            ctx.tally.emptied[attribute_name(tag)] += 1
            return
        if vr in ("SH", "CS", "AE"):
            dummy = dummy[:16]
        elem.value = dummy
        ctx.tally.replaced[attribute_name(tag)] += 1

    def _uid(self, elem, tag: int, untabled: bool, tally: Tally) -> None:
        if untabled and tag in self._keep_uid:
            return
        value = elem.value
        values = list(value) if _many(value) else [value]
        out, changed = [], 0
        for v in values:
            s = str(v or "").strip().rstrip("\0")
            if not s or (untabled and s.startswith(_DICOM_ROOT)):
                out.append(s)
                continue
            out.append(self.key.uid(s))
            changed += 1
        if changed:
            elem.value = out if len(out) > 1 else out[0]
            tally.uids[attribute_name(tag)] += changed

    # -- clean (C) ---------------------------------------------------------------------------
    def _clean_value(self, elem, vr: str, tag: int, ctx: _Context) -> None:
        if vr in ("DA", "DT"):
            if self.options.retain_dates_modified:
                elem.value = self._shift(elem.value, vr, ctx)
                ctx.tally.shifted[attribute_name(tag)] += 1
            return
        if vr in TEXT_VRS or vr == "PN":
            if elem.is_empty:
                return
            if not ctx.gathered:   # once per instance, and only when some text is cleaned
                ctx.cleaner, ctx.gathered = self._cleaner(ctx.root), True
            value = elem.value
            many = _many(value)
            items = [str(v) for v in value] if many else [str(value)]
            cleaned = [" ".join(_DIGITS.sub(" ", v if ctx.cleaner is None
                                            else ctx.cleaner.sub(" ", v)).split())
                       for v in items]
            if cleaned != items:
                elem.value = cleaned if many else cleaned[0]
                ctx.tally.cleaned[attribute_name(tag)] += 1
            else:
                ctx.tally.kept[attribute_name(tag)] += 1
        # C on other VRs (times of day, AE titles under Retain Device Identity): kept as is

    def _shift(self, value, vr: str, ctx: _Context):
        many = _many(value)
        items = [str(v) for v in value] if many else [str(value)]
        out = []
        for v in items:
            m = _DATE.match(v.strip())
            if not m:
                out.append("")   # a partial or broken date cannot be shifted: drop it
                continue
            try:
                day = dt.datetime.strptime(m.group(1), "%Y%m%d").date() - ctx.offset
            except ValueError:
                out.append("")
                continue
            out.append(day.strftime("%Y%m%d") + (m.group(2) if vr == "DT" else ""))
        return out if many else out[0]

    def _cleaner(self, ds) -> re.Pattern | None:
        """A pattern of every identifying word of this instance: the values of what the
        profile removes or replaces (names, IDs, institutions, …), gathered before the walk."""
        words: set[str] = set()
        text_like = TEXT_VRS | {"PN", "CS", "AE", "DA", "DT"}

        def gather(d, depth: int) -> None:
            for elem in d:
                t = int(elem.tag)
                vr = str(elem.VR)
                if vr == "SQ":
                    if depth < MAX_DEPTH:
                        for item in elem.value:
                            gather(item, depth + 1)
                    continue
                if vr not in text_like or elem.is_empty:
                    continue
                action = self.exact.get(t)
                identifying = (t >> 16 & 1) or vr == "PN" or action in ("X", "Z", "D", "U")
                if not identifying:
                    continue
                value = elem.value
                for v in (value if _many(value) else [value]):
                    for w in re.split(r"[\^\s,=/\\]+", str(v)):
                        if len(w) >= 3:
                            words.add(w)
        gather(ds, 0)
        if not words:
            return None
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        return re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
