"""Retrieve a study or a series into the store and the catalog: C-GET, C-MOVE or WADO-RS.

The instance list is asked first (C-FIND / QIDO-RS at instance level), so medview knows what
to expect, which instances are already here (a file at the path :mod:`medview.pacs.storage`
builds for it) and, after a failure, what is missing. C-GET and C-MOVE share the instances
out between several associations (the node's ``retrieve_associations``, IMAGE-level requests
listing their UIDs: a PACS sends one instance at a time per association); with one, a first
retrieve asks for the whole series or study in one request (the listing runs beside it) and a
resumed one for the missing instances by their UIDs.

Cancelling (``progress.cancel()``) aborts the transfer: what arrived is kept and indexed, and
:class:`~medview.core.progress.Cancelled` is raised. A PACS that goes away mid-transfer is not
an exception: the report lists what is missing (``report.complete`` is False) and a second
call fetches only that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medview.core.progress import NO_PROGRESS, Cancelled, Progress
from medview.pacs._fetch import (
    GET_MODEL,
    MOVE_MODEL,
    _get,
    _Listing,
    _move,
    _Sink,
    _wado,
    check_complete,
)
from medview.pacs._parallel import associations_for
from medview.pacs.errors import NodeUnreachable, PacsError
from medview.pacs.nodes import DimseNode, Node

__all__ = ["GET_MODEL", "MOVE_MODEL", "RetrieveReport", "check_complete", "retrieve"]


InstanceCallback = Callable[[Path, tuple[str, str, str]], None]


@dataclass
class RetrieveReport:
    """What a retrieve did.

    Attributes
    ----------
    expected : int
        Instances the PACS listed.
    already_local : int
        Of those, already in the store before this call (not asked for again).
    received : list of Path
        Files that arrived in this call.
    missing : list of str
        SOP Instance UIDs still not here (empty when complete).
    error : str
        Why the transfer stopped early ("" when it did not).
    paths : list of Path
        Every local file of the study/series after the call.
    associations : int
        C-GET / C-MOVE: the associations the PACS accepted for the transfer (0 for WADO-RS,
        or when nothing was asked for or the transfer failed).
    level : str
        C-GET / C-MOVE: the Query/Retrieve level asked at: "IMAGE" (lists of instances,
        shared between the associations), or "SERIES" / "STUDY" (one request).
    """

    node: str
    method: str
    study_uid: str
    series_uid: str = ""
    expected: int = 0
    already_local: int = 0
    received: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str = ""
    paths: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    associations: int = 0
    level: str = ""

    @property
    def complete(self) -> bool:
        return not self.missing and not self.error

    def summary(self) -> str:
        what = f"series {self.series_uid}" if self.series_uid else f"study {self.study_uid}"
        head = (f"{what} from {self.node} by {self.method}: {len(self.received)} received, "
                f"{self.already_local} already here, {len(self.missing)} missing of "
                f"{self.expected} ({self.seconds:.1f} s"
                + (f", over {self.associations} associations" if self.associations > 1
                   else "") + ")")
        if self.error:
            head += f"; stopped: {self.error}"
        if self.missing:
            head += " — run the same command again to fetch only the missing ones"
        return head


def retrieve(node: Node, study_uid: str, series_uid: str = "", *,
             method: Literal["get", "move", "wado"] | None = None, root=None, catalog=None,
             on_instance: InstanceCallback | None = None,
             on_listed: Callable[[dict], None] | None = None,
             associations: int | None = None,
             progress: Progress = NO_PROGRESS) -> RetrieveReport:
    """Bring a study (or one of its series) from ``node`` into the store and the catalog.

    Parameters
    ----------
    node : DimseNode or WebNode
    study_uid : str
    series_uid : str, optional
        Only this series.
    method : {"get", "move", "wado"}, optional
        Default: the DIMSE node's ``retrieve`` setting; ``"wado"`` for a web node.
    root : path, optional
        The store; default :func:`medview.pacs.storage.default_store`.
    catalog : medview.dicom.catalog.db.Catalog, optional
        The files are indexed into it at the end (also after a failure or a cancel).
    on_instance : callable, optional
        ``on_instance(path, (study_uid, series_uid, sop_uid))`` as each instance is stored
        (from a network thread), so a viewer can open a series while it arrives.
    on_listed : callable, optional
        ``on_listed(table)`` once the PACS listed the instances (SOP Instance UID →
        :class:`~medview.pacs.listing.ListedInstance`, with their positions when the PACS
        gives them), from the listing's thread or this one: a viewer can lay out the series
        before the files come.
    associations : int, optional
        C-GET / C-MOVE over up to this many associations at once, each asking for a share of
        the instances (IMAGE level, their UIDs from the listing); default the DIMSE node's
        ``retrieve_associations``. 1 asks for the series or study in one request. A PACS that
        refuses the extra associations, or IMAGE-level requests, gets one.
    progress : Progress
        Fraction = instances arrived / instances missing; cancel aborts the transfer.

    Returns
    -------
    RetrieveReport

    Raises
    ------
    medview.pacs.errors.PacsError
        When nothing arrived: the node cannot be reached, refuses (401, association
        rejected, an unknown C-MOVE destination), or has no such study or series. A transfer
        that fails after some instances arrived is not an exception: see the report.
    Cancelled
        After what arrived was kept and indexed.
    """
    from medview.pacs.storage import default_store, instance_path

    t0 = time.perf_counter()
    if method is None:
        method = node.retrieve if isinstance(node, DimseNode) else "wado"
    if method not in ("get", "move", "wado"):
        raise ValueError(f"method {method!r}: get, move or wado")
    if (method == "wado") == isinstance(node, DimseNode):
        raise ValueError(f"{node.name}: {method!r} needs a "
                         f"{'DICOMweb' if method == 'wado' else 'DICOM'} node")
    root = Path(root) if root is not None else default_store()
    report = RetrieveReport(node.name, method, study_uid, series_uid)
    progress.update(0.0, f"listing instances on {node.name}")
    scope = instance_path(root, study_uid, series_uid, "").parent
    if not series_uid:
        scope = scope.parent
    listing = _Listing(node, study_uid, series_uid)
    listing.on_table = on_listed
    n_assoc = 1
    if method != "wado":
        n_assoc = node.retrieve_associations if associations is None else int(associations)
        if n_assoc < 1:
            raise ValueError(f"associations {associations}: 1 or more")
    here = scope.is_dir() and next(scope.rglob("*.dcm"), None) is not None
    if here or n_assoc > 1:
        # something is here already: ask only for what is not; or the instances are to be
        # shared out between associations: their UIDs are needed first
        listing.run()
        if not here and listing.failed:
            n_assoc = 1  # the whole series in one request, as below (the error is kept)
    if here or listing.done:
        expected = listing.result()
        todo: dict | None = {sop: v for sop, v in expected.items()
                             if not instance_path(root, study_uid, v[0], sop).exists()}
        n_assoc = associations_for(len(todo or expected), n_assoc)
        if len(todo) == len(expected) and n_assoc == 1:
            todo = None  # everything, over one association: in one request
        classes = {cls for _series, cls in expected.values() if cls}
        n_todo = len(todo) if todo is not None else len(expected)
        report.already_local = len(expected) - n_todo
    else:
        # nothing here: ask for everything at once and list in parallel (the list is only
        # needed to say what is missing should the transfer fail)
        todo, classes, n_todo = None, None, 0
    sink = _Sink(report, n_todo, progress, on_instance)
    if todo is None and classes is None and not listing.failed:
        listing.on_done = sink.set_total
        listing.start()
    cancelled = None
    first_error: PacsError | None = None
    if todo is None or todo:
        try:
            whole = not report.already_local
            if method == "get":
                report.associations, report.level = _get(
                    node, root, study_uid, series_uid, todo, classes, sink, progress,
                    n_assoc, whole)
            elif method == "move":
                report.associations, report.level = _move(
                    node, root, study_uid, series_uid, todo, sink, progress, n_assoc, whole)
            else:
                try:
                    _wado(node, root, study_uid, series_uid, todo, sink, progress)
                except PacsError as exc:
                    if todo is not None or report.received or isinstance(exc, NodeUnreachable):
                        raise
                    # an archive may fail a whole stream over one instance it cannot transcode
                    # (Orthanc: HTTP 500 when a JPEG 2000 one comes first) and yet send each
                    # alone in its own syntax: ask for them one by one, as a resume does
                    _wado(node, root, study_uid, series_uid, listing.result(), sink, progress)
        except Cancelled as exc:
            cancelled = exc
        except (PacsError, OSError) as exc:
            report.error = str(exc)
            first_error = exc if isinstance(exc, PacsError) else PacsError(str(exc))
    try:
        expected = listing.result()
    except PacsError as exc:
        first_error = first_error or exc
        expected = {}
        report.error = (report.error + "; " if report.error else "") + \
            f"which instances are missing is not known: the instance list could not be had " \
            f"({exc}); run again to fetch the rest"
    report.expected = len(expected)
    path_of = {sop: instance_path(root, study_uid, series, sop)
               for sop, (series, _cls) in expected.items()}
    listed = {p for p in path_of.values() if p.exists()}
    report.paths = sorted(listed | {p for p in report.received if p.exists()})
    report.missing = sorted(sop for sop, p in path_of.items() if not p.exists())
    if catalog is not None and report.paths:
        progress.update(0.96, "indexing")
        catalog.index(report.paths, workers=1)
    report.seconds = time.perf_counter() - t0
    if cancelled is not None:
        raise cancelled
    if first_error is not None and not report.received:
        raise first_error  # nothing came: an error, not a partial result
    if not report.error and report.missing:
        report.error = f"the PACS sent {len(report.received)} of {n_todo or report.expected} " \
                       "instances asked for"
    if not report.expected and not report.error:
        raise PacsError(f"{node.name}: no instances of "
                        f"{'series ' + series_uid if series_uid else 'study ' + study_uid}")
    progress.update(1.0, report.summary())
    return report
