"""Associations with a DIMSE peer (pynetdicom), with errors that say what failed."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Sequence

from medview.pacs.errors import AssociationRejected, NodeUnreachable
from medview.pacs.nodes import DimseNode

__all__ = ["association", "check_status", "make_ae", "probe", "rejection_message", "status_text"]

# the largest PDU we accept; pynetdicom's default (16 KiB) costs round trips on big images
MAX_PDU = 4 * 1024 * 1024


def quiet_pynetdicom() -> None:
    """Stop pynetdicom formatting every C-FIND identifier for its debug log (it does so even
    when nothing logs at debug level: a third of a 1,000-study query's time), and shorten its
    association reactors' sleeps (:func:`medview.pacs._tuning.shorten_reactor_sleep`)."""
    from pynetdicom import _config

    _config.LOG_RESPONSE_IDENTIFIERS = False
    _config.LOG_REQUEST_IDENTIFIERS = False
    from medview.pacs._tuning import shorten_reactor_sleep

    shorten_reactor_sleep()


def make_ae(node: DimseNode):
    """A pynetdicom AE with ``node``'s calling AE title and timeouts."""
    from pynetdicom import AE

    quiet_pynetdicom()
    ae = AE(ae_title=node.our_ae_title)
    ae.connection_timeout = node.timeout_s
    ae.acse_timeout = node.timeout_s
    ae.dimse_timeout = node.timeout_s
    ae.network_timeout = node.timeout_s
    ae.maximum_pdu_size = MAX_PDU
    return ae


def probe(node: DimseNode) -> None:
    """Open and close a TCP connection to the node.

    Raises
    ------
    NodeUnreachable
        Naming host, port and why: refused, timeout, unknown host.
    """
    where = f"{node.name} ({node.host}:{node.port})"
    try:
        with socket.create_connection((node.host, node.port), timeout=min(node.timeout_s, 10)):
            pass
    except ConnectionRefusedError:
        raise NodeUnreachable(f"{where}: connection refused (nothing listens on that port; "
                              "is the PACS running, is the port right?)") from None
    except TimeoutError:
        raise NodeUnreachable(f"{where}: no answer within {min(node.timeout_s, 10):g} s "
                              "(timeout: a firewall, or the wrong host)") from None
    except socket.gaierror as exc:
        raise NodeUnreachable(f"{where}: unknown host ({exc.strerror})") from None
    except OSError as exc:
        raise NodeUnreachable(f"{where}: cannot connect ({exc.strerror or exc})") from None


def rejection_message(node: DimseNode, assoc) -> AssociationRejected:
    """The error for an association that was not established."""
    where = f"{node.name} ({node.ae_title}@{node.host}:{node.port})"
    if assoc.is_rejected:
        prim = assoc.acceptor.primitive
        reason = ""
        if prim is not None:
            with contextlib.suppress(Exception):  # a primitive without the fields
                reason = f"{prim.result_str}, {prim.reason_str}"
        hint = ""
        if "called" in reason.lower():
            hint = f"; check the peer's AE title (we called {node.ae_title!r})"
        elif "calling" in reason.lower():
            hint = (f"; the peer does not know our AE title {node.our_ae_title!r}: register it "
                    "there")
        return AssociationRejected(f"{where}: association rejected ({reason}){hint}", reason)
    if assoc.is_aborted:
        return AssociationRejected(f"{where}: the peer aborted the association", "aborted")
    return AssociationRejected(f"{where}: no association (the peer did not answer the DICOM "
                               f"request within {node.timeout_s:g} s, or it is not a DICOM "
                               "service)", "timeout")


def _is_transient(assoc) -> bool:
    prim = assoc.acceptor.primitive if assoc.is_rejected else None
    return prim is not None and getattr(prim, "result", None) == 0x02


@contextlib.contextmanager
def association(node: DimseNode, contexts: Sequence = (), *, ae=None, ext_neg=None,
                evt_handlers=None, transient_wait_s: float = 0.0,
                give_up: Callable[[], bool] | None = None) -> Iterator:
    """An established association with ``node``, released on exit (aborted on error).

    Parameters
    ----------
    node : DimseNode
    contexts : sequence of pynetdicom presentation contexts or abstract syntax UIDs
        Requested unless ``ae`` already has them.
    ae : pynetdicom.AE, optional
        Default :func:`make_ae`.
    transient_wait_s : float
        A "rejected transient" answer (a PACS at its limit of associations, e.g. DCMTK's
        ``MaxAssociations`` while the child process of our previous association has not
        been reaped yet) is retried for up to this long, backing off; 0 = not retried.
    give_up : callable, optional
        Stop retrying as soon as ``give_up()`` is true.

    Raises
    ------
    NodeUnreachable, AssociationRejected
    """
    probe(node)
    if ae is None:
        ae = make_ae(node)
    for cx in contexts:
        if isinstance(cx, str):
            ae.add_requested_context(cx)
        else:
            ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
    deadline = time.monotonic() + transient_wait_s
    pause = 0.02
    while True:
        try:
            assoc = ae.associate(node.host, node.port, ae_title=node.ae_title,
                                 ext_neg=ext_neg, evt_handlers=evt_handlers,
                                 max_pdu=MAX_PDU)
        except (OSError, RuntimeError) as exc:
            raise NodeUnreachable(f"{node.name}: {exc}") from None
        if assoc.is_established:
            break
        if not _is_transient(assoc) or time.monotonic() + pause > deadline or \
                (give_up is not None and give_up()):
            raise rejection_message(node, assoc)
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    from medview.pacs._tuning import speed_up

    speed_up(assoc)
    # pynetdicom 3.0 skips close() when shutdown() fails on a connection the peer reset, and
    # the socket leaks: keep it to close it ourselves
    wrapper = getattr(assoc.dul, "socket", None)
    raw = getattr(wrapper, "socket", None)
    # pynetdicom 3.0 race: its reactor thread polls for incoming requests (the only caller
    # of get_msg(block=False)) and can wake just after send_c_store() checked that it was
    # paused; with a fast peer it then takes the C-STORE response ("Received unexpected
    # C-STORE service message") and the send waits out the DIMSE timeout. On our own
    # requesting association the peer sends no requests (C-GET's sub-operations are read
    # by send_c_get() itself, blocking), so the reactor gets none.
    take = assoc.dimse.get_msg
    assoc.dimse.get_msg = lambda block=False: take(block) if block else (None, None)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()
    finally:
        if raw is not None:
            raw.close()
        waker = getattr(wrapper, "_waker", None)  # see medview.pacs._tuning
        if waker is not None:
            waker.close()


def check_status(node: DimseNode, what: str, status) -> int:
    """The status code of a DIMSE response; PacsError when there is none (the peer dropped
    the association or did not answer)."""
    if status is None or "Status" not in status:
        raise AssociationRejected(f"{node.name}: no {what} response (the association was "
                                  "aborted or the peer did not answer in time)", "aborted")
    return int(status.Status)


def status_text(code: int) -> str:
    from pynetdicom.status import code_to_category

    return f"0x{code:04X} ({code_to_category(code)})"

