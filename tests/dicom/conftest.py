"""Fixtures shared by the catalog tests."""

from __future__ import annotations

import pytest

from medview.dicom.catalog.db import Catalog


@pytest.fixture
def lookups(monkeypatch) -> list[int]:
    """How many files each per-file catalog look-up asked for."""
    calls: list[int] = []
    original = Catalog._lookup

    def counting(self, conn, files):
        calls.append(len(files))
        return original(self, conn, files)

    monkeypatch.setattr(Catalog, "_lookup", counting)
    return calls
