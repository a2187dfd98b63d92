"""Send files, catalog series or studies to a node: C-STORE or STOW-RS.

C-STORE negotiates, for each SOP class, the files' own transfer syntax and the uncompressed
ones: a compressed file goes as is when the peer accepts its syntax, else it is decoded and
sent uncompressed (listed in ``report.decoded``). A partial failure is not an exception: the
report lists each file that was not stored and why.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.dicom.catalog.collect import collect_files
from medview.pacs.errors import AuthenticationFailed, PacsError
from medview.pacs.nodes import DimseNode, Node

__all__ = ["SendReport", "destination", "send", "stow_datasets"]

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
MAX_CONTEXTS = 126
STOW_BATCH_BYTES = 64 * 1024 * 1024
#: C-STORE associations at once by default (each carries one instance in flight)
DEFAULT_ASSOCIATIONS = 4


@dataclass
class SendReport:
    """What a send did: ``sent`` files, ``failed`` (file, reason), ``decoded`` (sent
    uncompressed because the peer declined their compressed syntax)."""

    node: str
    method: str
    sent: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    decoded: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{len(self.sent)} of {len(self.sent) + len(self.failed)} instance(s) stored on "
                f"{self.node} by {self.method} ({self.seconds:.1f} s)")
        if self.decoded:
            text += f"; {len(self.decoded)} sent decoded (the peer declined their compression)"
        if self.failed:
            text += f"; {len(self.failed)} NOT stored"
        return text


def _headers(files: Sequence[Path], report: SendReport,
             series_of: dict[Path, tuple[str, int]]):
    """(path, SOP class, transfer syntax) of each readable DICOM file; others go to failed.
    ``series_of`` gets each file's Series Instance UID and size (for the audit log).

    medview's own header scanner reads a file in ~30 µs, pydicom in ~300 µs (on a link
    that is the wire standing idle before the first instance leaves, 45 ms for 150 CT
    slices); a file the scanner does not take (no pixel data, truncated, a bare data set
    without the part-10 header pynetdicom needs) is read by pydicom as before.
    """
    from pydicom.errors import InvalidDicomError

    out = []
    for f in files:
        got = _scan_header(f)
        if got is None:
            try:
                got = _pydicom_header(f)
            except (InvalidDicomError, OSError, AttributeError, ValueError) as exc:
                report.failed.append((f, f"not a DICOM file medview can send ({exc})"))
                continue
        cls, ts, series, size = got
        series_of[f] = (series, size)
        out.append((f, cls, ts))
    return out


def _scan_header(path: Path) -> tuple[str, str, str, int] | None:
    """(SOP class, transfer syntax, series UID, size) by medview's header scanner, or None
    when it does not take the file (pydicom decides then)."""
    from medview.dicom.scan.scanner import scan_file

    try:
        with open(path, "rb") as fp:
            if fp.read(132)[128:] != b"DICM":  # pynetdicom sends part-10 files only
                return None
        h = scan_file(path)
    except Exception:  # whatever the scanner trips on, pydicom decides (and says why)
        return None
    if not h.sop_class_uid or not h.transfer_syntax_uid:
        return None
    return h.sop_class_uid, h.transfer_syntax_uid, h.series_instance_uid, h.file_size


def _pydicom_header(path: Path) -> tuple[str, str, str, int]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    ds = pydicom.dcmread(path, stop_before_pixels=True,
                         specific_tags=["SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID"])
    cls = str(ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if not cls or not ts:
        raise InvalidDicomError("no SOP Class UID or transfer syntax")
    return cls, ts, str(ds.get("SeriesInstanceUID", "")), path.stat().st_size


def destination(node: Node) -> str:
    """How the audit log names where data went: the node's name and address."""
    if isinstance(node, DimseNode):
        return f"{node.name} {node.ae_title}@{node.host}:{node.port}"
    return f"{node.name} {node.url}"


def _audit(node: Node, report: SendReport, series_of: dict[Path, tuple[str, int]],
           cancelled: bool) -> None:
    """One disclosure line per series that was (even partly) handed to the node."""
    from medview.audit import record

    per: dict[str, dict] = {}
    for path in report.sent:
        uid, size = series_of.get(path, ("", 0))
        e = per.setdefault(uid, {"bytes": 0, "instances": 0, "failed": 0})
        e["instances"] += 1
        e["bytes"] += size
    for path, _reason in report.failed:
        if path in series_of:  # a DICOM file that was not stored (not one we could not read)
            uid = series_of[path][0]
            per.setdefault(uid, {"bytes": 0, "instances": 0, "failed": 0})["failed"] += 1
    for uid, e in per.items():
        detail = {"instances": e["instances"], "failed": e["failed"], "method": report.method}
        if cancelled:
            detail["cancelled"] = True
        record(action="send", destination=destination(node), series=[(uid, e["bytes"])],
               detail=detail)


class _Counter:
    """Instances handled so far, across the parallel associations, for the progress."""

    def __init__(self, progress: Progress, total: int):
        self.progress = progress
        self.total = max(total, 1)
        self.done = 0
        self.lock = threading.Lock()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.progress.update(done / self.total, f"{done}/{self.total} sent")


def _store(node: DimseNode, items, report: SendReport, counter: _Counter) -> None:
    """C-STORE ``items`` over one association."""
    import pydicom
    from pydicom.uid import UID
    from pynetdicom import _config

    from medview.pacs.dimse import association, make_ae, status_text

    # a file whose transfer syntax the peer accepted is sent from disk as it is, in chunks,
    # not decoded and encoded again (only paths are ever given to send_c_store here)
    _config.STORE_SEND_CHUNKED_DATASET = True
    progress = counter.progress
    ae = make_ae(node)
    pairs = sorted({(cls, ts) for _f, cls, ts in items})
    for cls, ts in pairs:
        if ts not in UNCOMPRESSED:  # compressed, big endian, deflated: its own context
            ae.add_requested_context(cls, [ts])
    for cls in sorted({cls for cls, _ts in pairs}):
        ae.add_requested_context(cls, UNCOMPRESSED)
    with association(node, ae=ae) as assoc:
        accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                    for cx in assoc.accepted_contexts}
        for k, (path, cls, ts) in enumerate(items):
            progress.check()
            as_is = (cls, ts) in accepted
            plain = any((cls, t) in accepted for t in UNCOMPRESSED)
            if not as_is and not (plain and (ts in UNCOMPRESSED or UID(ts).is_compressed)):
                why = (f"declined {UID(ts).name}" if plain else
                       f"accepts no transfer syntax of SOP class {UID(cls).name}")
                report.failed.append((path, f"the peer {why}"))
                counter.step()
                continue
            what = path
            if not as_is:
                what = pydicom.dcmread(path)  # pynetdicom converts between uncompressed ones
                if UID(ts).is_compressed:
                    try:
                        # the same object in another transfer syntax keeps its SOP Instance
                        # UID (PS3.5 A.4), as storescu and Orthanc do when they transcode
                        what.decompress(generate_instance_uid=False)
                    except Exception as exc:  # a codec failing on a broken stream
                        report.failed.append((path, f"the peer declined {ts} and decoding "
                                                    f"failed: {exc}"))
                        counter.step()
                        continue
                    report.decoded.append(path)
            try:
                status = assoc.send_c_store(what) if assoc.is_established else None
            except RuntimeError:  # the peer went away between the check and the send
                status = None
            except (AttributeError, ValueError) as exc:  # a file pynetdicom cannot send
                report.failed.append((path, f"not sent: {exc}"))
                counter.step()
                continue
            if status is None or "Status" not in status:
                for p, _c, _t in items[k:]:
                    report.failed.append((p, "the association was aborted (no C-STORE "
                                             "response)"))
                return
            code = int(status.Status)
            if code == 0 or 0xB000 <= code <= 0xBFFF:
                report.sent.append(path)
            else:
                report.failed.append((path, f"C-STORE status {status_text(code)}"))
            counter.step()


def stow_datasets(client, node, datasets) -> dict[str, str]:
    """STOW-RS ``datasets`` in one request with ``client`` (:func:`medview.pacs.web.web_client`).

    Returns
    -------
    dict
        SOP Instance UID → reason, for each instance the server answered it did not store
        (empty when it stored them all).

    Raises
    ------
    medview.pacs.errors.PacsError
        When the request itself failed (refused, 401, cut off, an HTTP error status).
    """
    from medview.pacs.web import web_errors

    with web_errors(node, "STOW-RS"):
        answer = client.store_instances(datasets)
    failed_uids = {}
    for item in answer.get("FailedSOPSequence", []) if answer is not None else []:
        failed_uids[str(item.get("ReferencedSOPInstanceUID", ""))] = \
            f"STOW-RS failure reason {int(item.get('FailureReason', 0)):#06x}"
    return failed_uids


def _stow(node, items, report: SendReport, progress: Progress) -> None:
    import pydicom

    from medview.pacs.web import web_client

    client = web_client(node)
    total = len(items)
    batch: list = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if not batch:
            return
        datasets = [pydicom.dcmread(p) for p in batch]
        try:
            failed_uids = stow_datasets(client, node, datasets)
        except AuthenticationFailed:
            raise
        except PacsError as exc:
            report.failed.extend((p, str(exc)) for p in batch)
        else:
            for p, ds in zip(batch, datasets, strict=True):
                reason = failed_uids.get(str(ds.SOPInstanceUID))
                if reason:
                    report.failed.append((p, reason))
                else:
                    report.sent.append(p)
        done = len(report.sent) + len(report.failed)
        progress.update(done / max(total, 1), f"{done}/{total} sent")
        batch, size = [], 0

    for path, _cls, _ts in items:
        progress.check()
        batch.append(path)
        size += path.stat().st_size
        if size >= STOW_BATCH_BYTES or len(batch) >= 200:
            flush()
    flush()


def send(node: Node, items: Iterable[str | os.PathLike], *, catalog=None,
         associations: int = DEFAULT_ASSOCIATIONS, audit: bool = True,
         progress: Progress = NO_PROGRESS) -> SendReport:
    """Store files, folders or catalog series/studies on ``node``.

    Parameters
    ----------
    node : DimseNode or WebNode
        C-STORE for a DICOM node, STOW-RS for a DICOMweb one.
    items : iterable of path or UID
        See :func:`medview.dicom.catalog.collect.collect_files`.
    catalog : medview.dicom.catalog.db.Catalog, optional
        To resolve UIDs.
    associations : int
        C-STORE over up to this many associations at once (a PACS answers each instance
        before the next comes on an association; in parallel the round trips overlap, as
        several instances in flight). A part whose association the peer refuses (some
        limit the associations per calling AE title) is sent after the others, one
        association at a time.
    audit : bool
        Write the audit lines (below). False only for a caller that writes its own line for
        the same disclosure (a de-identified share names the source series and the profile).
    progress : Progress
        Per instance; cancelling stops before the next one.

    Returns
    -------
    SendReport
        ``complete`` is False when any file was not stored (each listed with its reason).

    Every send writes one line per series to the disclosure audit log
    (:func:`medview.audit.record`, action ``send``): the node's name and address, the bytes
    stored, ``detail`` = instances stored, failed, method (and ``cancelled``) — also when it
    is cancelled or breaks off after some instances left.

    Raises
    ------
    ValueError
        An item that names nothing.
    medview.pacs.errors.PacsError
        When the node cannot be reached at all (nothing was sent).
    """
    t0 = time.perf_counter()
    report = SendReport(node.name, "C-STORE" if isinstance(node, DimseNode) else "STOW-RS")
    files = collect_files(items, catalog)
    progress.update(0.0, f"reading {len(files)} file(s)")
    series_of: dict[Path, tuple[str, int]] = {}
    items_ = _headers(files, report, series_of)
    log = _audit if audit else (lambda *a, **k: None)
    try:
        _send_items(node, items_, report, associations, progress)
    except Cancelled:
        log(node, report, series_of, cancelled=True)
        raise
    except PacsError:
        log(node, report, series_of, cancelled=False)  # what left before it failed
        raise
    log(node, report, series_of, cancelled=False)
    report.seconds = time.perf_counter() - t0
    progress.update(1.0, report.summary())
    return report


def _store_parallel(node: DimseNode, parts: list, report: SendReport, counter: _Counter,
                    associations: int) -> None:
    """Each part over its own association, ``associations`` at once. A part whose
    association the peer refuses (a limit per calling AE title) is sent afterwards over one
    association at a time; only if that is refused too are its files listed as not stored."""
    from concurrent.futures import ThreadPoolExecutor

    refused: list[tuple[list, PacsError]] = []

    def one(part) -> None:
        try:
            _store(node, part, report, counter)
        except PacsError as exc:
            refused.append((part, exc))

    with ThreadPoolExecutor(min(len(parts), max(associations, 1)),
                            thread_name_prefix="medview-cstore") as pool:
        for future in [pool.submit(one, part) for part in parts]:
            future.result()  # re-raises a cancel
    if refused and not report.sent:
        raise refused[0][1]  # none was accepted: the node, not a limit
    for part, _exc in refused:
        try:
            _store(node, part, report, counter)
        except PacsError as exc:  # this part only: its files are listed
            report.failed.extend((p, str(exc)) for p, _c, _t in part)


def _send_items(node: Node, items_, report: SendReport, associations: int,
                progress: Progress) -> None:
    if isinstance(node, DimseNode):
        # one association per group of SOP classes that fits the context limit
        groups: list[list] = []
        classes: dict[str, int] = {}
        for item in items_:
            cls = item[1]
            if cls not in classes:
                if not groups or len({c for _p, c, _t in groups[-1]}) * 2 >= MAX_CONTEXTS:
                    groups.append([])
                classes[cls] = len(groups) - 1
            groups[classes[cls]].append(item)
        counter = _Counter(progress, len(items_))
        parts = []
        for group in groups:
            n = max(1, min(associations, len(group) // 8 or 1))
            size = -(-len(group) // n)
            parts.extend(group[k:k + size] for k in range(0, len(group), size))
        if len(parts) == 1:
            _store(node, parts[0], report, counter)
        else:
            _store_parallel(node, parts, report, counter, associations)
        report.sent.sort()
        report.failed.sort()
        report.decoded.sort()
    else:
        _stow(node, items_, report, progress)
