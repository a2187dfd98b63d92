"""``medview selftest`` from the source tree (headless): every check passes on a good
install, a broken piece is named in a FAIL line with a non-zero exit, the samples cover the
compressed transfer syntaxes, and the SEG it writes is valid DICOM."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import REPO, require_tool

SAMPLES = REPO / "resources" / "selftest"


def selftest(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # the token store is looked at, never the developer's keyring
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "medview", "selftest", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def check_lines(stdout: str) -> dict[str, str]:
    """The check lines as {name: "OK"/"FAIL"}."""
    lines = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("OK", "FAIL"):
            lines[rest.strip().split(":")[0]] = status
    return lines


def test_samples_cover_every_compressed_transfer_syntax_and_stay_small():
    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    syntaxes = {s["transfer_syntax"] for s in manifest["samples"]}
    assert syntaxes >= {
        pydicom.uid.JPEGBaseline8Bit, pydicom.uid.JPEGLosslessSV1, pydicom.uid.JPEGLSLossless,
        pydicom.uid.JPEG2000Lossless, pydicom.uid.RLELossless,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
    }
    for s in manifest["samples"]:
        ds = pydicom.dcmread(SAMPLES / s["file"])
        assert ds.file_meta.TransferSyntaxUID == s["transfer_syntax"], s["file"]
        assert (ds.Rows, ds.Columns) == (64, 64)
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 1_000_000
    assert (SAMPLES / "LICENSE").is_file() and "BSD" in (SAMPLES / "README.md").read_text()


@pytest.mark.slow
def test_selftest_passes_and_its_seg_is_valid_dicom(tmp_path):
    require_tool("dciodvfy")
    proc = selftest("--no-gui", "--keep", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = check_lines(proc.stdout)
    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    expected = {f"decode {s['label']}" for s in manifest["samples"]} | {
        "resources", "header scan process pool", "catalog", "load series", "processing chain",
        "NIfTI export", "DICOM SEG", "offload client"}
    assert set(lines) == expected
    assert set(lines.values()) == {"OK"}
    assert f"{len(expected)} of {len(expected)} checks passed" in proc.stdout

    seg = tmp_path / "selftest_seg.dcm"
    assert_valid_dicom(seg)  # a LABELMAP SEG: against the Segmentation IOD it extends
    assert pydicom.dcmread(seg).Modality == "SEG"


@pytest.mark.slow
def test_a_damaged_sample_fails_its_check_by_name(tmp_path):
    resources = tmp_path / "resources"
    shutil.copytree(REPO / "resources", resources)
    victim = resources / "selftest" / "jpeg_ls_lossless.dcm"
    data = bytearray(victim.read_bytes())
    # overwrite the middle of the JPEG-LS codestream (the file's last ~5 kB): the decoder
    # must fail or give other pixels, never pass
    middle = len(data) - 2000
    data[middle: middle + 400] = bytes(400)
    victim.write_bytes(bytes(data))
    proc = selftest("--no-gui", env_extra={"MEDVIEW_RESOURCES": str(resources)})
    assert proc.returncode == 1
    lines = check_lines(proc.stdout)
    assert lines["decode JPEG-LS lossless"] == "FAIL"
    others = {k: v for k, v in lines.items() if k != "decode JPEG-LS lossless"}
    assert set(others.values()) == {"OK"}
    assert "jpeg_ls_lossless.dcm" in proc.stdout
    assert "FAILED: decode JPEG-LS lossless" in proc.stdout


def test_missing_resources_fail_with_the_folder_named(tmp_path):
    empty = tmp_path / "resources"
    empty.mkdir()
    proc = selftest("--no-gui", env_extra={"MEDVIEW_RESOURCES": str(empty)})
    assert proc.returncode == 1
    lines = check_lines(proc.stdout)
    assert lines["resources"] == "FAIL"
    assert str(empty) in proc.stdout


def test_without_qt_the_gui_check_fails_and_names_the_way_out():
    # the headless environment has no PySide6: the check must say so, not crash
    if importlib.util.find_spec("PySide6") is not None:
        pytest.skip("runs in the environment without Qt (.venv-headless)")
    proc = selftest()
    assert proc.returncode == 1
    lines = check_lines(proc.stdout)
    assert lines.pop("GUI (Qt offscreen)") == "FAIL"
    assert set(lines.values()) == {"OK"}
    assert "medview[gui]" in proc.stdout and "--no-gui" in proc.stdout


def test_version_names_the_package_version():
    from medview import __version__

    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "medview", "--version"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"medview {__version__}"
    assert Path(REPO / "pyproject.toml").read_text().count(f'version = "{__version__}"') == 1
