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

__all__ = ["RequestLog", "access_log"]

access_log = logging.getLogger("medview.server.access")


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
        got = sent = 0
        status = 500

        async def counting_receive():
            nonlocal got
            message = await receive()
            if message["type"] == "http.request":
                got += len(message.get("body", b""))
            return message

        async def counting_send(message):
            nonlocal sent, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                sent += os.path.getsize(message["path"])
            await send(message)

        error = None
        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            entry = {"time": round(time.time(), 3), "who": state.get("who") or "-",
                     "method": scope.get("method", ""), "path": scope.get("path", ""),
                     "in_bytes": got, "out_bytes": sent,
                     "status": 500 if error else status,
                     "ms": round((time.perf_counter() - t0) * 1000, 1)}
            if error:
                entry["error"] = error
            line = json.dumps(entry)
            access_log.info(line)
            await run_in_threadpool(_append, self.path, line)


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
