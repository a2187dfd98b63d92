"""Tests of the application layer (medview.app): no Qt, they run in the headless environment.

Real data as in the GUI tests: the demo study and real CT.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_folders(tmp_path_factory, monkeypatch):
    """Every test gets its own cache, configuration and data folders, never the user's."""
    folder = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("MEDVIEW_CACHE_DIR", str(folder / "cache"))
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(folder / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(folder / "data"))
    return folder
