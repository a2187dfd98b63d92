"""The executor registry behind the chain panel's "Run on" selector."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.progress import Progress
from medview.core.volume import Volume
from medview.pipeline import executors as ex
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain


class _Recording:
    def __init__(self, name="Test remote"):
        self.name = name
        self.calls = 0

    def run(self, chain, inputs, *, progress):
        self.calls += 1
        return run_chain(chain, inputs, progress=progress)


def test_local_is_always_first_and_runs_the_chain():
    assert ex.executors()[0] is ex.LOCAL and ex.get_executor("Local") is ex.LOCAL
    vol = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    chain = Chain.from_dict({"steps": [{"step": "segment.threshold",
                                        "params": {"low": 5.0, "high": 10.0}}]})
    progress = Progress()
    got = ex.LOCAL.run(chain, {"image": vol}, progress=progress).result
    assert np.array_equal(got.array, (vol.array >= 5) & (vol.array <= 10))
    assert progress.fraction == 1.0


def test_register_notify_and_remove():
    seen = []
    disconnect = ex.on_executors_changed(lambda: seen.append([e.name for e in ex.executors()]))
    remote = _Recording()
    try:
        ex.register_executor(remote)
        assert seen[-1] == ["Local", "Test remote"]
        with pytest.raises(ValueError, match="already registered"):
            ex.register_executor(_Recording())
        ex.register_executor(remote)  # the same object again: no error
        with pytest.raises(ValueError, match="name"):
            ex.register_executor(_Recording(name=""))
        with pytest.raises(KeyError, match="known: Local"):
            ex.get_executor("nowhere")
    finally:
        ex.unregister_executor("Test remote")
        disconnect()
    assert seen[-1] == ["Local"]
    ex.unregister_executor("Local")  # the local executor cannot be removed
    assert ex.get_executor("Local") is ex.LOCAL
