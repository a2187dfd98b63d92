"""Speed for pynetdicom's transport on the associations medview runs (no protocol changes).

pynetdicom 3.0's reactor thread polls the socket with ``select(timeout=0)`` and sleeps 1 ms
whenever nothing came (``_run_loop_delay``), and reads a PDU 4 KiB per ``recv`` call. With a
peer that waits for each C-STORE response before it sends the next instance (every PACS),
those sleeps are paid once or twice per instance, and a 512² slice costs 128 Python calls to
read; and Nagle's algorithm stays on, so the tail of each PDU sent waits for the peer's
delayed ACK. :func:`speed_up` makes one association's reactor wait in ``select`` for data
instead (it wakes the moment bytes arrive, and still checks its outgoing queue every
:data:`WAIT_S`), read each PDU with ``recv_into`` in as few calls as the kernel allows, and
sets TCP_NODELAY (as DCMTK does with ``TCP_NODELAY=1``).
Same bytes, same state machine, same events.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time

__all__ = ["REACTOR_SLEEP_S", "WAIT_S", "shorten_reactor_sleep", "speed_up"]

#: the association reactor's pause between its checks (pynetdicom's is 1 ms)
REACTOR_SLEEP_S = 0.0002

#: the longest a reactor waits for incoming data before it looks at its outgoing queue
WAIT_S = 0.0003

_fast_class = None


def _fast_socket_class():
    global _fast_class
    if _fast_class is not None:
        return _fast_class
    from pynetdicom.transport import AssociationSocket

    class FastSocket(AssociationSocket):
        """pynetdicom's socket wrapper, waiting for data in ``select`` and reading in bulk."""

        @property
        def ready(self) -> bool:
            if self.socket is None or self._is_connected is False:
                time.sleep(WAIT_S)  # the reactor no longer sleeps itself: no busy loop
                return False
            try:
                ready, _, _ = select.select([self.socket], [], [], WAIT_S)
            except (OSError, TimeoutError, ValueError):
                self.event_queue.put("Evt17")  # transport closed, as pynetdicom does
                return False
            return bool(ready)

        def recv(self, nr_bytes: int) -> bytearray:
            buf = bytearray(nr_bytes)
            view = memoryview(buf)
            got = 0
            while got < nr_bytes:
                n = self.socket.recv_into(view[got:], nr_bytes - got)
                if not n:  # the connection broke: what came so far, as pynetdicom returns
                    del view
                    return buf[:got]
                got += n
            del view
            return buf

    _fast_class = FastSocket
    return FastSocket


def speed_up(assoc) -> None:
    """Apply the faster transport to ``assoc`` (a requestor's after it is established, an
    acceptor's from its connection-open event). TLS sockets are left as they are (their
    buffered bytes are invisible to ``select``)."""
    import ssl

    from pynetdicom.transport import AssociationSocket

    dul = getattr(assoc, "dul", None)
    sock = getattr(dul, "socket", None)
    if sock is None or type(sock) is not AssociationSocket \
            or isinstance(sock.socket, ssl.SSLSocket):
        return
    sock.__class__ = _fast_socket_class()
    dul._run_loop_delay = 0.0  # the select above is the wait now
    # pynetdicom leaves Nagle's algorithm on: the last segment of each PDU then waits for
    # the peer's delayed ACK (up to 40 ms on Linux) before it leaves — per instance sent
    with contextlib.suppress(OSError):
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _ReactorClock:
    """``time`` for pynetdicom's association module, whose reactor's 1 ms sleep becomes
    :data:`REACTOR_SLEEP_S` (its other sleeps — 0.1 ms waits, the 10 and 100 ms of an
    abort — stay as they are).

    Each association runs a reactor that sleeps 1 ms between looking for a received message
    (an acceptor: every C-STORE a PACS sends on a C-MOVE waits for it), and a requestor's
    ``send_c_store`` waits for that reactor to pause before each instance. The loop body is
    a few microseconds; waking five times as often costs little and takes most of the
    millisecond off every instance.
    """

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(REACTOR_SLEEP_S if seconds == 0.001 else seconds)


def shorten_reactor_sleep() -> None:
    """Install :class:`_ReactorClock` in ``pynetdicom.association`` (once, process-wide)."""
    import pynetdicom.association as association

    if not isinstance(association.time, _ReactorClock):
        association.time = _ReactorClock()
