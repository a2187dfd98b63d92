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
after every registration or removal. :class:`ExecutorChoice` is the one "Run on" choice a
window's panels share (the chain panel, the Segmentation and the Fusion dock), and
:func:`run_step_on` runs a single registered step on an executor, as a one-step chain.
Nothing here imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from medview.core.progress import NO_PROGRESS, Progress
from medview.pipeline.chain import Chain
from medview.pipeline.runner import ChainResult, run_chain

__all__ = ["LOCAL", "Executor", "ExecutorChoice", "LocalExecutor", "executors",
           "get_executor", "on_executors_changed", "register_executor", "run_step_on",
           "unregister_executor"]


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


class ExecutorChoice:
    """Where the user's processing runs ("Run on: Local / Remote: NAME"): one per window.

    Every panel that runs steps reads :meth:`executor` and shows :attr:`name`; a change made
    in any of them (:meth:`choose`) reaches the others through :meth:`on_changed`. When the
    chosen executor is unregistered (its endpoint removed), the choice falls back to Local.
    """

    def __init__(self, name: str = LOCAL.name):
        self._name = name if name in _EXECUTORS else LOCAL.name
        self._listeners: list[Callable[[str], None]] = []
        self._disconnect = on_executors_changed(self._on_registry_changed)

    @property
    def name(self) -> str:
        """The chosen executor's name."""
        return self._name

    def executor(self) -> Executor:
        """The chosen executor (KeyError naming the known ones if it is gone)."""
        return get_executor(self._name)

    def choose(self, name: str) -> None:
        """Run on the executor called ``name`` from now on.

        Raises
        ------
        KeyError
            If no executor has that name.
        """
        get_executor(name)
        if name != self._name:
            self._name = name
            for callback in list(self._listeners):
                callback(name)

    def on_changed(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(name)`` after each change; returns a function that disconnects it."""
        self._listeners.append(callback)

        def disconnect() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return disconnect

    def close(self) -> None:
        """Stop following the executor registry."""
        self._disconnect()

    def _on_registry_changed(self) -> None:
        if self._name not in _EXECUTORS:
            self.choose(LOCAL.name)


def run_step_on(executor: Executor, step_id: str, inputs: Mapping[str, Any],
                params: Mapping[str, Any] | None = None, *,
                progress: Progress = NO_PROGRESS) -> Any:
    """Run the registered step ``step_id`` on ``executor``; what the step's function returns.

    ``inputs`` maps the step's input names (``volume``, ``scribbles``, ``moving`` …) to
    Volumes and label maps; ``params`` are validated like a chain's. A step with several
    outputs gives a dict of them (``{"labels": …, "model": …}``), as its function does. The
    step runs as a one-step chain, so a remote executor de-identifies, audits, follows
    progress and cancels exactly as for a chain.

    Raises
    ------
    medview.pipeline.chain.ChainError
        If a parameter or input is invalid.
    medview.core.progress.Cancelled
        When ``progress`` is cancelled.
    """
    from medview.pipeline.registry import get_step

    spec = get_step(step_id)
    given = [i for i in spec.inputs if inputs.get(i.name) is not None]
    chain = Chain.from_dict({
        "name": spec.title,
        "inputs": {i.name: i.kind for i in given},
        "steps": [{"step": step_id, "version": spec.version, "params": dict(params or {}),
                   "inputs": {i.name: i.name for i in given}, "output": "out"}],
    })
    result = executor.run(chain, {i.name: inputs[i.name] for i in given}, progress=progress)
    parts = {k[len("out."):]: v for k, v in result.values.items() if k.startswith("out.")}
    if parts:
        return parts
    return result.values["out"]
