"""Where medview's resources (presets, example chains, the demo study) are."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["demo_study", "resources_dir"]


def resources_dir() -> Path:
    """The ``resources/`` folder: $MEDVIEW_RESOURCES, a bundle's, or the source tree's."""
    env = os.environ.get("MEDVIEW_RESOURCES")
    candidates = [Path(env)] if env else []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(__file__).resolve().parents[1] / "resources")
    candidates.append(Path(sys.prefix) / "share" / "medview" / "resources")
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "medview's resources folder was not found (looked in "
        + ", ".join(str(c) for c in candidates) + "); set MEDVIEW_RESOURCES"
    )


def demo_study() -> Path:
    """The folder of the bundled demo series."""
    return resources_dir() / "demo" / "t1_sag_hfs"
