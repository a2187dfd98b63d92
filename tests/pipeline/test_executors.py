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


def test_one_choice_follows_the_registry_and_tells_its_listeners():
    choice, seen = ex.ExecutorChoice(), []
    choice.on_changed(seen.append)
    assert choice.name == "Local" and choice.executor() is ex.LOCAL
    with pytest.raises(KeyError, match="Nowhere"):
        choice.choose("Nowhere")
    remote = ex.register_executor(_Recording("Elsewhere"))
    try:
        choice.choose("Elsewhere")
        choice.choose("Elsewhere")  # no change, no event
        assert choice.executor() is remote and seen == ["Elsewhere"]
    finally:
        ex.unregister_executor("Elsewhere")
    # its executor is gone: the choice falls back to Local, and says so
    assert choice.name == "Local" and seen == ["Elsewhere", "Local"]
    choice.close()


def test_a_step_runs_on_the_chosen_executor_as_its_function_does():
    from medview.core.labelmap import LabelMap
    from medview.core.segmentation.classifier import classify_pixels
    from medview.core.segmentation.intensity import threshold_manual

    rng = np.random.default_rng(3)
    image = np.where(np.arange(32)[None, None, :] < 16, 0.0, 100.0) + rng.normal(0, 8, (3, 24, 32))
    vol = Volume(image.astype(np.float32))
    scribbles = np.zeros(vol.shape, np.uint8)
    scribbles[:, 10:12, 2:8], scribbles[:, 10:12, 22:28] = 1, 2
    scr = LabelMap.like(vol, scribbles)
    remote = ex.register_executor(_Recording("Elsewhere"))
    try:
        out = ex.run_step_on(remote, "segment.classifier_train_predict",
                             {"volume": vol, "scribbles": scr}, {"classifier": "mlp", "seed": 4})
        one = ex.run_step_on(remote, "segment.threshold", {"volume": vol},
                             {"low": 50.0, "high": 1000.0})
    finally:
        ex.unregister_executor("Elsewhere")
    assert remote.calls == 2  # both ran there, as one-step chains
    direct = classify_pixels(vol, scr, classifier="mlp", seed=4)
    assert set(out) == {"labels", "model"}  # a multi-output step gives its parts
    assert np.array_equal(out["labels"].array, direct["labels"].array)
    assert out["model"].training_samples == direct["model"].training_samples
    assert np.array_equal(one.array, threshold_manual(vol, low=50.0, high=1000.0).array)
    with pytest.raises(ValueError, match="classifier"):
        ex.run_step_on(ex.LOCAL, "segment.classifier_train_predict",
                       {"volume": vol, "scribbles": scr}, {"classifier": "nonsense"})
