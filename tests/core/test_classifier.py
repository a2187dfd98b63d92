"""The scribble classifier: features vs SciPy, labels vs scikit-learn and expert truth, storage.

Real data: the GE liver CT of dcmqi (3 slices, 512², with an expert liver segmentation as NRRD)
and the Siemens sagittal T1 MR of dcm_qa_decubitus (35 slices, for the 3D chunks).
"""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import scipy.ndimage as ndi
from step_checks import crop

from medview.core.labelmap import LabelMap, Segment
from medview.core.progress import Cancelled, Progress
from medview.core.segmentation.classifier import (
    ModelFileError,
    PixelClassifier,
    classify_pixels,
    train_classifier,
)
from medview.core.segmentation.pixel_features import FeatureSpec, feature_stack
from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.registry import get_step
from medview.pipeline.runner import run_chain

LIVER = "dcmqi_seg/data/segmentations/liver_seg.nrrd"

# fixtures (tests/core/conftest.py): ct3, the whole GE liver CT; mr, the whole sagittal T1 MR


def tissue_truth(vol: Volume) -> np.ndarray:
    """Air (1), soft tissue (2), bone (3) by thresholds of the in-plane-smoothed image."""
    g = ndi.gaussian_filter(vol.array.astype(np.float32), (0, 1.5, 1.5))
    return np.where(g < -400, 1, np.where(g > 250, 3, 2)).astype(np.uint8)


def scribble(truth: np.ndarray, k: int, per_label: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(truth.shape, np.uint8)
    for lab in np.unique(truth):
        idx = np.flatnonzero(ndi.binary_erosion(truth[k] == lab, iterations=2))
        out[k].reshape(-1)[rng.choice(idx, min(per_label, len(idx)), replace=False)] = lab
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def ct_small(ct3) -> tuple[Volume, LabelMap, np.ndarray]:
    """A 3×128×160 crop through body wall, air and spine, with 3-tissue scribbles on slice 1."""
    vol = crop(ct3, y=slice(340, 468), x=slice(176, 336))
    truth = tissue_truth(vol)
    assert set(np.unique(truth)) == {1, 2, 3}
    return vol, LabelMap.like(vol, scribble(truth, 1, 150)), truth


def sklearn_labels(model: PixelClassifier, vol: Volume) -> np.ndarray:
    """What the model's scikit-learn estimator predicts from the feature stack."""
    f = feature_stack(vol, model.features)  # (z, F, y*x)
    pred = model.estimator.predict(f.transpose(0, 2, 1).reshape(-1, f.shape[1]))
    return pred.reshape(vol.shape)


# -- features ------------------------------------------------------------------------------
def scipy_features(a: np.ndarray, spacing, spec: FeatureSpec) -> list[np.ndarray]:
    sx, sy, sz = spacing
    axes = [(1, sy), (2, sx)] + ([(0, sz)] if spec.mode == "3d" else [])
    refs = [a]
    for s in spec.sigmas_mm:
        g = ndi.gaussian_filter(a, (s / sz if spec.mode == "3d" else 0, s / sy, s / sx),
                                mode="reflect")
        grad = np.sqrt(sum((ndi.correlate1d(g, [-0.5, 0, 0.5], axis=ax, mode="reflect") / sp)
                           ** 2 for ax, sp in axes))
        lap = sum(ndi.correlate1d(g, [1, -2, 1], axis=ax, mode="reflect") / sp**2
                  for ax, sp in axes)
        refs += [g, grad, lap]
    return refs


@pytest.mark.parametrize("mode", ["2d", "3d"])
def test_features_equal_scipy(ct3, mr, mode):
    # 3D on the MR: 35 slices of 1.1 mm, so the z kernels reach across the volume's ends
    vol = crop(ct3, y=slice(200, 296), x=slice(100, 228)) if mode == "2d" else \
        crop(mr, y=slice(100, 164), x=slice(90, 154))
    spec = FeatureSpec(sigmas_mm=(1.0, 3.0), mode=mode)
    got = feature_stack(vol, spec)
    refs = scipy_features(vol.array.astype(np.float64), vol.spacing, spec)
    assert len(refs) == spec.count == got.shape[1]
    # float32 rounding of the smoothed image (~1e-7 of its range) grows by 1/spacing² in the
    # Laplacian's second differences; a wrong kernel or border would be off by whole units
    tol = 1e-5 * float(np.abs(vol.array).max()) / min(vol.spacing) ** 2
    for i, (name, ref) in enumerate(zip(spec.names, refs, strict=True)):
        err = float(np.abs(got[:, i] - ref.reshape(vol.shape[0], -1)).max())
        assert err <= tol, (name, err, tol)


def test_lbp_and_gabor_equal_their_references(ct3):
    from skimage.feature import local_binary_pattern

    from medview.core.segmentation.pixel_features import _gabor_kernels

    vol = crop(ct3, z=slice(1, 2), y=slice(200, 280), x=slice(100, 196))
    spec = FeatureSpec(sigmas_mm=(2.0,), gaussian=False, gradient=False, laplacian=False,
                       intensity=False, lbp=True, gabor=True)
    got = feature_stack(vol, spec)[0]
    img = vol.array[0].astype(np.float64)
    for t, (re, im) in enumerate(_gabor_kernels(2.0 / vol.spacing[0])):
        ref = np.hypot(ndi.correlate(img, re.astype(np.float64), mode="reflect"),
                       ndi.correlate(img, im.astype(np.float64), mode="reflect"))
        np.testing.assert_allclose(got[t].reshape(img.shape), ref, rtol=1e-4,
                                   atol=1e-3 * np.abs(ref).max())
    with pytest.warns(UserWarning, match="floating-point"):
        lbp = local_binary_pattern(vol.array[0].astype(np.float32), 8, 1, method="ror")
    np.testing.assert_array_equal(got[-1].reshape(img.shape), lbp)
    assert spec.names[-1] == "lbp" and spec.names[0] == "gabor_2mm_0deg"


# -- classification on real CT ---------------------------------------------------------------
def test_separates_air_soft_tissue_and_bone_from_scribbles_on_one_slice(ct3):
    truth = tissue_truth(ct3)
    model = train_classifier(ct3, LabelMap.like(ct3, scribble(truth, 1)))
    labels = model.predict(ct3)
    for k in (0, 2):  # slices without scribbles
        # the truth's bone edge is a threshold the scribbles (inside the tissues) never touch
        for lab, least in ((1, 0.98), (2, 0.98), (3, 0.85)):
            assert dice(labels.array[k] == lab, truth[k] == lab) >= least, (k, lab)


def test_liver_against_the_expert_segmentation(ct3, data_dir):
    import SimpleITK as sitk

    liver = sitk.GetArrayFromImage(sitk.ReadImage(str(data_dir / LIVER))) > 0
    assert liver.shape == ct3.shape
    rng = np.random.default_rng(0)
    scr = np.zeros(ct3.shape, np.uint8)
    inner = np.flatnonzero(ndi.binary_erosion(liver[1], iterations=8))
    outer = np.flatnonzero(~ndi.binary_dilation(liver[1], iterations=8))
    scr[1].reshape(-1)[rng.choice(outer, 1500, replace=False)] = 1
    scr[1].reshape(-1)[rng.choice(inner, 300, replace=False)] = 2
    model = train_classifier(ct3, LabelMap.like(ct3, scr), sigmas_mm=(1, 2, 4, 8))
    got = model.predict(ct3).array == 2
    # a pixel classifier without shape priors: ~0.87 here (spleen/muscle look like liver)
    assert min(dice(got[k], liver[k]) for k in (0, 2)) >= 0.8


@pytest.mark.parametrize("kind", ["random_forest", "mlp", "hist_gradient_boosting", "svm"])
def test_labels_equal_scikit_learn_predict(ct_small, kind):
    vol, scr, truth = ct_small
    # few boosting rounds: HGB's OpenMP loops crawl on a busy 2-core machine
    trees = 4 if kind == "hist_gradient_boosting" else 16
    model = train_classifier(vol, scr, classifier=kind, n_trees=trees, max_samples_per_class=150)
    got = model.predict(vol).array
    ref = sklearn_labels(model, vol)
    differ = int((got != ref).sum())
    if kind in ("random_forest", "mlp"):  # float32 sums: only near-ties may differ
        assert differ <= 2, differ
    else:
        assert differ == 0
    assert (got == truth).mean() > 0.95


@pytest.mark.parametrize("kind", ["random_forest", "mlp"])
def test_two_tissues_equal_scikit_learn_predict(ct_small, kind):
    vol, scr, truth = ct_small  # air vs everything else: the MLP has one logistic output
    two = LabelMap.like(vol, np.minimum(scr.array, 2))
    model = train_classifier(vol, two, classifier=kind, n_trees=16)
    got = model.predict(vol).array
    assert int((got != sklearn_labels(model, vol)).sum()) <= 2
    assert dice(got == 1, truth == 1) > 0.95


def test_3d_features_in_chunks_give_the_whole_volume_labels(mr):
    vol = crop(mr, y=slice(96, 160), x=slice(80, 144))  # 35 slices: 2 chunks of 32
    thr = float(np.percentile(vol.array, 60))
    truth = np.where(ndi.gaussian_filter(vol.array.astype(np.float32), 1) > thr, 2, 1)
    scr = np.zeros(vol.shape, np.uint8)
    for k in (5, 17, 30):
        scr[k] = scribble(truth.astype(np.uint8), k, 60, seed=k)[k]
    model = train_classifier(vol, LabelMap.like(vol, scr), mode="3d", sigmas_mm=(1.0, 2.0),
                             n_trees=8)
    got = model.predict(vol).array
    assert int((got != sklearn_labels(model, vol)).sum()) <= 2
    assert (got == truth).mean() > 0.85


# -- properties ------------------------------------------------------------------------------
def test_label_values_segments_and_geometry_are_kept(ct_small):
    vol, scr, _ = ct_small
    renumbered = np.choose(scr.array, [0, 3, 7, 250]).astype(np.uint8)
    segs = (Segment(3, "air"), Segment(7, "soft tissue"), Segment(250, "bone"))
    labels = train_classifier(vol, LabelMap.like(vol, renumbered, segs), n_trees=8).predict(vol)
    assert labels.array.dtype == np.uint8 and labels.shape == vol.shape
    assert set(np.unique(labels.array)) == {3, 7, 250}
    assert [s.name for s in labels.segments] == ["air", "soft tissue", "bone"]
    assert labels.same_grid(vol)


def test_training_and_labels_are_deterministic(ct_small):
    vol, scr, _ = ct_small
    first = {}
    for kind in ("random_forest", "mlp"):
        a = train_classifier(vol, scr, classifier=kind, n_trees=8, seed=5)
        b = train_classifier(vol, scr, classifier=kind, n_trees=8, seed=5)
        assert pickle.dumps(a.estimator) == pickle.dumps(b.estimator)
        np.testing.assert_array_equal(a.predict(vol).array, b.predict(vol).array)
        first[kind] = a
    other = train_classifier(vol, scr, n_trees=8, seed=6)  # the seed matters
    assert pickle.dumps(other.estimator) != pickle.dumps(first["random_forest"].estimator)


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("stage", ["train", "predict"])
def test_cancel_stops_the_work(ct_small, stage, threads, monkeypatch):
    monkeypatch.setenv("MEDVIEW_THREADS", threads)
    vol, scr, _ = ct_small
    big = Volume(np.repeat(vol.array, 8, axis=0), vol.spacing)
    big_scr = LabelMap.like(big, np.repeat(scr.array, 8, axis=0))
    model = train_classifier(vol, scr, n_trees=4)
    seen = []

    def cb(fraction, message):
        seen.append(fraction)
        if fraction > 0:  # after the first slice
            progress.cancel()

    progress = Progress(cb)
    if threads == "2":  # workers race the canceller: only "before any work" is exact
        progress.cancel()
    with pytest.raises(Cancelled):
        if stage == "train":
            train_classifier(big, big_scr, n_trees=4, progress=progress)
        else:
            model.predict(big, progress)
    if threads == "1":  # one slice, then the check before the next one stops it
        assert len([f for f in seen if f > 0]) == 1


def test_bad_inputs_name_the_parameter(ct_small):
    vol, scr, _ = ct_small
    one = LabelMap.like(vol, (scr.array == 1).astype(np.uint8))
    with pytest.raises(ValueError, match=r"scribbles: .*at least two labels.*only label 1"):
        train_classifier(vol, one)
    with pytest.raises(ValueError, match=r"scribbles: .*no labels"):
        train_classifier(vol, LabelMap.like(vol, np.zeros(vol.shape, np.uint8)))
    moved = LabelMap(scr.array, vol.spacing, (0.0, 0.0, 5.0))
    with pytest.raises(ValueError, match=r"scribbles: grid .* does not match"):
        train_classifier(vol, moved)
    smaller = LabelMap.like(crop(vol, y=slice(0, 64)), scr.array[:, :64])
    with pytest.raises(ValueError, match="scribbles: grid"):
        train_classifier(vol, smaller)
    with pytest.raises(ValueError, match="classifier:"):
        train_classifier(vol, scr, classifier="knn")
    with pytest.raises(ValueError, match="n_trees:"):
        train_classifier(vol, scr, n_trees=0)
    with pytest.raises(ValueError, match="sigmas_mm:"):
        train_classifier(vol, scr, sigmas_mm=(1.0, -2.0))
    rgb = Volume(np.zeros((*vol.shape, 3), np.uint8), vol.spacing)
    with pytest.raises(ValueError, match="volume:"):
        train_classifier(rgb, scr)
    model = train_classifier(vol, scr, n_trees=2)
    with pytest.raises(ValueError, match="volume:"):
        model.predict(rgb)


# -- storage ---------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_labels(ct_small, tmp_path):
    vol, scr, _ = ct_small
    for kind in ("random_forest", "mlp"):
        model = train_classifier(vol, scr, classifier=kind, n_trees=8)
        path = tmp_path / f"{kind}.model"
        side = model.save(path)
        assert side.read_text().split()[0] == hashlib.sha256(path.read_bytes()).hexdigest()
        back = PixelClassifier.load(path)
        assert back.features == model.features and back.labels == model.labels
        assert back.kind == kind
        np.testing.assert_array_equal(back.predict(vol).array, model.predict(vol).array)
        again = PixelClassifier.from_bytes(model.to_bytes())
        np.testing.assert_array_equal(again.predict(vol).array, model.predict(vol).array)


def test_load_refuses_changed_unsigned_or_foreign_files(ct_small, tmp_path):
    vol, scr, _ = ct_small
    path = tmp_path / "m.model"
    train_classifier(vol, scr, n_trees=2).save(path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match"):
        PixelClassifier.load(path)
    (tmp_path / "m.model.sha256").unlink()
    with pytest.raises(ModelFileError, match="sidecar"):
        PixelClassifier.load(path)
    with pytest.raises(ModelFileError, match="not a medview"):
        PixelClassifier.from_bytes(b"\x80\x05junk")


# the code-running payloads (old pickles, crafted arrays): tests/core/test_model_file.py


# -- registered steps (contract) -------------------------------------------------------------
def _check_spec(step_id: str, func) -> None:
    import inspect

    spec = get_step(step_id)
    assert spec.func is func and spec.category == "Segment"
    schema = spec.params_schema()
    json.dumps(schema)  # JSON-able
    sig = inspect.signature(func)
    for p in spec.params:
        assert p.name in schema["properties"]
        if not p.required:
            assert spec.defaults()[p.name] == sig.parameters[p.name].default
            p.validate(p.default)  # every default passes its own validation


def test_contract_train_predict_step(ct_small):
    vol, scr, _ = ct_small
    _check_spec("segment.classifier_train_predict", classify_pixels)
    spec = get_step("segment.classifier_train_predict")
    assert [i.name for i in spec.inputs] == ["volume", "scribbles"]
    assert spec.returns == "outputs"
    chain = Chain.from_dict({
        "inputs": {"image": "volume", "scribbles": "labelmap"},
        "steps": [{"step": "segment.classifier_train_predict", "params": {"n_trees": 8},
                   "inputs": {"scribbles": "scribbles"}, "output": "seg"}]})
    runs = [run_chain(chain, {"image": vol, "scribbles": scr}) for _ in range(2)]
    labels, model = runs[0].values["seg.labels"], runs[0].values["seg.model"]
    assert isinstance(labels, LabelMap) and isinstance(model, PixelClassifier)
    assert labels.array.dtype == np.uint8 and labels.shape == vol.shape
    assert labels.same_grid(vol)
    np.testing.assert_array_equal(runs[1].values["seg.labels"].array, labels.array)


def test_contract_apply_step(ct_small, tmp_path):
    from medview.core.segmentation.classifier import apply_classifier

    vol, scr, _ = ct_small
    _check_spec("segment.classifier_apply", apply_classifier)
    model = train_classifier(vol, scr, n_trees=8)
    model.save(tmp_path / "m.model")
    chain = Chain.from_dict({"steps": [{"step": "segment.classifier_apply",
                                        "params": {"model_path": str(tmp_path / "m.model")}}]})
    labels = run_chain(chain, {"image": vol}).result
    assert isinstance(labels, LabelMap) and labels.same_grid(vol)
    assert labels.array.dtype == np.uint8
    np.testing.assert_array_equal(labels.array, model.predict(vol).array)
    with pytest.raises(FileNotFoundError, match="model_path"):
        apply_classifier(vol, model_path=str(tmp_path / "missing.model"))
