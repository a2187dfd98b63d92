"""PACS nodes: configuration, secrets, and echo against a real Orthanc with clear failures."""

from __future__ import annotations

import io
import json
import stat

import pytest
from orthanc_proc import PASSWORD, USER, free_port

from medview.cli import main
from medview.pacs.echo import echo
from medview.pacs.errors import AssociationRejected, AuthenticationFailed, NodeUnreachable
from medview.pacs.nodes import DimseNode, WebNode, add_node, get_node, list_nodes


def test_nodes_round_trip_and_the_secret_stays_out_of_the_node_file(pacs_home, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("hunter2\n"))
    assert main(["pacs", "add", "web", "https://pacs.example.org/dicom-web/", "--user",
                 "alice"]) == 0
    assert main(["pacs", "add", "dicom", "PACS@10.0.0.5:104", "--our-aet", "WS1",
                 "--retrieve", "move", "--our-port", "11112"]) == 0
    nodes = {n.name: n for n in list_nodes()}
    assert nodes["dicom"] == DimseNode("dicom", "PACS", "10.0.0.5", 104, "WS1", 11112, "move")
    web = nodes["web"]
    assert (web.url, web.auth, web.username) == ("https://pacs.example.org/dicom-web",
                                                 "basic", "alice")
    assert web.secret() == "hunter2"
    node_file = pacs_home / "config" / "pacs-nodes.json"
    assert "hunter2" not in node_file.read_text()
    secrets = pacs_home / "config" / "pacs-secrets.json"
    assert json.loads(secrets.read_text()) == {"web": "hunter2"}
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["pacs", "list"]) == 0
    out = capsys.readouterr().out
    assert "dicom: DICOM PACS@10.0.0.5:104" in out and "basic auth as alice" in out
    assert main(["pacs", "remove", "web"]) == 0
    assert json.loads(secrets.read_text()) == {}
    with pytest.raises(KeyError, match="configured: dicom"):
        get_node("web")
    assert main(["pacs", "remove", "web"]) == 1


@pytest.mark.parametrize("address, message", [
    ("PACS@host", "AET@HOST:PORT"),
    ("THIS_AE_TITLE_IS_TOO_LONG@h:104", "1-16 ASCII"),
    ("PA\\CS@h:104", "no backslash"),
    ("PACS@h:70000", "not a TCP port"),
    ("ftp://x/y", "AET@HOST:PORT"),
])
def test_bad_addresses_are_refused_with_the_reason(pacs_home, capsys, address, message):
    assert main(["pacs", "add", "x", address]) == 1
    assert message in capsys.readouterr().err
    assert list_nodes() == []


def test_echo_dimse_ok(dimse_node, capsys):
    assert main(["pacs", "echo", "orthanc"]) == 0
    assert "C-ECHO OK" in capsys.readouterr().out


def test_echo_wrong_called_ae_title_names_the_rejection(orthanc, pacs_home):
    node = add_node(DimseNode("x", "NOT_ORTHANC", "127.0.0.1", orthanc.dicom_port,
                              timeout_s=5))
    with pytest.raises(AssociationRejected, match=r"rejected.*[Cc]alled AE title"):
        echo(node)


def test_echo_refused_port(pacs_home):
    node = add_node(DimseNode("x", "ORTHANC", "127.0.0.1", free_port(), timeout_s=5))
    with pytest.raises(NodeUnreachable, match="connection refused"):
        echo(node)


def test_echo_web_ok_and_401(web_node, orthanc, capsys):
    assert "QIDO-RS OK" in echo(web_node)
    bad = add_node(WebNode("bad", orthanc.dicomweb, "basic", USER), "wrong-" + PASSWORD)
    with pytest.raises(AuthenticationFailed, match="HTTP 401 unauthorized"):
        echo(bad)
    assert main(["pacs", "echo", "bad"]) == 1
    assert "401" in capsys.readouterr().err
    refused = add_node(WebNode("gone", f"http://127.0.0.1:{free_port()}/dicom-web"))
    with pytest.raises(NodeUnreachable, match="connection refused"):
        echo(refused)
