"""A chain's run on the whole series, and its live preview on one slice, as the Session
returns them: the values that become layers with the display window each gets. No Qt.

The window of a result is computed in the run's job (a percentile over the whole volume is
not free), so that the GUI thread only adds the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medview.core.labelmap import LabelMap
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = ["SAME_UNITS", "ChainRun", "finish_run", "preview_levels", "run_preview_with_levels"]

#: Step categories whose result keeps the series' values (its window suits the result).
SAME_UNITS = ("Preprocess",)


@dataclass(frozen=True)
class ChainRun:
    """A finished run of ``chain``: its new values (the chain's inputs left out), the display
    window of each (None: the layer's own default), seconds per step and the main output."""

    chain: Any
    chain_result: Any
    values: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @property
    def seconds(self) -> dict[str, float]:
        return self.chain_result.seconds

    @property
    def main_output(self) -> str:
        return self.chain_result.main_output


def finish_run(chain, result, *, progress: Progress = NO_PROGRESS) -> ChainRun:
    """``result`` (a :class:`~medview.pipeline.runner.ChainResult` of ``chain``) with the
    window of each new value: the series' default window for a result in its units
    (:data:`SAME_UNITS`), the 1–99 percentile window for other images."""
    from medview.app.windowing import auto_window, default_window

    values = result.outputs(exclude=set(chain.inputs))
    progress.check()
    keeps = {w.name: w.step.spec.category in SAME_UNITS for w in chain.wiring()}
    windows = {}
    for name, value in values.items():
        if isinstance(value, LabelMap) or not isinstance(value, Volume) or value.is_rgb:
            windows[name] = None
        elif keeps.get(name.split(".", 1)[0], False):
            windows[name] = default_window(value)
        else:
            windows[name] = auto_window(value.array)
    return ChainRun(chain, result, values, windows)


def keeps_units(chain) -> bool:
    """True when the chain's last enabled step keeps the series' values."""
    enabled = [cs for cs in chain.steps if cs.enabled]
    return bool(enabled) and enabled[-1].spec.category in SAME_UNITS


def preview_levels(chain, result) -> tuple[float, float] | None:
    """The display levels of a preview image: None (the series' own) when the chain keeps
    its units, else the image's 1–99 percentile window."""
    from medview.app.windowing import auto_window

    if result.kind != "image" or keeps_units(chain):
        return None
    c, w = auto_window(result.image)
    return (c - w / 2.0, c + w / 2.0)


def run_preview_with_levels(chain, inputs: Mapping[str, Any], z: int, *,
                            progress: Progress = NO_PROGRESS):
    """The chain on slice ``z`` (:func:`~medview.app.chain_preview.run_preview`) and its
    display levels (:func:`preview_levels`)."""
    from medview.app import chain_preview

    result = chain_preview.run_preview(chain, dict(inputs), z, progress=progress)
    return result, preview_levels(chain, result)
