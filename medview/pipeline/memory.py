"""Will a step fit in memory? Checked before it starts, never by running out halfway.

Each step declares its peak memory beyond its inputs in copies of its first input as float32
(``register(..., memory=...)``, measured by benchmarks/steps.py). Before a local run the
runner compares that with the memory the system has available and refuses, with a message
that says how much it would need, a run that cannot fit: a 2,000-slice CT through a filter
that needs six copies is refused in a millisecond instead of swapping the workstation to a
halt or being killed after minutes.
"""

from __future__ import annotations

from typing import Any

from medview.core.labelmap import LabelMap
from medview.core.volume import Volume
from medview.pipeline.chain import ChainError

__all__ = ["DEFAULT_MEMORY", "NotEnoughMemory", "available_memory", "check_memory",
           "memory_needed"]

#: copies assumed for a step that declares none
DEFAULT_MEMORY = 3.0
_GIB = 2**30


class NotEnoughMemory(ChainError):
    """A step was refused before it started: it would need more memory than is available."""

    def __init__(self, message: str, *, needed: int, available: int, **kw):
        super().__init__(message, **kw)
        self.needed = needed
        self.available = available


def _size(n: int) -> str:
    if n >= _GIB:
        return f"{n / _GIB:.1f} GiB"
    return f"{n / 2**20:.1f} MiB"


def available_memory() -> int:
    """Bytes the system can give without swapping (psutil's ``available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _first_array(inputs: dict[str, Any]):
    for value in inputs.values():
        if isinstance(value, Volume | LabelMap):
            return value
    return None


def memory_needed(spec, inputs: dict[str, Any]) -> tuple[int, float, Any] | None:
    """(bytes, copies, first input) a run of ``spec`` needs beyond its inputs, or None."""
    first = _first_array(inputs)
    if first is None:
        return None
    copies = spec.memory if spec.memory is not None else DEFAULT_MEMORY
    return int(copies * first.array.size * 4), copies, first


def check_memory(spec, inputs: dict[str, Any], *, step_index: int | None = None,
                 available: int | None = None) -> None:
    """Refuse a run of ``spec`` on ``inputs`` that would not fit.

    Raises
    ------
    NotEnoughMemory
        With the memory it would need, what is available and what to do.
    """
    need = memory_needed(spec, inputs)
    if need is None:
        return
    needed, copies, first = need
    free = available_memory() if available is None else available
    if needed <= free:
        return
    shape = "×".join(str(n) for n in first.array.shape[::-1])
    raise NotEnoughMemory(
        f"{spec.title} needs about {_size(needed)} of memory for this {shape} volume "
        f"({copies:g} copies of its {_size(first.array.size * 4)} as float32) and only "
        f"{_size(free)} is available; not started. Close other series or programs, crop "
        f"the volume, or run it on an offload server",
        needed=needed, available=free, step_index=step_index, step_id=spec.id,
    )
