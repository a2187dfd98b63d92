"""benchmarks/steps.py covers every registered step (issue 18: each one measured at size).

Each case in ``benchmarks/step_cases`` runs one step through the chain runner beside a
reference; the memory table (``--memory-only``) and the declared ``memory=`` factors the
runner uses to refuse come from these cases, so a step without one would go unmeasured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.step_cases.classify import _scribbles
from benchmarks.steps import all_cases, case_params, phantom, run_medview
from medview.core.labelmap import LabelMap
from medview.core.segmentation.classifier import PixelClassifier, train_classifier
from medview.pipeline.registry import all_steps, get_step


def test_every_registered_step_has_a_benchmark_case():
    registered = {s.id for s in all_steps() if not s.id.startswith("test.")}
    cases = [c.step for c in all_cases(None)]
    assert sorted(registered - set(cases)) == []  # no exceptions
    assert sorted(set(cases) - registered) == []  # no case of a step that is gone


def test_every_case_gives_its_step_the_params_and_inputs_it_takes():
    for case in all_cases(None):
        spec = get_step(case.step)
        names = {p.name for p in spec.params}
        assert set(case.params) <= names, case.step
        missing = {p.name for p in spec.params if p.required} - set(case.params)
        # a required param not written in the case is made by its setup (a model's path)
        assert not missing or case.setup is not None, (case.step, missing)
        assert set(case.extra_inputs) <= {i.name for i in spec.inputs}, case.step


def test_the_apply_case_labels_with_a_model_trained_before_the_run():
    vol = phantom(12, 96)
    case = all_cases("segment.classifier_apply")[0]
    params = case_params(case, vol)
    # trained once: a second call (every run calls it) gives the same saved file, untouched
    path = params["model_path"]
    stamp = (Path(path).read_bytes(), Path(path).stat().st_mtime_ns)
    assert case_params(case, vol) == params
    assert (Path(path).read_bytes(), Path(path).stat().st_mtime_ns) == stamp
    model = PixelClassifier.load(path)  # a real model file with its checksum
    assert model.labels == (1, 2, 3, 4, 5)  # air, lung, fat, soft tissue, bone scribbled
    labels = run_medview(case, vol, params=params)
    assert isinstance(labels, LabelMap) and labels.same_grid(vol)
    # trained (in a helper process) on the scribbled slices only: the model the train step
    # makes from the whole volume, voxel for voxel
    whole = train_classifier(vol, _scribbles(vol))
    np.testing.assert_array_equal(labels.array, whole.predict(vol).array)
    assert len(np.unique(labels.array)) >= 4  # the phantom's tissues, not one label
    # the reference labels the same voxels with scikit-learn's own predict (float32 ties aside)
    assert (case.reference(vol) == labels.array).mean() > 0.999
