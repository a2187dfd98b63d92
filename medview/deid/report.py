"""The share report: what was removed, replaced, kept, and what needs a human look.

It travels with the share (``SHARE-REPORT.json`` and ``SHARE-REPORT.txt`` in the folder or ZIP)
and a copy stays in the project's local folder, so it names attributes and counts, never an
original value, file path or identity.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from medview.deid.engine import Tally

__all__ = ["ShareReport"]


@dataclass
class ShareReport:
    project: str
    profile: str
    edition: str
    table_source: str
    destination: str = ""
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    instances: int = 0
    bytes: int = 0
    seconds: float = 0.0
    #: de-identified series UID → {modality, instances, description kept?}
    series: dict[str, dict] = field(default_factory=dict)
    patients: list[str] = field(default_factory=list)    # pseudonyms
    tally: Tally = field(default_factory=Tally)
    masked: list[dict] = field(default_factory=list)      # {sop_instance_uid, file, boxes, ...}
    not_masked: list[dict] = field(default_factory=list)  # flagged, not masked: why
    not_shared: list[dict] = field(default_factory=list)  # {index, reason} (no source paths)
    sent: object = None   # what a sender returned (e.g. a PACS SendReport)

    def needs_review(self) -> list[str]:
        out = []
        if self.not_masked:
            out.append(f"{len(self.not_masked)} image(s) may carry burned-in text that was NOT "
                       "masked: look at each (listed under burned_in.not_masked)")
        if self.masked:
            out.append(f"{len(self.masked)} image(s) had text masked: check by eye that none "
                       "is left (OCR misses small, faint or rotated text)")
        kept_text = sorted(set(self.tally.cleaned) | {
            k for k in self.tally.kept if k not in self.tally.shifted})
        if kept_text:
            out.append("free text kept after cleaning (read it before sharing): "
                       + ", ".join(kept_text))
        if self.tally.shifted:
            out.append("dates were shifted back by a per-patient offset: intervals between "
                       "dates of one patient are true, calendar dates are not")
        if self.not_shared:
            out.append(f"{len(self.not_shared)} file(s) were not shared (see not_shared)")
        return out

    def as_dict(self) -> dict:
        return {
            "medview_share_report": 1,
            "time": self.time,
            "project": self.project,
            "profile": self.profile,
            "standard": f"DICOM PS3.15 Annex E, Table E.1-1, edition {self.edition}",
            "table_source": self.table_source,
            "destination": self.destination,
            "instances": self.instances,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "patients": self.patients,
            "series": self.series,
            **self.tally.as_dict(),
            "burned_in": {"masked": self.masked, "not_masked": self.not_masked},
            "not_shared": self.not_shared,
            "needs_review": self.needs_review(),
        }

    def text(self) -> str:
        d = self.as_dict()
        lines = [f"medview share report — {d['time']}",
                 f"project {self.project}, profile {self.profile}",
                 d["standard"],
                 f"{self.instances} instance(s) in {len(self.series)} series of "
                 f"{len(self.patients)} patient(s) → {self.destination}", ""]
        for title, key in (("Removed", "removed"), ("Emptied", "emptied"),
                           ("Replaced by a dummy or the pseudonym", "replaced"),
                           ("UIDs replaced (HMAC of the project key)", "uids"),
                           ("Dates shifted", "shifted"), ("Text cleaned", "cleaned"),
                           ("Kept by an option", "kept")):
            counts = d[key]
            if counts:
                lines.append(f"{title}: " + ", ".join(f"{k} ×{v}" for k, v in counts.items()))
        lines.append("")
        for m in self.masked:
            lines.append(f"burned-in text masked: {m['file']} ({m['boxes']} box(es); "
                         f"{m['reason']})")
        for m in self.not_masked:
            lines.append(f"burned-in text NOT masked: {m['file']} ({m['reason']}; {m['why']})")
        if self.needs_review():
            lines += ["", "Needs a human look:"] + [f"- {x}" for x in self.needs_review()]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, stem: str = "SHARE-REPORT") -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        js, txt = folder / f"{stem}.json", folder / f"{stem}.txt"
        js.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=False))
        txt.write_text(self.text())
        return [js, txt]
