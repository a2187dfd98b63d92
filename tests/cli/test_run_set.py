"""``medview run --set STEP.PARAM=VALUE``: parameters from the command line, read by their
kinds, on a real CT slice."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from realparts import REPO

from medview import load as medview_load
from medview.formats.volume_io import read_volume

CHAIN = REPO / "resources" / "chains" / "seed_examples.json"


def medview(*args):
    return subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)


def test_set_changes_a_parameter_for_one_run(data_dir, tmp_path):
    chain = tmp_path / "t.json"
    chain.write_text('{"steps": [{"step": "segment.threshold", "output": "mask", '
                     '"params": {"low": -950, "high": -400}}]}')
    ct = data_dir / "kits_dupe_positions" / "CT2.dcm"
    outs = []
    for extra in ([], ["--set", "mask.low=-100", "--set", "1.high=3000"]):
        out = tmp_path / f"m{len(outs)}.nii.gz"
        proc = medview("run", chain, ct, "-o", out, *extra)
        assert proc.returncode == 0, proc.stderr
        outs.append(read_volume(out).array)
    hu = medview_load([ct]).array
    np.testing.assert_array_equal(outs[0] > 0, (hu >= -950) & (hu <= -400))
    np.testing.assert_array_equal(outs[1] > 0, (hu >= -100) & (hu <= 3000))
    assert 0 < np.count_nonzero(outs[0]) != np.count_nonzero(outs[1]) > 0
    assert '"low": -950' in chain.read_text()  # the file is not changed


def test_a_bad_value_is_refused_naming_step_parameter_and_text(tmp_path):
    out = tmp_path / "o.nii.gz"
    proc = medview("run", CHAIN, tmp_path / "does-not-exist", "-o", out,
                   "--set", "canny_50_150.gradient_norm=L3")
    assert proc.returncode == 1
    assert "step 2 (features.canny), parameter 'gradient_norm'" in proc.stderr
    assert "'L3' is not one of L2, L1" in proc.stderr and "does-not-exist" not in proc.stderr
    assert not out.exists()
