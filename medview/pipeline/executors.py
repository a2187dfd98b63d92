"""Where a chain runs: a small registry of executors ("Local" now, remote endpoints later).

The chain panel's "Run on" selector lists :func:`executors`. An executor is any object with
a ``name`` (what the user sees, unique) and ``run(chain, inputs, *, progress)`` returning a
:class:`~medview.pipeline.runner.ChainResult`, exactly like :func:`run_chain`: it must call
``progress.update`` per step, honour ``progress.cancelled`` (raise
:class:`~medview.core.progress.Cancelled`) and raise an exception with a readable message on
failure. The offload client registers one executor per configured endpoint::

    from medview.pipeline.executors import register_executor

    class RemoteExecutor:
        def __init__(self, url): self.name = f"Remote: {url}"; self.url = url
        def run(self, chain, inputs, *, progress): ...  # upload, poll, download

    register_executor(RemoteExecutor("https://gpu-box:8443"))

Listeners added with :func:`on_executors_changed` (e.g. the panel's combo box) are called
after every registration or removal. Nothing here imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from medview.core.progress import NO_PROGRESS, Progress
from medview.pipeline.chain import Chain
from medview.pipeline.runner import ChainResult, run_chain

__all__ = ["LOCAL", "Executor", "LocalExecutor", "executors", "get_executor",
           "on_executors_changed", "register_executor", "unregister_executor"]


class Executor(Protocol):
    """Runs a chain somewhere; see the module docstring for the contract."""

    name: str

    def run(self, chain: Chain, inputs: Mapping[str, Any], *,
            progress: Progress = NO_PROGRESS) -> ChainResult: ...


class LocalExecutor:
    """Runs the chain in this process (:func:`medview.pipeline.runner.run_chain`)."""

    name = "Local"

    def run(self, chain: Chain, inputs: Mapping[str, Any], *,
            progress: Progress = NO_PROGRESS) -> ChainResult:
        return run_chain(chain, inputs, progress=progress)


LOCAL = LocalExecutor()
_EXECUTORS: dict[str, Executor] = {LOCAL.name: LOCAL}
_LISTENERS: list[Callable[[], None]] = []


def register_executor(executor: Executor, *, replace: bool = False) -> Executor:
    """Add ``executor`` under its ``name``.

    Raises
    ------
    ValueError
        If the name is empty or taken (and ``replace`` is false).
    TypeError
        If ``executor`` has no callable ``run``.
    """
    name = getattr(executor, "name", "")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("executor.name: expected a non-empty string")
    if not callable(getattr(executor, "run", None)):
        raise TypeError(f"executor {name!r}: needs a run(chain, inputs, *, progress) method")
    if name in _EXECUTORS and not replace and _EXECUTORS[name] is not executor:
        raise ValueError(f"an executor named {name!r} is already registered")
    _EXECUTORS[name] = executor
    _notify()
    return executor


def unregister_executor(name: str) -> None:
    """Remove the executor ``name`` (the local one stays); no error if absent."""
    if name != LOCAL.name and _EXECUTORS.pop(name, None) is not None:
        _notify()


def executors() -> list[Executor]:
    """Every executor, Local first, then in registration order."""
    return list(_EXECUTORS.values())


def get_executor(name: str) -> Executor:
    """The executor called ``name``; KeyError listing the known ones."""
    try:
        return _EXECUTORS[name]
    except KeyError:
        raise KeyError(f"no executor {name!r}; known: {', '.join(_EXECUTORS)}") from None


def on_executors_changed(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` after each change; returns a function that disconnects it."""
    _LISTENERS.append(callback)

    def disconnect() -> None:
        if callback in _LISTENERS:
            _LISTENERS.remove(callback)

    return disconnect


def _notify() -> None:
    for callback in list(_LISTENERS):
        callback()
