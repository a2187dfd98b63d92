"""The Session's processing actions run the registered steps on the chosen executor and give
what the core functions give; SEG reading; "Run on"; failures and cancel of an action."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from session_helpers import (
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

from medview.core.filters import smoothing
from medview.core.fusion import blend as fusion
from medview.core.labelmap import LabelMap
from medview.core.registration import rigid as registration
from medview.core.segmentation import classifier
from medview.pipeline.chain import Chain

CT = "dcmqi_seg/data/segmentations/ct-3slice"
SEG = "dcmqi_seg/data/segmentations/liver.dcm"


@pytest.fixture
def ct_session(session_parts, data_dir):
    """The session with the 3-slice liver CT and its SEG imported, the CT open."""
    session, queue, recorder = session_parts
    import_and_wait(session, queue, [data_dir / CT, data_dir / SEG])
    uids = {s.modality: s.series_uid for p in session.patients() for st in p.studies
            for s in st.series}
    session.open_series(uids["CT"])
    queue.run_until(lambda: recorder.of("series_loaded"), timeout=120)
    volume = recorder.of("series_loaded")[0][2].volume
    recorder.events.clear()
    return session, queue, recorder, volume, uids


def _wait_for(queue, recorder, name, timeout=180):
    queue.run_until(lambda: recorder.of(name) or recorder.of("action_failed"),
                    timeout=timeout)
    assert not recorder.of("action_failed"), recorder.of("action_failed")
    (args,) = recorder.of(name)
    return args


def test_fuse_and_blend_give_the_core_functions_voxels(ct_session):
    session, queue, recorder, volume, _ = ct_session
    moving = volume.with_array(volume.array.astype(np.float32) * 0.5 + 100.0)
    job = session.fuse(volume, moving)
    assert recorder.of("job_started") == [(job,)]
    (fused,) = _wait_for(queue, recorder, "fused")
    want = registration.resample_to_grid(volume, moving, default_value=-1e6)
    want = np.where(want.array == np.float32(-1e6), np.float32(np.nan), want.array)
    np.testing.assert_array_equal(fused.volume.array, want)
    assert fused.base is volume and fused.transform is None
    assert fused.window[0] < fused.window[1]

    params = dict(window_center=40.0, window_width=400.0, colormap="hot",
                  moving_range=fused.window, opacity=0.5)
    rgb = session.blend(volume, fused.volume, **params)
    low, high = fused.window
    core = fusion.blend_colour(volume, fused.volume, window_center=40.0, window_width=400.0,
                               colormap="hot", moving_min=low, moving_max=high, opacity=0.5)
    assert rgb.array.shape == (*volume.shape, 3)
    np.testing.assert_array_equal(rgb.array, core.array)


def test_classify_gives_the_core_classifiers_labels(ct_session):
    session, queue, recorder, volume, _ = ct_session
    scribbles = np.zeros(volume.shape, np.uint8)
    scribbles[:, 240:260, 100:140] = 1
    scribbles[:, 20:40, 20:60] = 2  # air around the patient
    marks = LabelMap.like(volume, scribbles)
    session.train_classifier(volume, marks, classifier="random_forest")
    (result,) = _wait_for(queue, recorder, "classified")
    core = classifier.classify_pixels(volume, marks, classifier="random_forest", seed=0)
    np.testing.assert_array_equal(result.labels.array, core["labels"].array)
    assert result.volume is volume and result.model.kind == "random_forest"

    path = session.catalog_path.parent / "model.mvclf"
    result.model.save(path)
    recorder.events.clear()
    session.apply_model(volume, path)
    (applied,) = _wait_for(queue, recorder, "classified")
    np.testing.assert_array_equal(applied.labels.array, core["labels"].array)


def test_a_chain_runs_on_the_chosen_executor(ct_session):
    session, queue, recorder, volume, _ = ct_session
    chain = Chain.from_dict({"name": "smooth", "inputs": {"volume": "volume"},
                             "steps": [{"step": "smooth.gaussian", "version": 1,
                                        "params": {"sigma_mm": 1.5}}]})
    session.run_chain(chain, {"volume": volume})
    (run,) = _wait_for(queue, recorder, "chain_finished")
    np.testing.assert_array_equal(run.chain_result.result.array,
                                  smoothing.gaussian(volume, sigma_mm=1.5).array)


def test_a_seg_is_read_onto_its_series(ct_session):
    session, queue, recorder, volume, uids = ct_session
    session.read_seg(uids["SEG"], volume)
    labels, note = _wait_for(queue, recorder, "seg_read")
    assert labels.array.shape == volume.shape and note == ""
    assert [s.name.lower() for s in labels.segments] == ["liver"]
    assert labels.array.any()


def test_run_on_failures_and_cancel_of_an_action(ct_session):
    from medview.pipeline.executors import LocalExecutor, register_executor, unregister_executor

    session, queue, recorder, volume, _ = ct_session

    class Elsewhere(LocalExecutor):
        name = "Elsewhere"

    register_executor(Elsewhere())
    try:
        session.run_on.choose("Elsewhere")
        assert recorder.of("run_on_changed") == [("Elsewhere",)]
        assert session.run_on.executor().name == "Elsewhere"
    finally:
        unregister_executor("Elsewhere")
    assert session.run_on.name == "Local"  # the endpoint went: back to Local
    assert recorder.of("run_on_changed")[-1] == ("Local",)

    # a failing action: a model file that is not one
    bad = session.catalog_path.parent / "not-a-model.mvclf"
    bad.write_bytes(b"not a model")
    job = session.apply_model(volume, bad)
    queue.run_until(lambda: job.is_done, timeout=60)
    (error,), = recorder.of("action_failed")
    assert "not-a-model.mvclf" in error.message

    # a cancelled one: waiting for a worker when cancelled
    release = threading.Event()
    for _ in range(2):
        session.runner.start("blocker", lambda progress: release.wait(60))
    job = session.fuse(volume, volume)
    job.cancel()
    release.set()
    queue.run_until(lambda: job.is_done, timeout=60)
    assert recorder.of("action_cancelled") == [("Fusing a second series",)]
    assert recorder.of("fused") == []
