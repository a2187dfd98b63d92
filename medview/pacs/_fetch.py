"""How a retrieve fetches: C-GET, C-MOVE (to our storage SCP), WADO-RS, and their helpers.

Private to :mod:`medview.pacs.retrieve`, which decides what to ask for and reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from medview.core.progress import Progress
from medview.pacs._parallel import (
    TRANSIENT_WAIT_S,
    ImageLevelRefused,
    run_parallel,
    run_requests,
    shares,
)
from medview.pacs.errors import PacsError
from medview.pacs.nodes import DimseNode, Node

if TYPE_CHECKING:  # the report is made by medview.pacs.retrieve, which imports this module
    from medview.pacs.retrieve import RetrieveReport

InstanceCallback = Callable[[Path, tuple[str, str, str]], None]

GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Query/Retrieve - GET
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"  # Study Root Query/Retrieve - MOVE


class _Sink:
    """Counts arrivals from any thread and reports them."""

    def __init__(self, report: RetrieveReport, total: int, progress: Progress,
                 on_instance: InstanceCallback | None):
        self.report = report
        self.total = max(total, 1)
        self.progress = progress
        self.on_instance = on_instance
        self.lock = threading.Lock()

    def set_total(self, total: int) -> None:
        """The number asked for, once the listing that runs beside the transfer knows it
        (called from the listing's thread)."""
        with self.lock:
            if self.total > 1:
                return
            self.total = max(total - self.report.already_local, 1)
            n, total = len(self.report.received), self.total
        self.progress.update(0.05 + 0.9 * min(n / total, 1.0), f"{n}/{total} instances")

    def count(self) -> int:
        """Instances stored so far."""
        with self.lock:
            return len(self.report.received)

    def __call__(self, path: Path, uids: tuple[str, str, str]) -> None:
        with self.lock:
            self.report.received.append(path)
            n = len(self.report.received)
            total = self.total
        if total > 1:
            self.progress.update(0.05 + 0.9 * min(n / total, 1.0), f"{n}/{total} instances")
        else:
            self.progress.update(0.05, f"{n} instances")
        if self.on_instance is not None:
            self.on_instance(path, uids)


class _Listing:
    """The instance list (:func:`medview.pacs.listing.instance_table`), here or in a thread.

    ``on_done(n)`` and ``on_table(table)`` are called (in the listing's thread) once it is
    known."""

    def __init__(self, node: Node, study_uid: str, series_uid: str):
        self.args = (node, study_uid, series_uid)
        self.on_done: Callable[[int], None] | None = None
        self.on_table: Callable[[dict], None] | None = None
        self._value: dict | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        from medview.pacs.listing import instance_table

        try:
            self._value = instance_table(*self.args)
        except (PacsError, OSError) as exc:
            self._error = exc if isinstance(exc, PacsError) else PacsError(str(exc))
            return
        if self.on_table is not None:
            self.on_table(self._value)
        if self.on_done is not None:
            self.on_done(len(self._value))

    @property
    def done(self) -> bool:
        """It ran here (:meth:`run`) and has its result."""
        return self._thread is None and self._value is not None

    @property
    def failed(self) -> bool:
        return self._error is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="medview-pacs-list", daemon=True)
        self._thread.start()

    def result(self) -> dict:
        """SOP Instance UID → (series UID, SOP class UID)."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return {sop: (i.series_uid, i.sop_class) for sop, i in (self._value or {}).items()}


def _identifiers(study_uid: str, series_uid: str, todo: dict[str, tuple[str, str]] | None,
                 n: int = 1):
    """C-GET/C-MOVE identifiers: one for everything, or lists of the missing instances
    (shared out for ``n`` associations)."""
    from pydicom.dataset import Dataset

    if todo is None:
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
        ds.StudyInstanceUID = study_uid
        if series_uid:
            ds.SeriesInstanceUID = series_uid
        return [ds]
    return shares(study_uid, todo, n)


def _transient_wait(node: DimseNode) -> float:
    return min(TRANSIENT_WAIT_S, node.timeout_s)


def _requests(node: DimseNode, connect, send, study_uid, series_uid, todo, n: int, whole: bool,
              progress, what: str, arrived) -> tuple[int, str]:
    """``todo`` (or everything when None) over ``n`` associations; with ``whole`` (nothing of
    it was here), a PACS that refuses IMAGE-level requests is asked for the series or study
    in one request instead. Returns the associations that carried it and the level asked
    for ("IMAGE", or "SERIES"/"STUDY" for one request)."""
    if todo is not None and n > 1:
        try:
            return run_parallel(node, n, connect, send,
                                _identifiers(study_uid, series_uid, todo, n), progress, what,
                                arrived), "IMAGE"
        except ImageLevelRefused:
            if not whole:
                raise
            todo = None
    identifiers = _identifiers(study_uid, series_uid, todo)
    with connect(None) as assoc:
        run_requests(node, lambda ds: send(assoc, ds), identifiers, progress, what)
    return 1, str(identifiers[0].QueryRetrieveLevel)


def _get(node: DimseNode, root: Path, study_uid, series_uid, todo, classes, sink,
         progress, n: int = 1, whole: bool = False) -> tuple[int, str]:
    from functools import partial

    from pynetdicom import build_role, evt
    from pynetdicom.dsutils import create_file_meta

    from medview.pacs.dimse import association, make_ae
    from medview.pacs.scp import TRANSFER_SYNTAXES
    from medview.pacs.storage import RawWriter

    if not classes:  # not known (yet, or not listed): every storage class pynetdicom knows
        from medview.pacs.scp import storage_classes

        classes = storage_classes()
    classes = sorted(classes)[:127]
    roles = [build_role(cls, scp_role=True) for cls in classes]

    def on_store(event) -> int:
        if progress.cancelled:
            return 0xA702  # refused: out of resources (cancelled); the abort follows
        # the bytes as received, written by another thread: the PACS sends the next one
        # meanwhile (see RawWriter; what could not be written is reported missing); the
        # File Meta Information (what event.file_meta makes) is made there too
        req = event.request
        writer.put(partial(create_file_meta, sop_class_uid=req.AffectedSOPClassUID,
                           sop_instance_uid=req.AffectedSOPInstanceUID,
                           transfer_syntax=event.context.transfer_syntax),
                   req.DataSet.getvalue())
        return 0x0000

    def connect(give_up):
        ae = make_ae(node)  # one per association: its contexts are its own
        ae.add_requested_context(GET_MODEL)
        for cls in classes:
            ae.add_requested_context(cls, TRANSFER_SYNTAXES)
        return association(node, ae=ae, ext_neg=roles,
                           evt_handlers=[(evt.EVT_C_STORE, on_store)],
                           transient_wait_s=_transient_wait(node), give_up=give_up)

    with RawWriter(root, sink) as writer:
        return _requests(node, connect, lambda assoc, ds: assoc.send_c_get(ds, GET_MODEL),
                         study_uid, series_uid, todo, n, whole, progress, "C-GET", sink.count)


def _move(node: DimseNode, root: Path, study_uid, series_uid, todo, sink, progress,
          n: int = 1, whole: bool = False) -> tuple[int, str]:
    from medview.pacs.dimse import association
    from medview.pacs.scp import StorageSCP

    if not node.our_port:
        raise PacsError(f"{node.name}: C-MOVE needs our storage port, registered at the PACS "
                        f"with our AE title {node.our_ae_title!r} (medview pacs add ... "
                        "--our-port PORT), or retrieve by C-GET")
    from medview.pacs.errors import AssociationRejected

    try:
        with StorageSCP(node.our_ae_title, node.our_port, root, allowed_aets=[node.ae_title],
                        host="", on_instance=sink, write_behind=True):
            def connect(give_up):
                return association(node, [MOVE_MODEL], transient_wait_s=_transient_wait(node),
                                   give_up=give_up)

            def send(assoc, ds):
                return assoc.send_c_move(ds, node.our_ae_title, MOVE_MODEL)

            return _requests(node, connect, send, study_uid, series_uid, todo, n, whole,
                             progress, "C-MOVE", sink.count)
    except AssociationRejected as exc:
        if exc.reason != "aborted":
            raise
        raise PacsError(f"{exc}; a PACS does this when it does not know our AE title "
                        f"{node.our_ae_title!r} as a C-MOVE destination: register it there "
                        f"with this host and port {node.our_port}") from None


WADO_PARALLEL = 4


def check_complete(ds) -> None:
    """Raise PacsError when a dataset lacks its UIDs, or an image its pixel data or bytes of it.

    A multipart response cut off mid-part (the server died) still parses into a dataset
    without the tail: that must not become a file that looks like a good instance.
    """
    missing = [k for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
               if not ds.get(k)]
    if missing:
        raise PacsError(f"an instance arrived without {', '.join(missing)} (the transfer was "
                        "cut off, or the server sent something else)")
    if "Rows" not in ds:
        return  # not an image: nothing more to check
    pixel = next((k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
                  if k in ds), None)
    if pixel is None:
        raise PacsError(f"instance {ds.get('SOPInstanceUID', '?')}: arrived without its pixel "
                        "data (the transfer was cut off)")
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return  # encapsulated: pydicom reads up to the sequence delimiter or fails
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16))
    want = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * frames
    want = (want + 7) // 8 if bits == 1 else want * bits // 8
    if len(ds[pixel].value) < want:
        raise PacsError(f"instance {ds.get('SOPInstanceUID', '?')}: {len(ds[pixel].value)} of "
                        f"{want} pixel bytes arrived (the transfer was cut off)")


def _wado(node, root: Path, study_uid, series_uid, todo, sink, progress) -> None:
    from medview.pacs.storage import write_dataset
    from medview.pacs.web import web_client, web_errors

    client = web_client(node)

    def keep(ds) -> None:
        progress.check()
        check_complete(ds)
        path = write_dataset(root, ds)
        sink(path, (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                    str(ds.SOPInstanceUID)))

    with web_errors(node, "WADO-RS retrieve"):
        if todo is None:
            it = (client.iter_series(study_uid, series_uid) if series_uid
                  else client.iter_study(study_uid))
            try:
                for ds in it:
                    keep(ds)
            finally:
                it.close()
        else:
            # one request per instance (WADO-RS has no list of instances): a few at a time
            from concurrent.futures import ThreadPoolExecutor

            def one(item):
                sop, (series, _cls) = item
                if not progress.cancelled:
                    keep(client.retrieve_instance(study_uid, series, sop))

            with ThreadPoolExecutor(WADO_PARALLEL, thread_name_prefix="medview-wado") as pool:
                for _ in pool.map(one, todo.items()):
                    pass
                progress.check()
