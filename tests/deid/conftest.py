"""Private config and data folders per test (keys in the 0600 file, no keyring), and the
privacy test set built from the shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))   # privacy_set, for the tests and the benchmark


@pytest.fixture()
def deid_home(tmp_path, monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture()
def privacy_files(data_dir, tmp_path):
    from privacy_set import build

    return build(data_dir, tmp_path / "privacy-set")
