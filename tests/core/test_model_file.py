"""Model files that cannot run code: NPZ + JSON, attack payloads refused, old pickles refused.

The payloads are the ones an attacker used against the old allow-list unpickler: a dotted
global name reaching ``subprocess.Popen`` through ``sklearn.externals.array_api_compat.numpy``
and ``numpy.memmap`` through ``sklearn.base``, each of which would create a marker file. The
test first proves each payload does so when plainly unpickled, then that medview refuses it
and the marker never appears.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle

import numpy as np
import psutil
import pytest
from model_payloads import MAGIC, legacy_file, memmap_payload, popen_payload
from step_checks import crop

from medview.core.labelmap import LabelMap
from medview.core.segmentation.classifier import (
    LegacyModelError,
    ModelFileError,
    PixelClassifier,
    apply_classifier,
    convert_legacy_model,
    train_classifier,
)


def signed(path, data: bytes) -> None:
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "  m\n")


@pytest.fixture(scope="module")
def small(ct3):
    vol = crop(ct3, y=slice(340, 404), x=slice(176, 256))
    scr = np.zeros(vol.shape, np.uint8)
    scr[1, 5:20, 5:20] = 1
    scr[1, 40:60, 50:75] = 2
    return vol, LabelMap.like(vol, scr)


@pytest.fixture(scope="module")
def forest(small):
    vol, scr = small
    return train_classifier(vol, scr, n_trees=4, max_depth=6)


def test_the_payloads_are_real(tmp_path):
    a, b = tmp_path / "popen", tmp_path / "memmap"
    proc = pickle.loads(popen_payload(a))  # proving the payload works
    proc.wait(timeout=30)
    pickle.loads(memmap_payload(b))
    assert a.exists() and b.exists()


@pytest.mark.parametrize("make", [popen_payload, memmap_payload])
def test_a_pickle_model_never_runs(make, forest, small, tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.model"
    legacy_file(path, make(marker), forest.to_bytes())
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(LegacyModelError, match=r"evil\.model.*pickle.*convert_legacy_model"):
        PixelClassifier.load(path)
    with pytest.raises(LegacyModelError):
        apply_classifier(small[0], model_path=str(path))
    with pytest.raises(PermissionError, match="trust=True"):
        convert_legacy_model(path, trust=False)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children
    assert not marker.exists()


def test_an_object_array_inside_the_npz_is_refused(forest, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buf = io.BytesIO()
    np.savez(buf, classes=np.array([Evil()], dtype=object))
    payload = buf.getvalue()
    assert b"open" in payload or b"io" in payload  # a real pickle inside
    head = json.loads(forest.to_bytes()[len(MAGIC):].split(b"\n", 1)[0])
    head["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    path = tmp_path / "obj.model"
    signed(path, MAGIC + json.dumps(head).encode() + b"\n" + payload)
    with pytest.raises(ModelFileError, match=r"obj\.model.*(damaged|pickle|dtype)"):
        PixelClassifier.load(path)
    assert not marker.exists()


def _with_arrays(model_bytes: bytes, change) -> bytes:
    head_line, payload = model_bytes[len(MAGIC):].split(b"\n", 1)
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    change(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    head = json.loads(head_line)
    head["payload_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    return MAGIC + json.dumps(head).encode() + b"\n" + buf.getvalue()


def test_a_crafted_tree_is_refused_before_scikit_learn_walks_it(forest):
    def backwards(a):
        a["node_left_child"][0] = 0  # a loop: the root is its own child

    def outside(a):
        a["node_right_child"][0] = 10**9

    def feature(a):
        a["node_feature"][0] = 999

    for change, why in ((backwards, "backwards"), (outside, "outside"), (feature, "feature")):
        with pytest.raises(ModelFileError, match=why):
            PixelClassifier.from_bytes(_with_arrays(forest.to_bytes(), change))


def test_compressed_members_and_foreign_kinds_are_refused(forest, small):
    head_line, payload = forest.to_bytes()[len(MAGIC):].split(b"\n", 1)
    with np.load(io.BytesIO(payload)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    head = json.loads(head_line)
    head["payload_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    with pytest.raises(ModelFileError, match="compressed"):
        PixelClassifier.from_bytes(MAGIC + json.dumps(head).encode() + b"\n" + buf.getvalue())
    head["kind"] = "svm"
    with pytest.raises(ModelFileError, match="kind 'svm'"):
        PixelClassifier.from_bytes(MAGIC + json.dumps(head).encode() + b"\n" + buf.getvalue())
    vol, scr = small
    hgb = train_classifier(vol, scr, classifier="hist_gradient_boosting", n_trees=2)
    assert not hgb.saveable
    with pytest.raises(ModelFileError, match=r"cannot be saved.*random_forest and mlp"):
        hgb.to_bytes()


@pytest.mark.parametrize("kind", ["random_forest", "mlp"])
def test_round_trip_rebuilds_the_same_estimator(kind, small, tmp_path):
    vol, scr = small
    model = train_classifier(vol, scr, classifier=kind, n_trees=6, max_depth=0)
    path = tmp_path / "m.model"
    model.save(path)
    assert b"\x80" not in path.read_bytes()[:200]  # JSON header, no pickle opcode up front
    back = PixelClassifier.load(path)
    X = np.random.default_rng(0).normal(0, 300, (5000, model.features.count)).astype(np.float32)
    np.testing.assert_array_equal(back.estimator.predict_proba(X),
                                  model.estimator.predict_proba(X))
    np.testing.assert_array_equal(back.predict(vol).array, model.predict(vol).array)
    assert back.segments == model.segments and back.training_samples == model.training_samples


def test_a_trusted_old_model_is_converted_once(forest, small, tmp_path):
    vol, _ = small
    path = tmp_path / "old.model"
    legacy_file(path, pickle.dumps(forest.estimator, protocol=5), forest.to_bytes())
    with pytest.raises(LegacyModelError):
        PixelClassifier.load(path)
    model = convert_legacy_model(path, trust=True)
    assert (tmp_path / "old.model.pickle-v1").exists()
    np.testing.assert_array_equal(model.predict(vol).array, forest.predict(vol).array)
    again = PixelClassifier.load(path)  # now in the safe format: no confirmation needed
    np.testing.assert_array_equal(again.predict(vol).array, forest.predict(vol).array)
    with pytest.raises(ModelFileError, match="not an old"):
        convert_legacy_model(path, trust=True)
