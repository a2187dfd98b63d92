"""`medview steps` and `medview run` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from phantoms import write_ct_series


def medview(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def ct(tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(6, 32, 32), spacing_xyz=(0.8, 0.8, 2.0), seed=4)
    return folder


def test_steps_lists_every_step_with_schemas():
    from medview.pipeline.registry import all_steps

    out = json.loads(medview("steps", "--json", check=True).stdout)
    assert [s["id"] for s in out] == [s.id for s in all_steps()]
    gauss = next(s for s in out if s["id"] == "smooth.gaussian")
    assert gauss["params"]["properties"]["sigma_mm"]["minimum"] == 0
    text = medview("steps", check=True).stdout
    assert "smooth.gaussian" in text and "mm" in text


def test_run_writes_the_chain_result(ct, tmp_path):
    import medview as mv
    from medview.core.filters.smoothing import gaussian
    from medview.formats.volume_io import read_volume

    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian",
                                            "params": {"sigma_mm": 1.5}}]}))
    out = tmp_path / "smoothed.nrrd"
    proc = medview("run", chain, ct, "-o", out, check=True)
    assert str(out) in proc.stdout
    expected = gaussian(mv.load(ct), sigma_mm=1.5)
    got = read_volume(out)
    np.testing.assert_allclose(got.array, expected.array, atol=1e-4)
    np.testing.assert_allclose(got.affine, expected.affine, atol=1e-4)


def test_invalid_chain_is_refused_before_any_work(tmp_path):
    chain = tmp_path / "bad.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian",
                                            "params": {"sigma_mm": -1}}]}))
    out = tmp_path / "o.nii.gz"
    proc = medview("run", chain, tmp_path / "does-not-exist", "-o", out)
    assert proc.returncode == 1
    assert "step 1 (smooth.gaussian), parameter 'sigma_mm'" in proc.stderr
    assert "below the minimum" in proc.stderr and "does-not-exist" not in proc.stderr
    assert not out.exists()


def test_run_refuses_to_overwrite_and_checks_inputs(ct, tmp_path):
    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian"}]}))
    out = tmp_path / "o.nii.gz"
    out.write_text("keep")
    proc = medview("run", chain, ct, "-o", out)
    assert proc.returncode == 1 and "overwrite" in proc.stderr and out.read_text() == "keep"
    proc = medview("run", chain, ct, ct, "-o", tmp_path / "x")
    assert proc.returncode == 1 and "too many inputs" in proc.stderr


def test_run_writes_each_result_once_with_the_model(tmp_path):
    """A multi-output step (labels + model) gives one file per output, none twice."""
    import numpy as np

    from medview.core.labelmap import LabelMap
    from medview.core.volume import Volume
    from medview.formats.volume_io import write_volume

    rng = np.random.default_rng(0)
    img = np.where(np.arange(32)[None, None, :] < 16, 0.0, 100.0) + rng.normal(0, 5, (4, 32, 32))
    vol = Volume(img.astype(np.float32), (1, 1, 2))
    scribbles = np.zeros((4, 32, 32), np.uint8)
    scribbles[1, 10:20, 2:8], scribbles[1, 10:20, 24:30] = 1, 2
    write_volume(vol, tmp_path / "img.nii.gz")
    write_volume(LabelMap.like(vol, scribbles), tmp_path / "scr.nii.gz")
    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({
        "inputs": {"image": "volume", "scribbles": "labelmap"},
        "steps": [{"step": "segment.classifier_train_predict",
                   "params": {"n_trees": 4, "max_depth": 4},
                   "inputs": {"scribbles": "scribbles"}, "output": "seg"}]}))
    out = tmp_path / "out"
    medview("run", chain, tmp_path / "img.nii.gz", f"scribbles={tmp_path / 'scr.nii.gz'}",
            "-o", out, check=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["seg.labels.nii.gz", "seg.labels.segments.json", "seg.model",
                     "seg.model.sha256"], names
