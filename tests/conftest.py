"""Shared fixtures: where the real DICOM data lives, and the CI rule on missing parts."""

from __future__ import annotations

from pathlib import Path

import pytest
from realparts import DATA, IN_CI, REPO, require, require_tool  # noqa: F401


@pytest.fixture(scope="session")
def data_dir() -> Path:
    require(DATA.is_dir(), f"real DICOM test data at {DATA} (set MEDVIEW_TEST_DATA)")
    return DATA


@pytest.fixture(autouse=True)
def _isolated_catalog(tmp_path, monkeypatch):
    """Never touch the user's real catalog from a test."""
    monkeypatch.setenv("MEDVIEW_DB", str(tmp_path / "catalog.sqlite"))
    # saved annotations go to the data folder: never the user's
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "medview-data"))
