"""Verified, incremental, resumable backup of catalog studies to a DICOMweb archive.

For each study: ask the archive which of its instances it holds (QIDO-RS at instance level),
send the rest (STOW-RS, several instances per request), then read back (WADO-RS) what was sent
and what was found there without a record of an earlier verification, and compare the
fingerprints (:mod:`medview.pacs._backup_check`: a hash of the decoded pixel values and the
identifying attributes). A journal (:mod:`medview.pacs._backup_journal`, 0600 in the user data
folder) records what is in flight and what was verified, so a run after a crash, a kill or a
dropped connection asks the archive, sends only what it lacks (never an instance twice) and
verifies what an earlier run could not.

medview's results — the SEGs, derived series and Secondary Captures it writes — are the
catalog's series whose Manufacturer is ``medview`` (every medview export writes it); they go
only when asked for (``results=True``).

Every series that leaves gets one line in the disclosure audit log (:mod:`medview.audit`,
action ``backup``) before its first instance is sent. Restore is a retrieve
(:func:`medview.pacs.retrieve.retrieve`) of the backed-up studies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.pacs.errors import NodeUnreachable
from medview.pacs.nodes import Node, WebNode

__all__ = ["BackupFailure", "BackupItem", "BackupReport", "backup", "is_result",
           "select_instances"]

STOW_BATCH_INSTANCES = 100
RESULT_MANUFACTURER = "medview"


@dataclass(frozen=True)
class BackupItem:
    """One catalog instance to back up."""

    sop_uid: str
    study_uid: str
    series_uid: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class BackupFailure:
    """``stage``: "read" (the local file), "send" (not stored) or "verify" (stored, but what
    the archive returns differs or cannot be read back)."""

    sop_uid: str
    path: Path
    stage: str
    reason: str


@dataclass
class BackupReport:
    """What a backup did, by SOP Instance UID.

    Every selected instance is in exactly one of ``sent``, ``skipped`` (already in the
    archive) and the failures of stage read/send; every sent or skipped one is in exactly one
    of ``verified`` (read back and equal in this run), ``verified_before`` (an earlier run
    verified it and the local file did not change since), the failures of stage verify, and
    ``unverified`` (not read back: the run stopped or was cancelled first).
    """

    node: str
    destination: str = ""
    total: int = 0
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    verified_before: list[str] = field(default_factory=list)
    failed: list[BackupFailure] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    series_sent: int = 0
    results_left_out: int = 0
    error: str = ""
    cancelled: bool = False
    seconds: dict[str, float] = field(
        default_factory=lambda: {"query": 0.0, "send": 0.0, "verify": 0.0})

    @property
    def not_stored(self) -> list[BackupFailure]:
        return [f for f in self.failed if f.stage != "verify"]

    @property
    def mismatched(self) -> list[BackupFailure]:
        return [f for f in self.failed if f.stage == "verify"]

    @property
    def complete(self) -> bool:
        """Everything selected is in the archive and verified."""
        return not (self.failed or self.unverified or self.error or self.cancelled)

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "sent": len(self.sent), "skipped": len(self.skipped),
                "verified": len(self.verified), "verified_before": len(self.verified_before),
                "not_stored": len(self.not_stored), "verify_failed": len(self.mismatched),
                "unverified": len(self.unverified)}

    def summary(self) -> str:
        c = self.counts()
        text = (f"{c['total']} instance(s) for {self.node}: {c['sent']} sent, {c['skipped']} "
                f"already there, {c['verified'] + c['verified_before']} verified"
                + (f" ({c['verified_before']} by an earlier run)" if c["verified_before"] else "")
                + f", {len(self.failed)} failed")
        if c["unverified"]:
            text += f", {c['unverified']} not verified"
        s = self.seconds
        text += (f" ({self.bytes_sent / 2**20:.1f} MiB sent; query {s['query']:.1f} s, send "
                 f"{s['send']:.1f} s, verify {s['verify']:.1f} s)")
        if self.results_left_out:
            text += (f"; {self.results_left_out} series of medview results left out "
                     "(include them with --results)")
        if self.cancelled:
            text += "; cancelled — run it again to go on"
        elif self.error:
            text += f"; stopped: {self.error} — run it again to send and verify the rest"
        return text

    def as_dict(self) -> dict:
        return {"node": self.node, "destination": self.destination, "complete": self.complete,
                "counts": self.counts(), "bytes_sent": self.bytes_sent,
                "series_sent": self.series_sent, "results_left_out": self.results_left_out,
                "seconds": dict(self.seconds), "error": self.error,
                "cancelled": self.cancelled, "sent": self.sent, "skipped": self.skipped,
                "verified": self.verified, "verified_before": self.verified_before,
                "unverified": self.unverified,
                "failed": [{"sop_uid": f.sop_uid, "path": str(f.path), "stage": f.stage,
                            "reason": f.reason} for f in self.failed]}


def is_result(headers) -> bool:
    """Whether catalog instances (``InstanceHeader``) are a result medview wrote: a SEG,
    derived series or Secondary Capture carries Manufacturer ``medview``."""
    return any((h.manufacturer or "").strip().lower() == RESULT_MANUFACTURER for h in headers)


def select_instances(catalog, uids=(), *, all_studies: bool = False, results: bool = False):
    """The instances to back up, by study: ``{study UID: [BackupItem, ...]}`` and the number
    of result series left out.

    ``uids``: study (or series) UIDs of the catalog; ``all_studies``: every study. medview's
    results in them are included only with ``results``; ``results`` alone (no UIDs, not all)
    selects every result in the catalog and nothing else.

    Raises
    ------
    ValueError
        A UID the catalog does not know, or nothing selected at all.
    """
    only_results = results and not uids and not all_studies
    records = []
    if uids:
        for uid in uids:
            found = catalog.series(uid) or [s for s in catalog.series() if s.uid == uid]
            if not found:
                raise ValueError(f"{uid}: no study or series with this UID in the catalog "
                                 f"({catalog.path}); import it first (medview index)")
            records.extend(found)
    else:
        records = catalog.series()
    out: dict[str, list[BackupItem]] = {}
    seen: set[str] = set()
    left_out = 0
    for rec in records:
        headers = catalog.instances(rec.uid)
        result = is_result(headers)
        if (result and not results) or (only_results and not result):
            left_out += result
            continue
        for h in headers:
            if not h.sop_instance_uid or h.sop_instance_uid in seen:
                continue  # the same instance imported twice goes once
            seen.add(h.sop_instance_uid)
            out.setdefault(h.study_instance_uid or rec.study_uid, []).append(BackupItem(
                h.sop_instance_uid, h.study_instance_uid or rec.study_uid,
                h.series_instance_uid or rec.uid, Path(h.path), int(h.file_size),
                int(h.mtime_ns)))
        # the annotations and key images saved on the series (SR, KOS) go with it
        for d in catalog.documents(rec.uid):
            if d.sop_instance_uid in seen or not Path(d.path).is_file():
                continue
            seen.add(d.sop_instance_uid)
            study = d.study_uid or rec.study_uid
            out.setdefault(study, []).append(BackupItem(
                d.sop_instance_uid, study, d.series_uid, Path(d.path), int(d.file_size),
                int(d.mtime_ns)))
    if not out and not left_out:
        raise ValueError("nothing to back up: " + ("the catalog holds no medview results"
                                                    if only_results else "no instances"))
    return out, left_out


def archive_key(node: WebNode) -> str:
    """How the journal names an archive: its URL (a node renamed is the same archive)."""
    return node.url.rstrip("/")


def backup(node: Node, catalog, uids=(), *, all_studies: bool = False, results: bool = False,
           verify_all: bool = False, batch: int = STOW_BATCH_INSTANCES, journal=None,
           report: BackupReport | None = None, progress: Progress = NO_PROGRESS) -> BackupReport:
    """Back up catalog studies (and medview's results) to the DICOMweb archive ``node``.

    Parameters
    ----------
    node : WebNode
        The archive (QIDO-RS, STOW-RS and WADO-RS under its URL).
    catalog : medview.dicom.catalog.db.Catalog
    uids : sequence of str
        Study (or series) Instance UIDs; see :func:`select_instances`.
    all_studies, results : bool
        Every study; include medview's results (SEG, derived series, Secondary Capture).
    verify_all : bool
        Read back every instance, also those an earlier run verified.
    batch : int
        At most this many instances per STOW-RS request (and at most 32 MiB).
    journal : medview.pacs._backup_journal.Journal, optional
        Default: the one in the user data folder.
    report : BackupReport, optional
        Filled as the backup goes (so a caller sees what was done when it is cancelled).
    progress : Progress
        Fraction of the instances handled; cancelling stops before the next request.

    Returns
    -------
    BackupReport
        ``complete`` when every instance is in the archive and verified. A failure after the
        start (the archive went away, an instance refused or different) is in the report.

    Raises
    ------
    ValueError
        Not a DICOMweb node, or a UID the catalog does not know.
    medview.pacs.errors.PacsError
        Nothing could be done: the archive cannot be reached or refuses (401) at once.
    Cancelled
        After the report (``report=``) and the journal were brought up to date.
    """
    from medview.pacs._backup_journal import Journal
    from medview.pacs._backup_run import Run

    if not isinstance(node, WebNode):
        raise ValueError(f"{node.name}: a backup goes to a DICOMweb archive (STOW-RS, QIDO-RS, "
                         "WADO-RS); this is a DICOM node — add the archive's DICOMweb URL with "
                         "'medview pacs add NAME https://HOST/dicom-web'")
    if batch < 1:
        raise ValueError(f"batch {batch}: give at least 1 instance per request")
    by_study, left_out = select_instances(catalog, uids, all_studies=all_studies,
                                          results=results)
    report = report if report is not None else BackupReport(node.name)
    report.node, report.destination = node.name, f"{node.name} ({node.url})"
    report.total = sum(len(v) for v in by_study.values())
    report.results_left_out = left_out
    own_journal = journal is None
    journal = journal if journal is not None else Journal()
    run = Run(node, report, journal, batch, verify_all, progress)
    try:
        for k, (study_uid, items) in enumerate(by_study.items()):
            progress.check()
            try:
                run.study(study_uid, items)
            except NodeUnreachable as exc:
                if not report.sent and not report.skipped and k == 0:
                    raise  # nothing done: an error, not a partial result
                report.error = str(exc)
                run.give_up(by_study, k, f"not sent: {exc}")
                break
    except Cancelled:
        report.cancelled = True
        raise
    finally:
        run.settle(by_study)
        if own_journal:
            journal.close()
    progress.update(1.0, report.summary())
    return report
