"""Requests whose body goes straight between a buffer and the socket: ``http.client``.

Why not httpx for a result's body: httpx (h11 beneath it) hands a response body over one TLS
record (16 KiB) at a time, each through several Python layers; for a 300 MiB result that is
about 19,000 events, and on loopback that work, not the network, was what limited the download
(httpx about 560 MiB/s, ``HTTPResponse.readinto`` of the same response into a 1 MiB buffer
about 1 GiB/s, half the client's CPU time; ``benchmarks/offload.py``). A job's upload goes the
same way: its parts (views of the arrays) are handed to the socket as they are, where httpx
sent copies of them in 4 MiB pieces. Only these two take this path; every other request, and
the retry and resume logic around these, stay in :class:`~medview.remote.client.RemoteClient`.
Errors come out as the httpx exceptions the client already handles, so both paths are retried
and resumed the same way.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

__all__ = ["DirectGet", "DirectResponse", "direct_usable"]

#: the longest answer to an upload read (a job's status, or an error: a few hundred bytes)
MAX_ANSWER_BYTES = 1 << 20


def direct_usable(url: str) -> bool:
    """Whether ``url`` is reached without a proxy (httpx honours the proxy variables of the
    environment; this path does not, so a proxied endpoint stays with httpx)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(parts.hostname, proxies))


class DirectResponse:
    """A response whose body is read with ``readinto`` (``status_code``, ``headers``)."""

    def __init__(self, response: http.client.HTTPResponse):
        self._r = response
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive .get, like httpx's

    def iter_into(self, buffer: bytearray) -> Iterator[memoryview]:
        """The body, as views of ``buffer`` filled again and again (each view is valid until
        the next one is asked for): no bytes object per piece, memory bounded by the buffer.
        A connection that ends early just ends the iteration (the caller counts the bytes)."""
        view = memoryview(buffer)
        while True:
            n = self._mapped(self._r.readinto, view)
            if not n:
                return
            yield view[:n]

    def read(self) -> bytes:
        """The whole (small) body: an error's JSON."""
        return self._mapped(self._r.read)

    def _read_at_most(self, limit: int) -> bytes:
        """The whole body; httpx's ReadError when it is longer than ``limit`` bytes or ends
        before its announced length (``read(n)`` of http.client does not say so itself: a
        server killed mid-answer gave an empty "201")."""
        import httpx

        data = self._mapped(self._r.read, limit + 1)
        if len(data) > limit:
            raise httpx.ReadError(f"the answer is longer than {limit} bytes")
        if self._r.length:  # bytes announced that never came
            raise httpx.ReadError(f"the answer ended after {len(data)} bytes, "
                                  f"{self._r.length} short")
        return data

    @staticmethod
    def _mapped(read, *args):
        """``read(*args)`` of the response; a failure as httpx's ReadError."""
        import httpx

        try:
            return read(*args)
        except (OSError, http.client.HTTPException) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None


class DirectGet:
    """GET (and upload POST) requests to the server at ``url`` over ``http.client`` with the
    client's TLS context and headers; an idle connection is kept for the next request
    (thread-safe).

    Parameters
    ----------
    url : str
        ``https://host:port`` (or ``http://``) of the server.
    context : ssl.SSLContext or None
        The verifying TLS context (the same as the httpx client's).
    headers : dict
        Sent with every request (the bearer token).
    timeout_s, connect_s : float
        Read and connect timeouts.
    """

    def __init__(self, url: str, *, context: ssl.SSLContext | None, headers: dict,
                 timeout_s: float, connect_s: float = 10.0):
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._context = context
        self._headers = dict(headers)
        self._timeout_s = float(timeout_s)
        self._connect_s = float(connect_s)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _idle_connection(self) -> http.client.HTTPConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _connect(self) -> http.client.HTTPConnection:
        import httpx

        if self._https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_s, context=self._context)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_s)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            # the words httpx uses, so the client names the CA bundle as the fix
            raise httpx.ConnectError(f"[SSL: CERTIFICATE_VERIFY_FAILED] {exc}") from None
        except OSError as exc:
            conn.close()
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        conn.sock.settimeout(self._timeout_s)
        return conn

    def _send(self, path: str, headers: dict, method: str = "GET", body: list | None = None
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        import httpx

        conn = self._idle_connection()
        # a kept connection the server has closed meanwhile fails before any answer: then
        # once more on a new one (not a failure of the request; an upload carries its
        # idempotency key, so a second sending never makes a second job)
        for fresh in ((False, True) if conn is not None else (True,)):
            if fresh:
                conn = self._connect()
            try:
                conn.putrequest(method, self._prefix + path)
                for k, v in {**self._headers, **headers}.items():
                    conn.putheader(k, v)
                conn.endheaders()
                unsent = _send_body(conn, body)
                try:
                    response = conn.getresponse()
                except (OSError, http.client.HTTPException) as exc:
                    raise unsent or exc from None
                if unsent is not None:
                    # the server answered before it took the whole body (an early 413)
                    # and closes: its answer counts, the connection is not kept
                    response.will_close = True
                return conn, response
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if fresh:
                    raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def post(self, path: str, body: list, headers: dict):
        """``POST path`` with ``body`` (bytes-like parts, sent as they are; ``headers`` give
        their ``Content-Length``) → the answer as an ``httpx.Response`` (read whole: a job's
        status or an error, at most :data:`MAX_ANSWER_BYTES`).

        Raises
        ------
        httpx.TransportError
            ``ConnectError`` / ``ReadError`` for what failed on the way.
        """
        import httpx

        conn, response = self._send(path, headers, "POST", body)
        with self._kept(conn, response):
            content = DirectResponse(response)._read_at_most(MAX_ANSWER_BYTES)
        return httpx.Response(response.status, content=content,
                              headers=list(response.headers.items()))

    @contextlib.contextmanager
    def stream(self, path: str, headers: dict | None = None) -> Iterator[DirectResponse]:
        """``GET path``; the response's headers are read, the body is the caller's to read.
        The connection is kept for the next request only when the body was read to its end.

        Raises
        ------
        httpx.TransportError
            ``ConnectError`` / ``ReadError`` for what failed on the way (retried by the
            client as an httpx error would be).
        """
        conn, response = self._send(path, headers or {})
        with self._kept(conn, response):
            yield DirectResponse(response)

    @contextlib.contextmanager
    def _kept(self, conn, response) -> Iterator[None]:
        """Around reading ``response``'s body: afterwards ``conn`` is kept for the next
        request when the body was read to its announced end (an early end leaves ``length``
        > 0) and the server keeps the connection open; else it is closed."""
        keep = False
        try:
            yield
            keep = response.isclosed() and not response.will_close and not response.length
        finally:
            if keep:
                with self._lock:
                    self._idle.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _send_body(conn: http.client.HTTPConnection, body: list | None) -> OSError | None:
    """Send ``body``'s parts as they are (no copies); the error that stopped it, or None."""
    try:
        for part in body or ():
            conn.send(memoryview(part).cast("B"))
    except OSError as exc:
        return exc
    return None
