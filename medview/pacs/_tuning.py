"""Speed for pynetdicom's transport on the associations medview runs (no protocol changes).

pynetdicom 3.0's reactor thread polls the socket with ``select(timeout=0)`` and sleeps 1 ms
whenever nothing came (``_run_loop_delay``), and reads a PDU 4 KiB per ``recv`` call. With a
peer that waits for each C-STORE response before it sends the next instance (every PACS),
those sleeps are paid once or twice per instance, and a 512² slice costs 128 Python calls to
read; and Nagle's algorithm stays on, so the tail of each PDU sent waits for the peer's
delayed ACK. :func:`speed_up` makes one association's reactor wait in ``select`` for data
or for work: another thread that queues something for it (a PDU to send, an event, the end
of the association) wakes it through a socket pair (:class:`_Waker`), so an idle reactor
sleeps up to :data:`IDLE_WAIT_S` between looks at its timers instead of waking every
0.3 ms (each wake-up took the interpreter lock from the threads doing the work: a retrieve
over several associations was slower than over one). Each read takes what the kernel holds,
up to :data:`READ_AHEAD` bytes, and the next PDU headers and small PDUs come from there
(big ones go straight into their buffer with ``recv_into``); TCP_NODELAY is set (as DCMTK
does with ``TCP_NODELAY=1``).

Sending: the reactor encodes each P-DATA-TF PDU with pynetdicom's own encoders, but where
``PDU.encode`` concatenates their outputs (the whole fragment copied twice more) and
``AssociationSocket.send`` slices what the kernel did not take yet (copied again), the pieces
go to the kernel in one ``sendmsg`` (``sendall`` for the other PDUs). And the socket
acknowledges what arrives at once (``TCP_QUICKACK``): a peer with Nagle's algorithm on waits
for that ACK before the rest of each response (:func:`_quick_ack`). pynetdicom's logging
handlers, which format lines for every PDU and message, are unbound while its logger would
drop them (:func:`_unbind_silent_loggers`).
Same bytes, same state machine, same events.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time
import weakref

__all__ = ["REACTOR_SLEEP_S", "WAIT_S", "pdu_pieces", "shorten_reactor_sleep", "speed_up"]

#: the association reactor's pause between its checks (pynetdicom's is 1 ms)
REACTOR_SLEEP_S = 0.0002

#: the longest a reactor waits for incoming data before it looks at its outgoing queue
#: (where nothing wakes it when something is queued)
WAIT_S = 0.0003
#: the longest a woken reactor waits for data before it looks at its timers
IDLE_WAIT_S = 0.005
#: a rest of a PDU this big is read straight into it; smaller reads take what is there
BULK_BYTES = 32768
#: bytes a read may take beyond the PDU asked for (kept for the next ones)
READ_AHEAD = 1 << 20

_fast_class = None


def _send_pieces(sock: socket.socket, pieces: list) -> None:
    """All of ``pieces`` in order, as one stream: ``sendmsg`` gathers them without joining
    (``sendall`` of the joined bytes where there is no ``sendmsg``)."""
    if not hasattr(sock, "sendmsg"):
        sock.sendall(b"".join(pieces))
        return
    views = [memoryview(p) for p in pieces if len(p)]
    while views:
        sent = sock.sendmsg(views)
        while sent:  # drop what the kernel took; the rest goes again
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0] = views[0][sent:]
                sent = 0


def _quick_ack(sock: socket.socket) -> None:
    """Acknowledge the peer's next segments at once instead of after Linux's delayed-ACK
    timer (up to 40 ms); the kernel drops back to delaying after a while, so this is set
    again after every PDU read.

    A peer that leaves Nagle's algorithm on (DCMTK without ``TCP_NODELAY=1`` in its
    environment — Orthanc as packaged) holds the rest of each C-STORE response until its
    first segment is acknowledged: each instance then waits for our delayed ACK (Orthanc
    here: 48 ms an instance, for storescu as for plain pynetdicom). Only the
    timing of TCP acknowledgements changes, not a byte of DICOM.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no TCP_QUICKACK
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def pdu_pieces(pdu) -> list:
    """What ``pdu.encode()`` returns, as the list of its encoders' outputs in order (items
    expanded the same way): ``b"".join(pdu_pieces(pdu)) == pdu.encode()``."""
    from pynetdicom.pdu import PDU

    out: list = []
    for attr, func, args in pdu._encoders:
        if func is PDU._wrap_encode_items:  # concatenates item.encode() of each item
            for item in getattr(pdu, attr):
                out.extend(pdu_pieces(item))
        elif attr:
            out.append(func(getattr(pdu, attr), *args))
        else:
            out.append(func(*args))
    return out


def _fast_socket_class():
    global _fast_class
    if _fast_class is not None:
        return _fast_class
    from pynetdicom import evt
    from pynetdicom.transport import AssociationSocket

    class FastSocket(AssociationSocket):
        """pynetdicom's socket wrapper, waiting for data in ``select``, reading in bulk
        and sending without extra copies."""

        _rbuf: bytearray
        _rview: memoryview
        _rpos = 0
        _rend = 0
        _waker: _Waker | None = None

        @property
        def ready(self) -> bool:
            if self.socket is None or self._is_connected is False:
                time.sleep(WAIT_S)  # the reactor no longer sleeps itself: no busy loop
                return False
            if self._rend > self._rpos:
                return True  # the rest of what one read brought
            waker = self._waker
            if waker is not None and waker.closed:
                waker = None
            try:
                if waker is None:
                    ready, _, _ = select.select([self.socket], [], [], WAIT_S)
                    return bool(ready)
                # armed before looking at the queues: what is queued after the look wakes
                # the select below; what was queued before it is seen by the look
                waker.armed = True
                dul = self.assoc.dul
                # something is still to be done (an event the reactor put itself): only look
                wait = 0 if dul.event_queue.qsize() or dul.to_provider_queue.qsize() \
                    else IDLE_WAIT_S
                try:
                    ready, _, _ = select.select([self.socket, waker.r], [], [], wait)
                finally:
                    waker.armed = False
                if waker.r in ready:
                    waker.drain()
            except (OSError, TimeoutError, ValueError):
                self.event_queue.put("Evt17")  # transport closed, as pynetdicom does
                return False
            return self.socket in ready

        def recv(self, nr_bytes: int) -> bytearray:
            buf = bytearray(nr_bytes)
            view = memoryview(buf)
            got = min(self._rend - self._rpos, nr_bytes)
            if got:  # first what the last read brought beyond the last PDU
                view[:got] = self._rview[self._rpos:self._rpos + got]
                self._rpos += got
            read = False
            while got < nr_bytes:
                want = nr_bytes - got
                if want >= BULK_BYTES:  # a big rest: straight into the result
                    n = self.socket.recv_into(view[got:], want)
                    taken = n
                else:  # a PDU header or a small PDU: read what is there, keep the rest
                    n = self.socket.recv_into(self._rview, len(self._rbuf))
                    taken = min(n, want)
                    view[got:got + taken] = self._rview[:taken]
                    self._rpos, self._rend = taken, n
                read = True
                if not n:  # the connection broke: what came so far, as pynetdicom returns
                    del view
                    return buf[:got]
                got += taken
            del view
            if read:
                _quick_ack(self.socket)
            return buf

        def send(self, bytestream: bytes) -> None:
            self.send_pieces([bytestream])

        def send_pieces(self, pieces: list) -> None:
            """pynetdicom's ``send`` of ``b"".join(pieces)`` (same event, same Evt17 when
            the connection is gone), without joining them."""
            try:
                _send_pieces(self.socket, pieces)
            except Exception:
                self.event_queue.put("Evt17")  # transport closed, as pynetdicom does
                return
            if self.assoc.get_handlers(evt.EVT_DATA_SENT):
                evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": b"".join(pieces)})

        def close(self) -> None:
            super().close()
            if self._waker is not None:
                self._waker.close()

    _fast_class = FastSocket
    return FastSocket


class _Waker:
    """A socket pair whose reading end a reactor's ``select`` watches beside the
    association's socket: writing a byte wakes it the moment another thread queues
    something for it (a PDU to send, an event, the end of the association)."""

    def __init__(self):
        self.r, self.w = socket.socketpair()
        self.r.setblocking(False)
        self.w.setblocking(False)
        self.closed = False
        self.armed = False  # the reactor is about to wait, or waits, in select

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # already woken (buffer full) or closed
            self.w.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self.r.recv(4096):
                pass

    def close(self) -> None:
        self.closed = True
        self.r.close()
        self.w.close()


class _WakingQueue(queue.Queue):
    """A queue whose ``put`` from any thread but its reactor's wakes that reactor."""

    _waker: _Waker
    _reactor: threading.Thread

    def put(self, item, block=True, timeout=None) -> None:
        super().put(item, block, timeout)
        # only a reactor waiting in select needs the byte; a busy one looks anyway
        if self._waker.armed and threading.get_ident() != self._reactor.ident:
            self._waker.wake()


def _waking_queue(q, waker: _Waker, reactor: threading.Thread) -> None:
    if type(q) is queue.Queue:
        q._waker, q._reactor = waker, reactor
        q.__class__ = _WakingQueue


def _wake_on_work(dul, sock) -> None:
    """Let the reactor wait in ``select`` until data comes or another thread gives it
    work, instead of looking every :data:`WAIT_S`."""
    waker = _Waker()
    _waking_queue(dul.to_provider_queue, waker, dul)
    _waking_queue(dul.event_queue, waker, dul)
    kill = dul.kill_dul

    def kill_dul() -> None:
        kill()
        waker.wake()  # always: the reactor may be about to wait

    dul.kill_dul = kill_dul
    sock._waker = waker
    # closed with the socket; where pynetdicom never closes that (a peer that reset the
    # connection), when the association's socket object goes
    weakref.finalize(sock, waker.close)
    waker.wake()  # anything queued before this: look at once


def _send_in_pieces(dul, sock) -> None:
    """Make ``dul`` send P-DATA-TF PDUs as the pieces pynetdicom encodes (one ``sendmsg``)."""
    from pynetdicom import evt
    from pynetdicom.pdu import P_DATA_TF

    def send(pdu) -> None:  # DULServiceProvider._send, P-DATA-TF without the joins
        if type(pdu) is not P_DATA_TF or dul.socket is not sock or sock.socket is None:
            type(dul)._send(dul, pdu)
            return
        sock.send_pieces(pdu_pieces(pdu))
        evt.trigger(dul.assoc, evt.EVT_PDU_SENT, {"pdu": pdu})

    dul._send = send


def speed_up(assoc) -> None:
    """Apply the faster transport to ``assoc`` (a requestor's after it is established, an
    acceptor's from its connection-open event). TLS sockets are left as they are (their
    buffered bytes are invisible to ``select``)."""
    import ssl

    from pynetdicom.transport import AssociationSocket

    _unbind_silent_loggers(assoc)
    dul = getattr(assoc, "dul", None)
    sock = getattr(dul, "socket", None)
    if sock is None or type(sock) is not AssociationSocket \
            or isinstance(sock.socket, ssl.SSLSocket):
        return
    # the reactor runs already: everything the new methods use is there before them
    sock._rbuf = bytearray(READ_AHEAD)
    sock._rview = memoryview(sock._rbuf)
    cls = _fast_socket_class()
    _wake_on_work(dul, sock)
    sock.__class__ = cls
    dul._run_loop_delay = 0.0  # the select above is the wait now
    _send_in_pieces(dul, sock)
    # pynetdicom leaves Nagle's algorithm on: the last segment of each PDU then waits for
    # the peer's delayed ACK (up to 40 ms on Linux) before it leaves — per instance sent
    with contextlib.suppress(OSError):
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quick_ack(sock.socket)


def _unbind_silent_loggers(assoc) -> None:
    """Unbind pynetdicom's standard logging handlers from ``assoc`` when its handler logger
    would log nothing (below INFO, the default).

    pynetdicom binds them to every association: for each PDU and DIMSE message sent or
    received they build an event (with a timestamp), take the association's lock and format
    the lines of a message (a C-STORE response's status looked up, its UIDs named) — all of
    it thrown away when nothing logs at INFO. About a fifth of the CPU a C-STORE costs.
    """
    import logging

    if logging.getLogger("pynetdicom._handlers").isEnabledFor(logging.INFO):
        return
    from pynetdicom import _handlers, evt

    for event, handler in ((evt.EVT_DIMSE_RECV, _handlers.standard_dimse_recv_handler),
                           (evt.EVT_DIMSE_SENT, _handlers.standard_dimse_sent_handler),
                           (evt.EVT_PDU_RECV, _handlers.standard_pdu_recv_handler),
                           (evt.EVT_PDU_SENT, _handlers.standard_pdu_sent_handler)):
        assoc.unbind(event, handler)


class _ReactorClock:
    """``time`` for pynetdicom's association module, whose reactor's 1 ms sleep and
    ``kill()``'s 10 ms become :data:`REACTOR_SLEEP_S` (its other sleeps — 0.1 ms waits,
    the 100 ms after an abort — stay as they are).

    Each association runs a reactor that sleeps 1 ms between looking for a received message
    (an acceptor: every C-STORE a PACS sends on a C-MOVE waits for it), and a requestor's
    ``send_c_store`` waits for that reactor to pause before each instance. The loop body is
    a few microseconds; waking five times as often costs little and takes most of the
    millisecond off every instance. ``kill()`` (after every release) looks every 10 ms
    whether the DUL reactor has stopped, which it does within a few hundred microseconds of
    the release: one association in two paid 10 ms at its end.
    """

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(REACTOR_SLEEP_S if seconds in (0.001, 0.01) else seconds)


def shorten_reactor_sleep() -> None:
    """Install :class:`_ReactorClock` in ``pynetdicom.association`` (once, process-wide)."""
    import pynetdicom.association as association

    if not isinstance(association.time, _ReactorClock):
        association.time = _ReactorClock()
