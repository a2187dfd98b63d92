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

import time
from dataclasses import dataclass, field
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.pacs.errors import AuthenticationFailed, NodeUnreachable, PacsError
from medview.pacs.nodes import Node, WebNode

__all__ = ["BackupFailure", "BackupItem", "BackupReport", "backup", "is_result",
           "select_instances"]

STOW_BATCH_BYTES = 32 * 1024 * 1024
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
    if not out and not left_out:
        raise ValueError("nothing to back up: " + ("the catalog holds no medview results"
                                                    if only_results else "no instances"))
    return out, left_out


def _archive_key(node: WebNode) -> str:
    return node.url.rstrip("/")


def backup(node: Node, catalog, uids=(), *, all_studies: bool = False, results: bool = False,
           verify_all: bool = False, batch: int = STOW_BATCH_INSTANCES, journal=None,
           report: BackupReport | None = None, progress: Progress = NO_PROGRESS) -> BackupReport:
    """Back up catalog studies (and medview's results) to the DICOMweb archive ``node``.

    Parameters
    ----------
    node : WebNode
        The archive (QIDO-RS, STOW-RS and WADO-RS under its URL).
    catalog : medview.dicom.catalog.Catalog
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
    run = _Run(node, report, journal, batch, verify_all, progress)
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


class _Run:
    """The state of one backup run; :meth:`study` does one study."""

    def __init__(self, node: WebNode, report: BackupReport, journal, batch: int,
                 verify_all: bool, progress: Progress):
        from medview.pacs.web import web_client

        self.node, self.report, self.journal = node, report, journal
        self.batch, self.verify_all, self.progress = batch, verify_all, progress
        self.client = web_client(node)
        self.archive = _archive_key(node)
        self.done_studies: set[str] = set()

    # -- progress ------------------------------------------------------------------------
    def tick(self) -> None:
        r = self.report
        handled = len(r.sent) + len(r.skipped) + len(r.not_stored)
        checked = len(r.verified) + len(r.verified_before) + len(r.mismatched)
        total = max(r.total, 1)
        self.progress.update(0.5 * (handled + checked) / total,
                             f"{len(r.sent)} sent, {len(r.skipped)} already there, "
                             f"{len(r.verified) + len(r.verified_before)} verified of {r.total}")

    # -- one study -------------------------------------------------------------------------
    def study(self, study_uid: str, items: list[BackupItem]) -> None:
        from medview.pacs.query import list_instances

        r = self.report
        t0 = time.perf_counter()
        present = list_instances(self.node, study_uid)  # the archive's own answer
        known = self.journal.rows(self.archive, study_uid)
        r.seconds["query"] += time.perf_counter() - t0
        todo, check = [], []
        for item in items:
            if item.sop_uid not in present:
                todo.append(item)
                continue
            r.skipped.append(item.sop_uid)
            row = known.get(item.sop_uid)
            if (not self.verify_all and row is not None and row.state == "verified"
                    and (row.size, row.mtime_ns) == (item.size, item.mtime_ns)):
                r.verified_before.append(item.sop_uid)
            else:
                check.append(item)
        self.tick()
        if todo:
            self._audit(study_uid, todo, items)
            t0 = time.perf_counter()
            try:
                check.extend(self._send(todo))
            finally:
                r.seconds["send"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            self._verify(study_uid, check, present)
        finally:
            r.seconds["verify"] += time.perf_counter() - t0
        self.done_studies.add(study_uid)

    def _audit(self, study_uid: str, todo: list[BackupItem], items: list[BackupItem]) -> None:
        from medview.audit import record

        sizes: dict[str, list[int]] = {}
        for item in todo:
            sizes.setdefault(item.series_uid, []).append(item.size)
        total = {}
        for item in items:
            total[item.series_uid] = total.get(item.series_uid, 0) + 1
        for series_uid, s in sizes.items():
            record(action="backup", series=[(series_uid, sum(s))],
                   destination=self.report.destination,
                   detail={"study": study_uid, "instances": len(s),
                           "already_there": total[series_uid] - len(s)})
        self.report.series_sent += len(sizes)

    def _batches(self, todo: list[BackupItem]):
        batch: list[BackupItem] = []
        size = 0
        for item in todo:
            if batch and (len(batch) >= self.batch or size + item.size > STOW_BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += item.size
        if batch:
            yield batch

    def _send(self, todo: list[BackupItem]) -> list[BackupItem]:
        """STOW-RS ``todo`` in batches; the items stored (NodeUnreachable stops it)."""
        import pydicom
        from pydicom.errors import InvalidDicomError

        from medview.pacs.send import stow_datasets

        r = self.report
        stored: list[BackupItem] = []
        for batch in self._batches(todo):
            self.progress.check()
            ready, datasets = [], []
            for item in batch:
                try:
                    datasets.append(pydicom.dcmread(item.path))
                    ready.append(item)
                except (OSError, InvalidDicomError, ValueError) as exc:
                    r.failed.append(BackupFailure(item.sop_uid, item.path, "read",
                                                  f"cannot read the local file: {exc}"))
            if not ready:
                continue
            # committed before the request leaves: after a crash the next run knows these
            # may be in the archive (it asks the archive rather than sending them again)
            self.journal.mark(self.archive, ready, "sending")
            try:
                refused = stow_datasets(self.client, self.node, datasets)
            except (AuthenticationFailed, NodeUnreachable) as exc:
                if isinstance(exc, NodeUnreachable):
                    r.failed.extend(BackupFailure(i.sop_uid, i.path, "send",
                                                  f"the request broke off: {exc}")
                                    for i in ready)
                raise
            except PacsError as exc:
                r.failed.extend(BackupFailure(i.sop_uid, i.path, "send", str(exc))
                                for i in ready)
                self.tick()
                continue
            ok = [i for i in ready if i.sop_uid not in refused]
            r.failed.extend(BackupFailure(i.sop_uid, i.path, "send", refused[i.sop_uid])
                            for i in ready if i.sop_uid in refused)
            self.journal.mark(self.archive, ok, "stored")
            r.sent.extend(i.sop_uid for i in ok)
            r.bytes_sent += sum(i.size for i in ok)
            stored.extend(ok)
            self.tick()
        return stored

    def _verify(self, study_uid: str, check: list[BackupItem], present: dict) -> None:
        """Read ``check`` back and compare; verified rows go to the journal per series."""
        from medview.pacs._backup_check import fingerprint, fingerprint_file, read_back

        r = self.report
        by_series: dict[str, dict[str, BackupItem]] = {}
        for item in check:
            by_series.setdefault(item.series_uid, {})[item.sop_uid] = item
        for series_uid, wanted in by_series.items():
            self.progress.check()
            in_archive = sum(1 for s, _c in present.values() if s == series_uid)
            whole = len(wanted) >= 8 and 2 * len(wanted) >= in_archive
            good = []

            def compare(ds, wanted=wanted, good=good) -> None:
                self.progress.check()
                item = wanted[str(ds.SOPInstanceUID)]
                try:
                    remote = fingerprint(ds)
                except ValueError as exc:
                    r.failed.append(BackupFailure(item.sop_uid, item.path, "verify",
                                                  f"read back, but {exc}"))
                    return
                try:
                    local = fingerprint_file(item.path)
                except (OSError, ValueError) as exc:
                    r.failed.append(BackupFailure(item.sop_uid, item.path, "verify",
                                                  f"the local file cannot be read: {exc}"))
                    return
                diff = local.differences(remote)
                if diff:
                    r.failed.append(BackupFailure(
                        item.sop_uid, item.path, "verify",
                        "the archive holds a different instance under this UID: "
                        + ", ".join(diff) + " differ"))
                    return
                good.append((item, local.pixels, local.identity_sha))
                r.verified.append(item.sop_uid)
                if len(r.verified) % 16 == 0:
                    self.tick()

            try:
                failed = read_back(self.client, self.node, study_uid, series_uid,
                                   list(wanted), whole, compare)
            finally:
                self.journal.mark_verified(self.archive, good)
            for sop, why in failed.items():
                r.failed.append(BackupFailure(sop, wanted[sop].path, "verify", why))
            self.tick()

    # -- the end -------------------------------------------------------------------------
    def give_up(self, by_study: dict, k: int, reason: str) -> None:
        """Studies from the ``k``-th on that were not handled: not stored, with ``reason``."""
        r = self.report
        handled = set(r.sent) | set(r.skipped) | {f.sop_uid for f in r.failed}
        for items in list(by_study.values())[k:]:
            for item in items:
                if item.sop_uid not in handled:
                    r.failed.append(BackupFailure(item.sop_uid, item.path, "send", reason))

    def settle(self, by_study: dict) -> None:
        """Sent or found but not read back (a stop, a cancel): ``unverified``; instances not
        reached at all after a cancel are not in the report's lists."""
        r = self.report
        done = set(r.verified) | set(r.verified_before) | {f.sop_uid for f in r.mismatched}
        r.unverified = [s for s in (*r.sent, *r.skipped) if s not in done]
