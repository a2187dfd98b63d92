"""Settings ▸ PACS against a real Orthanc: add DICOM and DICOMweb nodes in the dialog and
verify them in the background, with the PACS layer's message for a refused port and a 401."""

from __future__ import annotations

import socket

import pytest

from medview.pacs.nodes import DimseNode, WebNode, get_node, list_nodes

TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def dialog(window, no_keyring):
    return window.open_pacs_dialog()


def _add_dimse(dialog, name: str, port: int) -> None:
    dialog.name.setText(name)
    dialog.kind.setCurrentIndex(0)
    dialog.ae_title.setText("ORTHANC")
    dialog.host.setText("127.0.0.1")
    dialog.port.setValue(port)
    dialog.our_ae_title.setText("MEDVIEW")
    assert dialog.add_from_form(), dialog.message.text()


def _verify(qtbot, dialog, name: str):
    dialog.select(name)
    with qtbot.waitSignal(dialog.verified, timeout=TIMEOUT_MS) as blocker:
        dialog.verify_selected()
    assert blocker.args[0] == name
    assert dialog.message.text() == blocker.args[2]  # what the user reads
    return blocker.args[1], blocker.args[2]


def test_add_a_dicom_node_and_verify_it_ok_and_refused(qtbot, window, dialog, pacs_orthanc):
    dialog.associations.setValue(2)
    with qtbot.waitSignal(dialog.changed):
        _add_dimse(dialog, "orthanc", pacs_orthanc.dicom_port)
    node = get_node("orthanc")
    assert isinstance(node, DimseNode)
    assert (node.ae_title, node.port, node.our_ae_title) == ("ORTHANC", pacs_orthanc.dicom_port,
                                                             "MEDVIEW")
    assert node.retrieve_associations == 2
    assert dialog.node_names() == ["orthanc"]
    assert "ORTHANC@127.0.0.1" in dialog.table.item(0, 2).text()
    # the dock's node chooser follows
    assert [window.pacs_panel.node.itemText(i)
            for i in range(window.pacs_panel.node.count())] == ["orthanc"]
    ok, text = _verify(qtbot, dialog, "orthanc")
    assert ok and "C-ECHO OK" in text

    _add_dimse(dialog, "nothing", _free_port())
    ok, text = _verify(qtbot, dialog, "nothing")
    assert not ok and text.startswith("nothing") and "connection refused" in text

    dialog.select("nothing")
    dialog.remove_selected()
    assert [n.name for n in list_nodes()] == ["orthanc"]


def test_dicomweb_node_basic_auth_ok_and_401(qtbot, dialog, pacs_orthanc):
    from orthanc_proc import PASSWORD, USER

    for name, password in (("web", PASSWORD), ("wrong", "not-" + PASSWORD)):
        dialog.name.setText(name)
        dialog.kind.setCurrentIndex(1)
        dialog.url.setText(pacs_orthanc.dicomweb)
        dialog.auth.setCurrentIndex(dialog.auth.findData("basic"))
        dialog.username.setText(USER)
        dialog.secret.setText(password)
        assert dialog.add_from_form(), dialog.message.text()
        assert dialog.secret.text() == ""  # the password does not stay in the widget
    node = get_node("web")
    assert isinstance(node, WebNode) and node.username == USER
    assert node.secret() == PASSWORD  # in the secret store, not in the node file
    ok, text = _verify(qtbot, dialog, "web")
    assert ok and "QIDO-RS OK" in text
    ok, text = _verify(qtbot, dialog, "wrong")
    assert not ok and "401" in text


def test_a_bad_form_says_why_and_adds_nothing(dialog):
    dialog.name.setText("bad")
    dialog.kind.setCurrentIndex(0)
    dialog.ae_title.setText("A" * 17)
    dialog.host.setText("127.0.0.1")
    assert not dialog.add_from_form()
    assert "AE title" in dialog.message.text() and "1-16" in dialog.message.text()
    assert list_nodes() == []
