"""Validate what medview writes with dicom3tools' ``dciodvfy`` (a real IOD validator).

Every DICOM object an export test writes goes through :func:`assert_valid_dicom`: no line of
dciodvfy's output may start with ``Error``; the warnings are returned for tests to check.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from realparts import require_tool


def assert_valid_dicom(path: str | Path) -> list[str]:
    """Run dciodvfy on ``path``; fail on any ``Error`` line; return the warning lines."""
    tool = require_tool("dciodvfy")
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert not errors, f"dciodvfy {path}:\n" + "\n".join(lines)
    warnings = [ln for ln in lines if ln.startswith("Warning")]
    return warnings
