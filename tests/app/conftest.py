"""Tests of the application layer (medview.app): no Qt, they run in the headless environment.

Real data as in the GUI tests: the demo study and real CT.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from realparts import REPO, require

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
def private_folders(tmp_path_factory, monkeypatch):
    """Every test gets its own cache, configuration and data folders, never the user's."""
    folder = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("MEDVIEW_CACHE_DIR", str(folder / "cache"))
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(folder / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(folder / "data"))
    return folder
