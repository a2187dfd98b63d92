"""A real Orthanc (DICOM + DICOMweb, authentication on) for the whole PACS test session, filled
with real series from the shared data, and a private config folder per test."""

from __future__ import annotations

import pytest
from orthanc_proc import MOVE_PORT, PASSWORD, USER, orthanc_with_test_series


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    with orthanc_with_test_series(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture()
def pacs_home(tmp_path, monkeypatch):
    """Config and data folders of this test; secrets in the 0600 file (no keyring)."""
    import keyring
    from keyring.backends import fail

    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield tmp_path
    keyring.set_keyring(previous)


@pytest.fixture()
def dimse_node(orthanc, pacs_home):
    from medview.pacs.nodes import DimseNode, add_node

    return add_node(DimseNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom_port,
                              "MEDVIEW", MOVE_PORT, timeout_s=10))


@pytest.fixture()
def web_node(orthanc, pacs_home):
    from medview.pacs.nodes import WebNode, add_node

    return add_node(WebNode("orthanc-web", orthanc.dicomweb, "basic", USER, timeout_s=10),
                    PASSWORD)
