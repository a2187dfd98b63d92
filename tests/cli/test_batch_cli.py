"""`medview run --batch` locally: study folders and catalog queries expand to their series,
each result folder appears complete, --resume runs only what is missing, --dicom-out too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pydicom.uid import generate_uid

from medview.formats.volume_io import read_volume
from phantoms import write_ct_series


def medview(*args, env):
    return subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, MEDVIEW_CONFIG_DIR=str(tmp_path / "cfg"),
                MEDVIEW_DATA_DIR=str(tmp_path / "data"),
                PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")


@pytest.fixture
def study(tmp_path):
    """One study folder holding two CT series (numbers 2 and 5)."""
    folder, uid = tmp_path / "study", generate_uid()
    write_ct_series(folder / "s2", shape=(3, 16, 16), seed=3, study_uid=uid, series_number=2)
    write_ct_series(folder / "s5", shape=(4, 16, 16), seed=4, study_uid=uid, series_number=5)
    return folder


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"steps": [{"step": "segment.threshold",
                                           "params": {"low": 0.0, "high": 3000.0}}]}))
    return path


def test_a_study_folder_runs_each_series_and_resume_runs_only_the_missing(
        tmp_path, env, study, chain):
    out = tmp_path / "out"
    r = medview("run", chain, study, "-o", out, "--batch", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["study-2-CT", "study-5-CT"]
    shapes = {p.name: read_volume(p / "step1.nii.gz").shape for p in out.iterdir()}
    assert shapes == {"study-2-CT": (3, 16, 16), "study-5-CT": (4, 16, 16)}
    before = (out / "study-5-CT" / "step1.nii.gz").stat().st_mtime_ns
    # one result lost (e.g. the batch was interrupted before it): --resume redoes only it
    for p in (out / "study-2-CT").iterdir():
        p.unlink()
    (out / "study-2-CT").rmdir()
    r = medview("run", chain, study, "-o", out, "--batch", "--resume", env=env)
    assert r.returncode == 0, r.stderr
    assert "skipped study-5-CT" in r.stdout and "1 written, 1 skipped" in r.stdout
    assert (out / "study-5-CT" / "step1.nii.gz").stat().st_mtime_ns == before
    assert read_volume(out / "study-2-CT" / "step1.nii.gz").shape == (3, 16, 16)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial folders


def test_dicom_out_works_with_batch_one_folder_per_input(tmp_path, env, study, chain):
    import pydicom

    r = medview("run", chain, study, "--dicom-out", tmp_path / "dcm", "-o", tmp_path / "o",
                "--batch", env=env)
    assert r.returncode == 0, r.stderr
    for name, n in (("study-2-CT", 3), ("study-5-CT", 4)):
        segs = list((tmp_path / "dcm" / name).glob("*.seg.dcm"))
        assert len(segs) == 1, list((tmp_path / "dcm" / name).iterdir())
        ds = pydicom.dcmread(segs[0])
        assert ds.Modality == "SEG" and int(ds.NumberOfFrames) <= n


def test_a_catalog_query_picks_the_series_of_a_modality_and_date_range(tmp_path, env, chain):
    db = tmp_path / "cat.sqlite"
    for date, seed in (("20240310", 5), ("20230101", 6)):
        write_ct_series(tmp_path / "in" / date, shape=(3, 16, 16), seed=seed,
                        study_uid=generate_uid())
        # the phantom's study date is fixed: set the one this test queries by
        import pydicom

        for f in (tmp_path / "in" / date).iterdir():
            ds = pydicom.dcmread(f)
            ds.StudyDate = date
            ds.save_as(f)
    r = medview("index", tmp_path / "in", "--db", db, env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "q"
    r = medview("run", chain, "-o", out, "--batch", "--modality", "CT", "--study-date",
                "20240101-20241231", "--db", db, env=env)
    assert r.returncode == 0, r.stderr
    (folder,) = list(out.iterdir())
    assert folder.name.startswith("20240310-CT-")
    labels = read_volume(folder / "step1.nii.gz")
    assert labels.shape == (3, 16, 16) and np.unique(labels.array).size == 2
    r = medview("run", chain, "-o", out, "--batch", "--study-date", "2024", "--db", db, env=env)
    assert r.returncode == 1 and "YYYYMMDD" in r.stderr
