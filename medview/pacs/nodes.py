"""Configured PACS nodes: DIMSE peers and DICOMweb endpoints.

Nodes live in ``pacs-nodes.json`` in the user config folder (``$MEDVIEW_CONFIG_DIR``
overrides it). A DICOMweb password or bearer token goes to the OS keyring (service
``medview-pacs``, user = node name), or where no keyring is usable to ``pacs-secrets.json``
(0600) beside it — the same store as the offload tokens (:mod:`medview.userconfig`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal
from urllib.parse import urlparse

from medview.userconfig import SecretStore, config_dir, read_json, write_private

__all__ = [
    "DEFAULT_RETRIEVE_ASSOCIATIONS",
    "MAX_RETRIEVE_ASSOCIATIONS",
    "DimseNode",
    "Node",
    "WebNode",
    "add_node",
    "check_ae_title",
    "get_node",
    "list_nodes",
    "remove_node",
    "secret_storage",
]

SECRETS = SecretStore("medview-pacs", "pacs-secrets.json", what="PACS passwords and tokens",
                      missing_hint="no password or token stored for PACS node {name!r}; run "
                                   "'medview pacs add {name} ...' again")


def check_ae_title(value: str, what: str = "AE title") -> str:
    """``value`` stripped; ValueError unless it is 1-16 printable ASCII characters without a
    backslash (DICOM PS3.5, VR AE)."""
    v = (value or "").strip()
    if not v or len(v) > 16 or "\\" in v or not all(32 <= ord(c) < 127 for c in v):
        raise ValueError(f"{what} {value!r}: use 1-16 ASCII letters, digits, spaces or '_-' "
                         "(no backslash)")
    return v


def _check_port(port: int, what: str) -> int:
    port = int(port)
    if not 0 <= port <= 65535:
        raise ValueError(f"{what} {port}: not a TCP port (1-65535; 0 = any free port)")
    return port


#: C-GET / C-MOVE associations at once by default. Measured (benchmarks/pacs.py, Orthanc,
#: 300 × 512², 2 cores, loopback and a 1 Gbit/s link): one is the fastest — the time goes
#: to per-instance CPU in this process (one GIL for every association) and in the PACS, not
#: to waiting, and sharing out needs the instance list first (~0.2 s for 300 on Orthanc)
DEFAULT_RETRIEVE_ASSOCIATIONS = 1
#: more would only queue at the PACS (Orthanc serves 4 associations at once by default)
MAX_RETRIEVE_ASSOCIATIONS = 16


def _check_associations(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not \
            1 <= n <= MAX_RETRIEVE_ASSOCIATIONS:
        raise ValueError(f"retrieve associations {n!r}: a whole number from 1 to "
                         f"{MAX_RETRIEVE_ASSOCIATIONS}")
    return n


@dataclass(frozen=True)
class DimseNode:
    """A DICOM (DIMSE) peer.

    Attributes
    ----------
    name : str
        Our name for it.
    ae_title, host, port
        The peer's AE title and address.
    our_ae_title : str
        The calling AE title medview uses (the peer must know it for C-MOVE).
    our_port : int
        Where medview's storage SCP listens for C-MOVE (0 = a free port, fine for C-GET).
    retrieve : {"get", "move"}
        How ``medview pacs get`` retrieves from it.
    timeout_s : float
        Connection, association and reply timeout.
    retrieve_associations : int
        C-GET / C-MOVE over up to this many associations at once, each asking for a share
        of the instances (a PACS sends one instance at a time per association); 1 asks for
        a series or study in one request.
    """

    name: str
    ae_title: str
    host: str
    port: int
    our_ae_title: str = "MEDVIEW"
    our_port: int = 0
    retrieve: Literal["get", "move"] = "get"
    timeout_s: float = 30.0
    retrieve_associations: int = DEFAULT_RETRIEVE_ASSOCIATIONS
    kind: Literal["dimse"] = field(default="dimse", init=False)

    def describe(self) -> str:
        return (f"{self.name}: DICOM {self.ae_title}@{self.host}:{self.port} (we are "
                f"{self.our_ae_title}" + (f", port {self.our_port}" if self.our_port else "")
                + f"; retrieve by C-{self.retrieve.upper()}"
                + (f" over up to {self.retrieve_associations} associations"
                   if self.retrieve_associations > 1 else "") + ")")


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb endpoint (QIDO-RS, WADO-RS, STOW-RS under one base URL).

    Attributes
    ----------
    name : str
    url : str
        Base URL of the DICOMweb service, e.g. ``https://pacs.example.org/dicom-web``.
    auth : {"none", "basic", "bearer"}
    username : str, optional
        For basic authentication; the password (or the bearer token) is in the keyring.
    ca_bundle : str, optional
        CA certificates to trust for https; default the system CAs.
    timeout_s : float
    """

    name: str
    url: str
    auth: Literal["none", "basic", "bearer"] = "none"
    username: str | None = None
    ca_bundle: str | None = None
    timeout_s: float = 30.0
    kind: Literal["web"] = field(default="web", init=False)

    def describe(self) -> str:
        who = {"none": "no authentication", "basic": f"basic auth as {self.username}",
               "bearer": "bearer token"}[self.auth]
        return (f"{self.name}: DICOMweb {self.url} ({who}"
                + (f", CA {self.ca_bundle}" if self.ca_bundle else "") + ")")

    def secret(self) -> str | None:
        """The password or token (None without authentication)."""
        return None if self.auth == "none" else SECRETS.get(self.name)


Node = DimseNode | WebNode


def _nodes_file():
    return config_dir() / "pacs-nodes.json"


def _check_name(name: str) -> str:
    if not name or "/" in name or name.strip() != name or name.startswith("-"):
        raise ValueError(f"node name {name!r}: use a plain word such as 'orthanc'")
    return name


def _from_dict(name: str, d: dict) -> Node:
    d = {k: v for k, v in d.items() if k not in ("kind", "name")}
    kind = d.pop("type", None) or "dimse"
    if kind not in ("dimse", "web"):
        raise ValueError(f"{_nodes_file()}: node {name!r} has unknown type {kind!r}")
    if kind == "web":
        return WebNode(name, **d)
    node = DimseNode(name, **d)
    try:
        _check_associations(node.retrieve_associations)
    except ValueError as exc:
        raise ValueError(f"{_nodes_file()}: node {name!r}: {exc}") from None
    return node


def add_node(node: Node, secret: str | None = None) -> Node:
    """Add or replace ``node``; a web node's password or token goes to the keyring.

    Raises
    ------
    ValueError
        On a bad name, AE title, port, URL, CA bundle, or a missing secret for basic/bearer.
    """
    from pathlib import Path

    _check_name(node.name)
    if isinstance(node, DimseNode):
        node = DimseNode(node.name, check_ae_title(node.ae_title, "peer AE title"),
                         node.host.strip(), _check_port(node.port, "port"),
                         check_ae_title(node.our_ae_title, "our AE title"),
                         _check_port(node.our_port, "our port"), node.retrieve, node.timeout_s,
                         _check_associations(node.retrieve_associations))
        if not node.host or node.port == 0:
            raise ValueError(f"node {node.name}: give the peer's host and port")
        if node.retrieve not in ("get", "move"):
            raise ValueError(f"retrieve {node.retrieve!r}: 'get' or 'move'")
    else:
        u = urlparse(node.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"DICOMweb URL {node.url!r}: use https://HOST[:PORT]/PATH")
        if node.auth not in ("none", "basic", "bearer"):
            raise ValueError(f"auth {node.auth!r}: none, basic or bearer")
        if node.auth == "basic" and not node.username:
            raise ValueError("basic authentication needs a user name (--user)")
        if node.auth != "none" and not (secret and secret.strip()):
            raise ValueError(f"{node.auth} authentication needs a "
                             f"{'password' if node.auth == 'basic' else 'token'} (read from "
                             "stdin or a prompt)")
        ca = node.ca_bundle
        if ca is not None:
            p = Path(ca).expanduser().resolve()
            if not p.is_file():
                raise ValueError(f"--ca-bundle {ca}: no such file")
            ca = str(p)
        node = WebNode(node.name, node.url.rstrip("/"), node.auth, node.username, ca,
                       node.timeout_s)
    data = read_json(_nodes_file())
    d = asdict(node)
    d.pop("name")
    d["type"] = d.pop("kind")
    data[node.name] = d
    if isinstance(node, WebNode) and node.auth != "none":
        SECRETS.set(node.name, secret.strip())  # type: ignore[union-attr]
    else:
        SECRETS.delete(node.name)
    write_private(_nodes_file(), data)
    return node


def list_nodes() -> list[Node]:
    return [_from_dict(n, d) for n, d in sorted(read_json(_nodes_file()).items())]


def get_node(name: str) -> Node:
    """Raises KeyError naming the configured nodes if ``name`` is unknown."""
    data = read_json(_nodes_file())
    if name not in data:
        known = ", ".join(sorted(data)) or "none"
        raise KeyError(f"no PACS node named {name!r} (configured: {known}); add one with "
                       f"'medview pacs add {name} ...'")
    return _from_dict(name, data[name])


def remove_node(name: str) -> None:
    data = read_json(_nodes_file())
    if name not in data:
        raise KeyError(f"no PACS node named {name!r}")
    del data[name]
    write_private(_nodes_file(), data)
    SECRETS.delete(name)


def secret_storage() -> str:
    return SECRETS.storage()
