"""De-identification before upload, the local mapping, re-attachment, and the audit log.

What leaves the workstation (DICOM PS3.15 basic profile, in spirit: only pixel data and
geometry): each input's voxel array, its grid (shape, spacing, origin, direction), its
``Modality`` and ``Units`` (steps read them), and random UIDs (``2.25.<uuid>``) standing in for
its Series, Study and Frame of Reference UIDs. Names, IDs, dates, descriptions, real UIDs and
every other header value stay local. The pseudonym → original mapping is kept in the user data
folder (``offload-jobs/<job id>.json``, 0600) so a result can be re-attached to the original
study, and every disclosure adds a line to the audit log (:mod:`medview.audit`, ``audit.log``
there): time, user, endpoint, series UID, bytes, job id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medview.core.labelmap import LabelMap
from medview.core.volume import Volume

__all__ = ["Deidentified", "audit", "deidentify", "reattach"]

#: metadata that travels as is: not identifying, and steps use it
KEEP = ("Modality", "Units")
#: metadata replaced by random UIDs, mapped back on return
PSEUDONYMIZE = ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
#: what a label map made from an input carries of it (as LabelMap.like copies)
_LABELMAP_KEYS = ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "PatientID",
                  "PatientName", "Modality")


def _new_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


@dataclass
class Deidentified:
    """The metadata to send per input and the mapping back."""

    metadata: dict[str, dict] = field(default_factory=dict)
    #: pseudonym → original value
    mapping: dict[str, str] = field(default_factory=dict)
    #: input name → the pseudonymous SeriesInstanceUID sent for it
    series: dict[str, str] = field(default_factory=dict)

    def save(self, folder: Path, job_id: str, endpoint: str) -> Path:
        from medview.privatedirs import private_folder

        private_folder(folder)  # the way back from pseudonyms to the real UIDs
        path = folder / f"{job_id}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"job": job_id, "endpoint": endpoint, "time": time.time(),
                       "mapping": self.mapping, "series": self.series}, f, indent=2)
        return path


def deidentify(inputs: Mapping[str, Volume]) -> Deidentified:
    """The metadata each input may carry to the server, and the mapping to undo it."""
    out = Deidentified()
    for name, vol in inputs.items():
        meta: dict[str, Any] = {k: vol.metadata[k] for k in KEEP if vol.metadata.get(k)}
        for key in PSEUDONYMIZE:
            original = vol.metadata.get(key)
            if original:
                pseudo = next((p for p, o in out.mapping.items() if o == str(original)), None)
                if pseudo is None:
                    pseudo = _new_uid()
                    out.mapping[pseudo] = str(original)
                meta[key] = pseudo
        if "SeriesInstanceUID" not in meta:
            # still tag the input, so a result can be traced back to it
            meta["SeriesInstanceUID"] = pseudo = _new_uid()
            out.mapping[pseudo] = ""
        out.series[name] = meta["SeriesInstanceUID"]
        out.metadata[name] = meta
    return out


def _restore(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value in mapping:
        return mapping[value]
    if isinstance(value, list):
        return [_restore(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v, mapping) for k, v in value.items()}
    return value


def reattach(result: Volume, deid: Deidentified, inputs: Mapping[str, Volume]) -> Volume:
    """``result`` with the pseudonyms mapped back and the original study's identity restored.

    The source input is the one whose pseudonymous series UID the result carries (steps keep
    it), else the first input on the same grid. A volume gets the source's metadata as a local
    run's ``with_array`` would; a label map gets what ``LabelMap.like`` copies.
    """
    meta = {k: _restore(v, deid.mapping) for k, v in result.metadata.items()}
    meta = {k: v for k, v in meta.items() if v != ""}
    carried = result.metadata.get("SeriesInstanceUID")
    source = next((n for n, s in deid.series.items() if s == carried), None)
    if source is None:
        source = next((n for n, v in inputs.items() if v.same_grid(result)), None)
    if source is not None:
        original = inputs[source].metadata
        if isinstance(result, LabelMap):
            base = {k: original[k] for k in _LABELMAP_KEYS if k in original}
        else:
            base = dict(original)
        for k in PSEUDONYMIZE:  # identity comes from the source, not from the server
            meta.pop(k, None)
        meta = {**base, **meta}
    if isinstance(result, LabelMap):
        return LabelMap(result.array, result.spacing, result.origin, result.direction, meta,
                        result.warnings, result.segments)
    return Volume(result.array, result.spacing, result.origin, result.direction, meta,
                  result.warnings)


def audit(*, endpoint: str, job_id: str, inputs: Mapping[str, Volume], sizes: Mapping[str, int],
          path: Path | None = None) -> Path:
    """Append one line per disclosed series to the audit log (:mod:`medview.audit`); returns
    its path."""
    from medview.audit import record

    written = path
    for name, vol in inputs.items():
        written = record(action="offload",
                         series=[(str(vol.metadata.get("SeriesInstanceUID", "")),
                                  int(sizes.get(name, 0)))],
                         destination=endpoint, profile="offload (pixels and grid only)",
                         detail={"job": job_id, "input": name}, path=path)
    return written if written is not None else _default_audit_path()


def _default_audit_path() -> Path:
    from medview.audit import audit_path

    return audit_path()
