"""Where the real test components are, and the CI rule when one is missing.

Importable from any test module (``from realparts import require``): pytest puts ``tests/`` on
``sys.path``. Not in conftest.py, because every conftest imports as ``conftest`` and the last
one imported wins.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_data() -> Path:
    """$MEDVIEW_TEST_DATA, else ``shared/data`` beside the checkout or one of its parents."""
    env = os.environ.get("MEDVIEW_TEST_DATA")
    if env:
        return Path(env).resolve()
    for parent in REPO.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate.resolve()
    # the project's workstation layout, for clones made elsewhere (e.g. /tmp)
    return Path("/work/shared/data")


DATA = _find_data()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, what: str) -> None:
    """Skip locally when a real component is missing; in CI (CI=true) fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required test component missing in CI: {what}")
    pytest.skip(f"missing: {what}")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"command {name!r} on PATH")
    return path  # type: ignore[return-value]
