"""A Dask worker serves the bytes of its spooled results straight to the server.

The server fetches a spooled result (:mod:`medview.server.dask_fetch`) with a request to the
worker's own RPC server (a handler this module's worker plugin installs), not as a task: the
worker's task thread is busy running the chain while its first outputs are already in the
spool, and a task asking for them would only start once the chain has ended. The handler
reads in a thread of its own (never in the worker's event loop) and answers straight to the
server, not through the scheduler; only files of this worker's spool are ever read
(:func:`medview.server.dask_tasks.read_chunk`).
"""

from __future__ import annotations

__all__ = ["HANDLER", "serve_chunk", "spool_reader"]

#: the worker RPC operation that reads a spooled result's bytes
HANDLER = "medview_read_spool"


async def serve_chunk(path: str, offset: int, size: int, timeout_s: float = 120.0,
                      release_below: int = 0) -> dict:
    """The handler: ``{"data": uint8 array}`` or ``{"error": why}`` (said, never raised: an
    exception would travel back pickled)."""
    import asyncio

    from distributed.protocol import to_serialize

    from medview.server.dask_tasks import read_chunk
    from medview.server.worker import JobFailed

    try:
        data = await asyncio.to_thread(read_chunk, str(path), int(offset), int(size),
                                       float(timeout_s), int(release_below))
    except (JobFailed, OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    # an array travels as its memory (one frame), not copied into the message
    return {"data": to_serialize(data)}


def spool_reader():
    """A Dask worker plugin installing :data:`HANDLER` on every worker, also one that joins
    later."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class SpoolReader(WorkerPlugin):
        def setup(self, worker) -> None:
            worker.handlers[HANDLER] = serve_chunk

    return SpoolReader()
