"""The server's request log: one JSON line per request, whatever happened to it.

A plain ASGI middleware rather than an ``@app.middleware("http")`` function, for two reasons:
it wraps ``receive``, so it records the body bytes that actually arrived (a client can declare
any Content-Length, and an upload cut off at the limit stops early), and it sees an exception
that escapes the application, so a request that ends in a 500 is logged too.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool

__all__ = ["ByteCount", "RequestLog", "access_log"]

access_log = logging.getLogger("medview.server.access")


class ByteCount:
    """``receive``/``send`` wrappers counting the body bytes that arrived (``got``) and went
    out (``sent``, a file response by its size) and keeping the response ``status``."""

    def __init__(self, receive, send):
        self.got = self.sent = 0
        self.status = 500
        self._receive, self._send = receive, send

    async def receive(self):
        message = await self._receive()
        if message["type"] == "http.request":
            self.got += len(message.get("body", b""))
        return message

    async def send(self, message):
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        elif message["type"] == "http.response.pathsend":
            self.sent += os.path.getsize(message["path"])
        await self._send(message)


class RequestLog:
    """ASGI middleware appending ``{time, who, method, path, in_bytes, out_bytes, status, ms}``
    to ``path`` and to the ``medview.server.access`` logger.

    ``who`` is the token's name once the route's token check has set ``request.state.who``;
    ``error`` names the exception class when the application raised one.
    """

    def __init__(self, app, path: Path):
        self.app = app
        self.path = Path(path)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state = scope.setdefault("state", {})
        count = ByteCount(receive, send)
        error = None
        try:
            await self.app(scope, count.receive, count.send)
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            entry = {"time": round(time.time(), 3), "who": state.get("who") or "-",
                     "method": scope.get("method", ""), "path": scope.get("path", ""),
                     "in_bytes": count.got, "out_bytes": count.sent,
                     "status": 500 if error else count.status,
                     "ms": round((time.perf_counter() - t0) * 1000, 1)}
            if error:
                entry["error"] = error
            line = json.dumps(entry)
            access_log.info(line)
            await run_in_threadpool(_append, self.path, line)


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
