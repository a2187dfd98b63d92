"""Benchmark cases per step category: each module defines ``CASES: list[Case]``.

A case runs one registered step through the chain runner on the benchmark volume and the
fastest reference implementation available here on the same data, so that
``benchmarks/steps.py`` prints time, ratio and peak memory side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    step: str  # registered step id
    params: dict[str, Any]
    reference_name: str  # e.g. "scipy.ndimage.gaussian_filter"
    # reference(volume) -> anything; volume is the medview Volume the step gets
    reference: Callable[[Any], Any]
    # extra chain inputs by name, made from the main volume: {"moving": fn(volume) -> Volume}
    extra_inputs: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    # params made from the main volume before anything is timed or measured, merged into
    # ``params`` (e.g. the path of a model trained on it): setup(volume) -> dict, which
    # caches its work per volume (it is called before every run)
    setup: Callable[[Any], dict[str, Any]] | None = None
    # the volume the case needs: "ct" (512x512x300 float32 CT phantom) or a callable
    note: str = ""
