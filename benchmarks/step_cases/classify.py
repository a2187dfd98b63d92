"""Segment benchmark cases: the scribble classifier (train on scribbles and label every voxel;
apply a saved model).

Scribbles: 400 voxels per tissue (air, lung, fat, soft tissue, bone) on 5 slices, drawn from the
noise-free phantom (see ``benchmarks/classifier.py``, which also compares with the SciPy
feature stack + 50-tree forest baseline). They are made once per volume and cached, so that
their making is not timed.

Reference: the same OpenCV feature stack (``medview.core.segmentation.pixel_features``, 8 slices at
a time) with scikit-learn's own ``RandomForestClassifier(32, max_depth=12, n_jobs=cores)`` ``fit``
and ``predict``: what the step would cost without its per-slice threads and float32 forest walk.

``segment.classifier_apply`` labels the volume with a model trained once on the same scribbles
(the train step's defaults, in a helper process) and saved to a temporary ``.model`` file before
anything is timed or measured (the case's ``setup``), so its time and peak memory are loading
that file (importing scikit-learn) and labelling every voxel. Reference: the same model's
scikit-learn forest ``predict`` on the same OpenCV features, 8 slices at a time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.step_cases import Case

_SCRIBBLES: dict[int, object] = {}
_MODEL: dict[int, str] = {}  # id(volume) -> the trained model's file
_MODEL_DIR: list[tempfile.TemporaryDirectory] = []  # removed at exit


def _scribbles(vol):
    key = id(vol)
    if key not in _SCRIBBLES:
        from benchmarks.classifier import scribbles_for, tissues
        from medview.core.labelmap import LabelMap
        from phantoms import ct_phantom_volume

        truth = tissues(ct_phantom_volume(vol.shape, vol.spacing, noise_hu=0))
        marked = np.linspace(0.1 * vol.shape[0], 0.9 * vol.shape[0], 5).astype(int)
        _SCRIBBLES.clear()
        _SCRIBBLES[key] = LabelMap.like(vol, scribbles_for(truth, marked))
    return _SCRIBBLES[key]


# trains in its own process so that the measured one imports scikit-learn inside the count,
# as a run of the apply step alone does (the import is ~1 volume at 100×512²)
_TRAIN = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from medview.core.labelmap import LabelMap
from medview.core.segmentation.classifier import train_classifier
from medview.core.volume import Volume
data = np.load(sys.argv[1])
vol = Volume(data["image"], tuple(float(v) for v in data["spacing"]))
train_classifier(vol, LabelMap.like(vol, data["scribbles"])).save(sys.argv[2])
"""


def _trained(vol) -> str:
    """The file of the model the train step (default options) makes from the scribbles.

    Trained in a helper process on the scribbled slices only: the features are 2D, so that is
    the model the whole volume gives (``tests/pipeline/test_benchmark_cases.py`` checks it).
    """
    key = id(vol)
    if key not in _MODEL:
        import subprocess
        import sys

        if not _MODEL_DIR:
            _MODEL_DIR.append(tempfile.TemporaryDirectory(prefix="medview-bench-model-"))
        folder = Path(_MODEL_DIR[0].name)
        scr = _scribbles(vol).array
        marked = np.flatnonzero(scr.any(axis=(1, 2)))
        np.savez(folder / "scribbled.npz", image=vol.array[marked], scribbles=scr[marked],
                 spacing=np.asarray(vol.spacing, float))
        path = folder / f"phantom-{'x'.join(map(str, vol.shape))}.model"
        root = str(Path(__file__).resolve().parents[2])
        out = subprocess.run([sys.executable, "-c", _TRAIN.format(root=root),
                              str(folder / "scribbled.npz"), str(path)],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"training the benchmark model failed: {out.stderr[-500:]}")
        _MODEL.clear()
        _MODEL[key] = str(path)
    return _MODEL[key]


def _apply_setup(vol) -> dict:
    return {"model_path": _trained(vol)}


def _sklearn_predict(vol):
    from medview.core.segmentation.classifier import PixelClassifier

    model = PixelClassifier.load(_trained(vol))  # as the step does
    rf, spec = model.estimator, model.features
    return _predict_slabs(rf, spec, vol)


def _sklearn_forest(vol):
    from sklearn.ensemble import RandomForestClassifier

    from medview.core._shared.parallel import worker_count
    from medview.core.segmentation.pixel_features import FeatureSpec, feature_stack

    scr = _scribbles(vol)
    spec = FeatureSpec()
    flat = scr.array.reshape(-1)
    idx = np.flatnonzero(flat)
    plane = vol.shape[1] * vol.shape[2]
    ks = np.unique(idx // plane)
    feats = feature_stack(vol, spec, slices=ks)  # (k, F, plane)
    X = np.concatenate([feats[m][:, idx[idx // plane == k] - k * plane].T
                        for m, k in enumerate(ks)])
    rf = RandomForestClassifier(32, max_depth=12, n_jobs=worker_count(), random_state=0)
    rf.fit(X, flat[idx])
    return _predict_slabs(rf, spec, vol)


def _predict_slabs(rf, spec, vol):
    """sklearn's own ``predict`` on the OpenCV features, 8 slices at a time."""
    from medview.core.segmentation.pixel_features import feature_stack

    out = np.empty(vol.shape, np.uint8)
    for lo in range(0, vol.shape[0], 8):
        hi = min(vol.shape[0], lo + 8)
        f = feature_stack(vol, spec, slices=range(lo, hi))
        X = f.transpose(0, 2, 1).reshape(-1, spec.count)
        out[lo:hi] = rf.predict(X).reshape(hi - lo, *vol.shape[1:])
    return out


CASES = [
    Case("segment.classifier_train_predict", {}, "OpenCV features + sklearn RF(32).predict",
         _sklearn_forest, extra_inputs={"scribbles": _scribbles}),
    Case("segment.classifier_apply", {}, "same model's sklearn forest .predict",
         _sklearn_predict, setup=_apply_setup),
]
