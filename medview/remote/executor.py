"""Configured endpoints as executors of the chain panel's "Run on" selector.

:func:`sync_endpoint_executors` registers one :class:`RemoteExecutor` per endpoint of
``medview remote add`` (or the window's Remote Endpoints dialog) in
:mod:`medview.pipeline.executors`, and removes those whose endpoint is gone. A remote run
goes through :func:`~medview.remote.run.run_chain_remote`: de-identified upload, progress
per step, cancel (``progress.cancel()`` cancels the remote job), results checked against the
input geometry and re-attached to the original study.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medview.core.progress import NO_PROGRESS, Progress
from medview.pipeline import executors as registry
from medview.pipeline.chain import Chain
from medview.pipeline.runner import ChainResult

__all__ = ["PREFIX", "RemoteExecutor", "sync_endpoint_executors"]

#: What the "Run on" selector shows before an endpoint's name.
PREFIX = "Remote: "


class RemoteExecutor:
    """Runs chains on configured endpoint ``endpoint`` (URL, CA bundle and token from the
    configuration and keyring, read at each run)."""

    def __init__(self, endpoint: str, *, retries: int = 4, encoding: str = "auto"):
        self.endpoint = endpoint
        self.name = PREFIX + endpoint
        self.retries = retries
        self.encoding = encoding

    def run(self, chain: Chain, inputs: Mapping[str, Any], *,
            progress: Progress = NO_PROGRESS) -> ChainResult:
        from medview.remote.client import RemoteClient
        from medview.remote.run import run_chain_remote

        with RemoteClient.for_endpoint(self.endpoint, retries=self.retries) as client:
            return run_chain_remote(chain, inputs, client=client, progress=progress,
                                    encoding=self.encoding)


def sync_endpoint_executors(**kw) -> list[str]:
    """Make the registered remote executors match the configured endpoints; returns the
    executor names now registered for endpoints. ``kw`` go to :class:`RemoteExecutor`."""
    from medview.remote.config import list_endpoints

    wanted = {PREFIX + ep.name: ep.name for ep in list_endpoints()}
    for ex in registry.executors():
        if ex.name.startswith(PREFIX) and ex.name not in wanted:
            registry.unregister_executor(ex.name)
    for endpoint in wanted.values():
        registry.register_executor(RemoteExecutor(endpoint, **kw), replace=True)
    return sorted(wanted)
