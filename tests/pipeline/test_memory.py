"""A step that would not fit in memory is refused before it starts, with what it needs.

The steps declare their peak memory beyond the input (``register(..., memory=...)``, in
copies of the first input as float32, measured by benchmarks/steps.py); the local runner
compares it with the memory the system has available (psutil) before each step.
"""

from __future__ import annotations

import re

import numpy as np
import psutil
import pytest

from medview.core.volume import Volume
from medview.pipeline import registry
from medview.pipeline.chain import Chain
from medview.pipeline.memory import NotEnoughMemory, check_memory
from medview.pipeline.registry import all_steps, register
from medview.pipeline.runner import run_chain

CALLS: list[tuple] = []


def _doubling(volume: Volume) -> Volume:
    """Twice the volume (records that it ran)."""
    CALLS.append(volume.shape)
    return Volume(volume.array * 2, volume.spacing)


@pytest.fixture
def hungry():
    """A real step whose declared memory no machine has: 10⁹ copies of its input."""
    spec = register(_doubling, id="test.hungry", title="Hungry doubling",
                    category="Preprocess", memory=1e9, replace=True)
    CALLS.clear()
    yield spec
    registry._REGISTRY.pop("test.hungry", None)


def _chain() -> Chain:
    return Chain.from_dict({"inputs": {"image": "volume"},
                            "steps": [{"step": "test.hungry", "params": {}}]})


def test_a_step_that_cannot_fit_is_refused_before_it_starts(hungry):
    vol = Volume(np.ones((4, 16, 8), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(NotEnoughMemory) as err:
        run_chain(_chain(), {"image": vol})
    assert CALLS == []  # never started
    message = str(err.value)
    # which step, how much it needs, of what, what is available, what to do
    assert message.startswith("step 1 (test.hungry): Hungry doubling needs about ")
    needed = 1e9 * vol.array.size * 4
    assert f"{needed / 2**30:.1f} GiB of memory for this 8×16×4 volume" in message
    assert "1e+09 copies of its 0.0 MiB as float32" in message
    free = float(re.search(r"only ([\d.]+) GiB is available", message).group(1))
    assert abs(free * 2**30 - psutil.virtual_memory().available) < 0.2 * 2**30 + 0.1 * free * 2**30
    assert "not started" in message and "offload server" in message
    assert err.value.needed == int(needed) and err.value.available > 0


def test_the_same_step_runs_when_memory_allows(hungry):
    spec = register(_doubling, id="test.hungry", title="Hungry doubling",
                    category="Preprocess", memory=2, replace=True)
    vol = Volume(np.ones((4, 16, 8), np.float32), (1.0, 1.0, 1.0))
    out = run_chain(_chain(), {"image": vol}).result
    assert CALLS == [(4, 16, 8)] and float(out.array.max()) == 2.0
    # the check itself, with the available memory given: 2 copies of 2 KiB need 4 KiB
    check_memory(spec, {"image": vol}, available=4096)
    with pytest.raises(NotEnoughMemory, match=r"needs about 0\.0 MiB .* only 0\.0 MiB"):
        check_memory(spec, {"image": vol}, available=4095)


def test_memory_is_a_keyword_of_register_and_checked():
    with pytest.raises(ValueError, match="memory must be a number of volume copies"):
        register(_doubling, id="test.bad_memory", title="Bad", category="Preprocess",
                 memory=-1)
    assert "test.bad_memory" not in registry._REGISTRY


def test_every_builtin_step_declares_its_memory():
    undeclared = [s.id for s in all_steps() if s.memory is None and not s.id.startswith("test.")]
    assert undeclared == []
    assert all(0 <= s.memory <= 12 for s in all_steps() if not s.id.startswith("test."))
