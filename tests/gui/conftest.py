"""GUI tests: Qt offscreen, PySide6, the real demo study and real CT.

The platform must be chosen before the first QApplication exists, so it is set when this
file is imported, for the whole session (the QApplication lives that long too).
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("PYTEST_QT_API", "pyside6")

import importlib.util
from pathlib import Path

import pytest


def _load_root_conftest():
    # Conftests outside packages all import as "conftest" and pytest drops the previous one
    # from sys.modules before importing the next: load tests/conftest.py's helpers by path.
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_medview_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _load_root_conftest()
# re-exported: after this file is imported, `from conftest import ...` anywhere finds it
REPO: Path = _root.REPO
DATA: Path = _root.DATA
IN_CI: bool = _root.IN_CI
require = _root.require
require_tool = _root.require_tool

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


@pytest.fixture(scope="session")
def xvfb_run() -> str:
    """xvfb-run's path; in CI its absence fails the test instead of skipping it."""
    return require_tool("xvfb-run")


@pytest.fixture
def app(qapp):
    """The QApplication, configured as medview's (row-major images)."""
    from medview.gui.app import create_app

    return create_app()
