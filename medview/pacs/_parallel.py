"""C-GET / C-MOVE of a list of instances over several associations at once.

A PACS sends a C-GET's (or C-MOVE's) C-STORE sub-operations one at a time: the next only
after our response to the previous one (Orthanc: ~3.8 ms an instance for a 512² CT, most of
it the round trip and the two sides' per-message work, not the bytes). Several associations,
each asking for a share of the instances at IMAGE level (a list of SOP Instance UIDs, PS3.4
C.4.2.2.1 and C.2.2.2.2), keep several instances in flight; Orthanc serves each association
in its own thread.

The shares come from one queue of requests, so an association the PACS refuses (a limit on
associations) or a request it refuses leaves its instances to the others; when the PACS
refuses every IMAGE-level request before anything arrived, :class:`ImageLevelRefused` tells
the caller to ask for the series or study in one request over one association instead.
Requests follow the listing's order and alternate between the associations (the first
request holds instances 1, n+1, 2n+1, …, the second 2, n+2, …), so the first instances still
arrive first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator

from medview.core.progress import Cancelled, Progress
from medview.pacs.errors import PacsError
from medview.pacs.nodes import DimseNode

__all__ = ["TRANSIENT_WAIT_S", "ImageLevelRefused", "StatusFailure", "run_parallel", "shares"]

#: how long a retrieve's association retries a "rejected transient" answer (a PACS at its
#: limit of associations frees one when our previous association's process has ended)
TRANSIENT_WAIT_S = 10.0

#: requests per association in a split (a request costs the PACS a look-up of its UIDs, and
#: requests of about equal size keep the associations busy until the end)
REQUESTS_PER_ASSOCIATION = 4
#: fewer instances than this per association are not worth another association's set-up
MIN_PER_ASSOCIATION = 8
# SOP Instance UIDs per IMAGE-level request at most (UID list matching, PS3.4 C.2.2.2.2)
UIDS_PER_REQUEST = 256


class StatusFailure(PacsError):
    """A C-GET / C-MOVE answered with a failure status (``code``); ``started`` is True when
    some sub-operation of that request had been reported before it."""

    def __init__(self, message: str, code: int, started: bool):
        super().__init__(message)
        self.code = code
        self.started = started


class ImageLevelRefused(PacsError):
    """Every IMAGE-level request was refused before any instance arrived."""


def associations_for(n_instances: int, wanted: int) -> int:
    """How many associations to use for ``n_instances``: at most ``wanted``, at least one,
    and no more than leave :data:`MIN_PER_ASSOCIATION` instances to each."""
    return max(1, min(int(wanted), n_instances // MIN_PER_ASSOCIATION))


def shares(study_uid: str, todo: dict[str, tuple[str, str]], n: int) -> list:
    """IMAGE-level identifiers for the instances of ``todo`` (SOP Instance UID → (series UID,
    SOP class UID), in the order they should arrive), alternating for ``n`` associations."""
    from pydicom.dataset import Dataset

    by_series: dict[str, list[str]] = {}
    for sop, (series, _cls) in todo.items():
        by_series.setdefault(series, []).append(sop)
    n = max(int(n), 1)
    size = UIDS_PER_REQUEST if n == 1 else \
        max(1, min(UIDS_PER_REQUEST, -(-len(todo) // (n * REQUESTS_PER_ASSOCIATION))))
    out = []
    for series, sops in by_series.items():
        for start in range(0, len(sops), size * n):
            part = sops[start:start + size * n]
            for k in range(min(n, len(part))):
                chunk = part[k::n]
                ds = Dataset()
                ds.QueryRetrieveLevel = "IMAGE"
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = series
                ds.SOPInstanceUID = chunk if len(chunk) > 1 else chunk[0]
                out.append(ds)
    return out


def run_requests(node: DimseNode, send: Callable, identifiers, progress: Progress,
                 what: str) -> None:
    """Send each identifier (``send(identifier)`` yields (status, dataset) of the responses)
    and check the statuses; a failure raises :class:`StatusFailure`."""
    from medview.pacs.dimse import check_status, status_text

    for identifier in identifiers:
        started = False
        for status, _ds in send(identifier):
            code = check_status(node, what, status)
            progress.check()  # raising inside the association aborts it
            if code in (0xFF00, 0xFF01):
                started = True
                continue
            if code == 0x0000:
                continue
            if code == 0xB000:  # warning: some sub-operations failed; the report lists them
                continue
            if code == 0xA801:
                raise PacsError(f"{node.name}: {what} refused: the PACS does not know our AE "
                                f"title {node.our_ae_title!r} as a C-MOVE destination: "
                                f"register it there with this host and port {node.our_port}")
            done = int(getattr(status, "NumberOfCompletedSubOperations", 0) or 0)
            raise StatusFailure(f"{node.name}: {what} failed with status {status_text(code)}",
                                code, started or done > 0)


def run_parallel(node: DimseNode, n: int, connect: Callable, send: Callable, identifiers: list,
                 progress: Progress, what: str, arrived: Callable[[], int]) -> int:
    """Send ``identifiers`` over up to ``n`` associations at once, each taking the next
    request from a shared queue.

    Parameters
    ----------
    connect : callable
        ``connect(give_up)`` → a context manager giving an established association
        (:func:`medview.pacs.dimse.association`, which stops retrying a transient rejection
        once ``give_up()``: another association works).
    send : callable
        ``send(assoc, identifier)`` → the responses, as ``assoc.send_c_get`` gives them.
    arrived : callable
        Instances stored so far by this retrieve (to tell a refused level from a failure).

    Returns
    -------
    int
        The associations the PACS accepted.

    Raises
    ------
    Cancelled
        After every association stopped.
    ImageLevelRefused
        The PACS refused the requests before anything arrived (ask in one request instead).
    PacsError
        The first failure; what its association did not bring stays missing. An association
        the PACS does not accept while another one works is no failure.
    """
    queue = deque(identifiers)
    lock = threading.Lock()
    stop = threading.Event()
    setup_errors: list[BaseException] = []
    errors: list[BaseException] = []
    refused: list[StatusFailure] = []
    established = [0]

    def take(current: list) -> Iterator:
        while not stop.is_set():
            with lock:
                if not queue:
                    return
                current[:] = [queue.popleft()]
            yield current[0]
            current.clear()

    def work() -> None:
        current: list = []  # the request being answered
        entered = False
        try:
            with connect(lambda: established[0] > 0 or stop.is_set()) as assoc:
                entered = True
                with lock:
                    established[0] += 1
                run_requests(node, lambda ds: send(assoc, ds), take(current), progress, what)
        except StatusFailure as exc:
            if exc.started or not current:
                errors.append(exc)
                return
            # nothing of this request came: give it back to the other associations and
            # leave (a PACS that limits what one caller may run at once answers so)
            with lock:
                queue.appendleft(current[0])
                refused.append(exc)
        except BaseException as exc:
            if not entered:  # this association only: the others may work
                setup_errors.append(exc)
                return
            errors.append(exc)
            if isinstance(exc, Cancelled):
                stop.set()

    threads = [threading.Thread(target=work, name=f"medview-pacs-{what.lower()}-{k}",
                                daemon=True) for k in range(max(1, n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cancelled = next((e for e in errors if isinstance(e, Cancelled)), None)
    if cancelled is not None or progress.cancelled:
        raise cancelled or Cancelled("cancelled by the user")
    if not established[0]:
        raise setup_errors[0]
    if errors:
        raise errors[0]
    if queue:  # every association left after a refused request
        if not arrived():
            raise ImageLevelRefused(str(refused[0]))
        raise refused[0]
    return established[0]
