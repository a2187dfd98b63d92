"""One backup run, study by study: ask the archive, send what it lacks, read back and compare.

Private to :mod:`medview.pacs.backup` (which selects the instances and reports).
"""

from __future__ import annotations

import threading
import time

from medview.core.progress import Progress
from medview.pacs.backup import BackupFailure, BackupItem, BackupReport, archive_key
from medview.pacs.errors import AuthenticationFailed, NodeUnreachable, PacsError
from medview.pacs.nodes import WebNode

STOW_BATCH_BYTES = 32 * 1024 * 1024
PARALLEL = 2  # STOW-RS requests in flight


class Run:
    """The state of one backup run; :meth:`study` does one study."""

    def __init__(self, node: WebNode, report: BackupReport, journal, batch: int,
                 verify_all: bool, progress: Progress):
        from medview.pacs.web import web_client

        self.node, self.report, self.journal = node, report, journal
        self.batch, self.verify_all, self.progress = batch, verify_all, progress
        self.client = web_client(node)
        self._local = threading.local()
        self.archive = archive_key(node)

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

    def _post(self, batch: list[BackupItem]):
        """Read ``batch`` and STOW-RS it (in a worker thread, with its own client): the items
        sent, the read failures, and SOP UID → reason of those the archive refused."""
        import pydicom
        from pydicom.errors import InvalidDicomError

        from medview.pacs.send import stow_datasets
        from medview.pacs.web import web_client

        client = getattr(self._local, "client", None)
        if client is None:
            # a request body of up to STOW_BATCH_BYTES goes whole, not in chunks (web_client)
            client = self._local.client = web_client(self.node,
                                                     chunk_size=2 * STOW_BATCH_BYTES)
        ready, datasets, unreadable = [], [], []
        for item in batch:
            try:
                datasets.append(pydicom.dcmread(item.path))
                ready.append(item)
            except (OSError, InvalidDicomError, ValueError) as exc:
                unreadable.append(BackupFailure(item.sop_uid, item.path, "read",
                                                f"cannot read the local file: {exc}"))
        refused = stow_datasets(client, self.node, datasets) if datasets else {}
        return ready, unreadable, refused

    def _collect(self, batch: list[BackupItem], future, stored: list[BackupItem]) -> None:
        """Book one request's outcome (main thread: the report and the journal)."""
        r = self.report
        try:
            ready, unreadable, refused = future.result()
        except NodeUnreachable as exc:
            r.failed.extend(BackupFailure(i.sop_uid, i.path, "send",
                                          f"the request broke off: {exc}") for i in batch)
            raise
        except AuthenticationFailed:
            raise
        except PacsError as exc:
            r.failed.extend(BackupFailure(i.sop_uid, i.path, "send", str(exc)) for i in batch)
            self.tick()
            return
        r.failed.extend(unreadable)
        ok = [i for i in ready if i.sop_uid not in refused]
        r.failed.extend(BackupFailure(i.sop_uid, i.path, "send", refused[i.sop_uid])
                        for i in ready if i.sop_uid in refused)
        self.journal.mark(self.archive, ok, "stored")
        r.sent.extend(i.sop_uid for i in ok)
        r.bytes_sent += sum(i.size for i in ok)
        stored.extend(ok)
        self.tick()

    def _send(self, todo: list[BackupItem]) -> list[BackupItem]:
        """STOW-RS ``todo`` in batches, ``PARALLEL`` requests in flight (one is read and
        encoded while the archive stores the other); the items stored. NodeUnreachable,
        AuthenticationFailed and Cancelled stop it after the requests in flight were booked."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        stored: list[BackupItem] = []
        pending: deque = deque()
        error: BaseException | None = None
        with ThreadPoolExecutor(PARALLEL, thread_name_prefix="medview-backup-stow") as pool:
            try:
                for batch in self._batches(todo):
                    self.progress.check()
                    # committed before the request leaves: after a crash the next run knows
                    # these may be in the archive (it asks the archive, not sending them again)
                    self.journal.mark(self.archive, batch, "sending")
                    pending.append((batch, pool.submit(self._post, batch)))
                    if len(pending) >= PARALLEL:
                        self._collect(*pending.popleft(), stored)
            except BaseException as exc:  # a stop or a cancel: book what is in flight first
                error = exc
            while pending:
                batch, future = pending.popleft()
                try:
                    self._collect(batch, future, stored)
                except PacsError as exc:
                    error = error or exc
        if error is not None:
            raise error
        return stored

    def _verify(self, study_uid: str, check: list[BackupItem], present: dict) -> None:
        """Read ``check`` back and compare; verified rows go to the journal per series."""
        from concurrent.futures import ThreadPoolExecutor

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
            # the local side is read and hashed in a thread while the archive streams
            pool = ThreadPoolExecutor(1, thread_name_prefix="medview-backup-hash")
            local_of = {sop: pool.submit(fingerprint_file, item.path)
                        for sop, item in wanted.items()}

            def compare(ds, wanted=wanted, good=good, local_of=local_of) -> None:
                self.progress.check()
                item = wanted[str(ds.SOPInstanceUID)]
                try:
                    remote = fingerprint(ds)
                except ValueError as exc:
                    r.failed.append(BackupFailure(item.sop_uid, item.path, "verify",
                                                  f"read back, but {exc}"))
                    return
                try:
                    local = local_of[item.sop_uid].result()
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
                pool.shutdown(wait=True, cancel_futures=True)
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
