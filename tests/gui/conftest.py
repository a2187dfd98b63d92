"""GUI tests: Qt offscreen, PySide6, the real demo study and real CT.

The platform must be chosen before the first QApplication exists, so it is set when this
file is imported, for the whole session (the QApplication lives that long too).
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("PYTEST_QT_API", "pyside6")

from pathlib import Path

import pytest
from realparts import DATA, IN_CI, REPO, require, require_tool  # noqa: F401


@pytest.fixture(scope="session")
def xvfb_run() -> str:
    """xvfb-run's path; in CI its absence fails the test instead of skipping it."""
    return require_tool("xvfb-run")


@pytest.fixture
def app(qapp):
    """The QApplication, configured as medview's (row-major images)."""
    from medview.gui.app import create_app

    return create_app()


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """Every GUI test gets its own settings file, thumbnail cache, endpoint configuration,
    token file (never the OS keyring) and audit log, never the user's."""
    folder = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("MEDVIEW_SETTINGS", str(folder / "settings.ini"))
    monkeypatch.setenv("MEDVIEW_CACHE_DIR", str(folder / "cache"))
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(folder / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(folder / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield folder
    from medview.pipeline import executors
    from medview.remote.executor import PREFIX

    for ex in executors.executors():  # no endpoint outlives its test in "Run on"
        if ex.name.startswith(PREFIX):
            executors.unregister_executor(ex.name)


@pytest.fixture
def window(app, qtbot, tmp_path):
    """A shown main window on a fresh catalog; its background tasks are stopped after."""
    from medview.gui.main_window import MainWindow

    win = MainWindow(catalog_path=tmp_path / "catalog.sqlite")
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    assert win.tasks.shutdown(timeout_ms=10_000)


@pytest.fixture(scope="session")
def pacs_orthanc(tmp_path_factory):
    """The real Orthanc of tests/pacs (DICOM + DICOMweb, authentication on), filled with the
    same CT and MR series, for the PACS dock's tests."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))
    from orthanc_proc import orthanc_with_test_series

    with orthanc_with_test_series(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture()
def no_keyring():
    """PACS secrets in the test's 0600 file, never the OS keyring."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)
