"""What ``GET /api/v1/admin/status`` tells an ``admin`` token about the server."""

from __future__ import annotations

import time
from collections import Counter

from medview import __version__
from medview.server.auth import read_tokens

__all__ = ["server_status"]

_STARTED = time.time()


def server_status(store, executor, settings) -> dict:
    """Version, executor, job counts by state and by token, and the tokens (no hashes)."""
    by_state: Counter = Counter()
    by_owner: dict[str, Counter] = {}
    for job_id in store.list():
        status = store.get(job_id)
        owner = store.owner_of(job_id)
        if status is None or owner is None:
            continue  # deleted meanwhile
        by_state[status.state] += 1
        by_owner.setdefault(owner, Counter())[status.state] += 1
    try:
        tokens = [r.public() for r in read_tokens(settings.tokens_path)]
        tokens_error = ""
    except (ValueError, OSError) as exc:
        tokens, tokens_error = [], str(exc)
    out = {"version": __version__, "executor": executor.name,
           "slots": getattr(executor, "slots", None),
           "uptime_s": round(time.time() - _STARTED, 1),
           "jobs": dict(by_state),
           "jobs_by_token": {k: dict(v) for k, v in sorted(by_owner.items())},
           "tokens": tokens}
    if tokens_error:
        out["tokens_error"] = tokens_error
    return out
