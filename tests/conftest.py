"""Shared fixtures: where the real DICOM data lives, and the CI rule on missing parts."""

from __future__ import annotations

from pathlib import Path

import pytest
from realparts import DATA, IN_CI, REPO, require, require_tool  # noqa: F401


@pytest.fixture(scope="session")
def data_dir() -> Path:
    require(DATA.is_dir(), f"real DICOM test data at {DATA} (set MEDVIEW_TEST_DATA)")
    return DATA


# the demo study and a real CT, loaded once (the app and GUI tests use them)
DEMO = REPO / "resources" / "demo" / "t1_sag_hfs"


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    require(DEMO.is_dir(), f"the demo study at {DEMO}")
    return DEMO


@pytest.fixture(scope="session")
def ct_dir(data_dir) -> Path:
    path = data_dir / "kits_dupe_positions"
    require(path.is_dir(), f"real CT at {path}")
    return path


@pytest.fixture(scope="session")
def demo_volume(demo_dir):
    import medview

    return medview.load(demo_dir)


@pytest.fixture(scope="session")
def ct_volume(ct_dir):
    import medview

    return medview.load(ct_dir)


@pytest.fixture(autouse=True)
def _isolated_catalog(tmp_path, monkeypatch):
    """Never touch the user's real catalog from a test."""
    monkeypatch.setenv("MEDVIEW_DB", str(tmp_path / "catalog.sqlite"))
    # saved annotations go to the data folder: never the user's
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "medview-data"))
