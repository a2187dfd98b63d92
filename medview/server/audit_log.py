"""The server's own audit log: who (token name) did what to which job, when, how many bytes.

``<state>/audit.log``, JSON lines, append-only (opened ``O_APPEND``, one ``write`` per line,
never rewritten), mode 0600. One line per job action — ``submit``, ``list``, ``status``,
``cancel``, ``download``, ``acknowledge``, ``admin-status`` — and one ``refused`` line for every
request the server turned away (401, 403, 404, 413, 422 …) on any route but ``/health``::

    {"time": "2026-12-05T09:30:00.123Z", "who": "ws-1", "action": "download",
     "job": "4f0c…", "bytes": 1048576, "status": 200}
    {"time": "…", "who": "ws-2", "action": "refused", "attempt": "status", "job": "4f0c…",
     "status": 404, "reason": "no such job for this token"}

What never goes in: header values (not the token, not the idempotency key, not the user
agent), query strings, bodies. A job id is written only when it is one the server could have
made (32 hex digits); any other path segment a client sends is replaced by ``"(not a job
id)"``. The server never receives patient data (the client de-identifies), so the log holds
none. Unlike ``requests.log`` (every request, for operations) this log is the record of what
each token did.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from medview.server.requestlog import ByteCount

__all__ = ["AuditLog", "audit_action"]

_JOB = re.compile(r"[0-9a-f]{32}")
_ROUTES = [  # (method, path regex under /api/v1, action)
    ("POST", r"/jobs", "submit"),
    ("GET", r"/jobs", "list"),
    ("GET", r"/jobs/([^/]+)", "status"),
    ("POST", r"/jobs/([^/]+)/cancel", "cancel"),
    ("GET", r"/jobs/([^/]+)/result", "download"),
    ("DELETE", r"/jobs/([^/]+)/result", "acknowledge"),
    ("GET", r"/admin/status", "admin-status"),
]
_COMPILED = [(m, re.compile(r"/api/v1" + p), a) for m, p, a in _ROUTES]


def audit_action(method: str, path: str) -> tuple[str | None, str | None]:
    """``(action, job id segment)`` of a request, or ``(None, None)`` for other routes."""
    for m, rx, action in _COMPILED:
        hit = rx.fullmatch(path)
        if hit and m == method:
            return action, (hit.group(1) if rx.groups else None)
    return None, None


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


_REASONS = {401: "missing or invalid token", 403: "scope missing",
            404: "no such job for this token", 409: "not finished", 410: "already gone",
            413: "too large", 422: "invalid request"}


class AuditLog:
    """ASGI middleware writing the audit line of each job action and refusal to ``path``."""

    def __init__(self, app, path: Path):
        self.app = app
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # created 0600 up front; an older, wider file is tightened
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(self.path, 0o600)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        count = ByteCount(receive, send)
        try:
            await self.app(scope, count.receive, count.send)
        except Exception:
            count.status = 500
            raise
        finally:
            entry = self._entry(scope, state, count.status, count.got, count.sent)
            if entry is not None:
                await run_in_threadpool(self.append, entry)

    @staticmethod
    def _entry(scope, state: dict, status: int, got: int, sent: int) -> dict | None:
        method, path = scope.get("method", ""), scope.get("path", "")
        action, job = audit_action(method, path)
        refused = status >= 400
        if action is None and not refused:
            return None  # info, steps, docs: not a job action
        if job is not None and not _JOB.fullmatch(job):
            job = "(not a job id)"
        job = job or state.get("job_id")
        entry: dict = {"time": _iso(time.time()), "who": state.get("who") or "-"}
        if refused:
            entry["action"] = "refused"
            entry["attempt"] = action or f"{method} {_route_name(path)}"
            entry["reason"] = state.get("refusal") or _REASONS.get(status, f"HTTP {status}")
        else:
            entry["action"] = action
        if job:
            entry["job"] = job
        if action == "submit":
            entry["bytes"] = got
        elif action == "download" and not refused:
            entry["bytes"] = sent
        entry["status"] = status
        return entry

    def append(self, entry: dict) -> None:
        data = (json.dumps(entry, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _route_name(path: str) -> str:
    """A path with client-chosen segments removed (only known words survive)."""
    known = {"api", "v1", "jobs", "result", "cancel", "info", "steps", "admin", "status",
             "openapi.json", "docs", "redoc"}
    return "/" + "/".join(p if p in known else "…" for p in path.strip("/").split("/"))
