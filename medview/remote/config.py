"""Offload endpoints: names, URLs, CA bundles (a JSON file) and tokens (the OS keyring).

Endpoints live in ``remotes.json`` in the user config folder (``$MEDVIEW_CONFIG_DIR``
overrides it). Tokens go to the OS keyring (service ``medview-remote``, user = endpoint name);
where no keyring backend is usable (a headless server, a minimal desktop) they go to
``remote-tokens.json`` beside it, readable by the user only (0600), and
:func:`token_storage` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from medview.userconfig import SecretStore, config_dir, data_dir, read_json, write_private

__all__ = [
    "Endpoint",
    "add_endpoint",
    "config_dir",
    "data_dir",
    "get_endpoint",
    "get_token",
    "list_endpoints",
    "remove_endpoint",
    "token_storage",
]

KEYRING_SERVICE = "medview-remote"
_TOKENS = SecretStore(KEYRING_SERVICE, "remote-tokens.json", what="offload tokens",
                      missing_hint="no token stored for endpoint {name!r}; run 'medview remote "
                                   "add {name} URL' again")
_write_private = write_private
_read = read_json


@dataclass(frozen=True)
class Endpoint:
    """A named offload server."""

    name: str
    url: str
    ca_bundle: str | None = None

    def to_dict(self) -> dict:
        return {"url": self.url, "ca_bundle": self.ca_bundle}


def _endpoints_file() -> Path:
    return config_dir() / "remotes.json"


def check_url(url: str) -> str:
    """``url`` without a trailing slash; ValueError unless it is an https:// URL."""
    u = urlparse(url)
    if u.scheme != "https" or not u.hostname:
        raise ValueError(f"endpoint URL {url!r}: use https://HOST[:PORT] (TLS is required)")
    return url.rstrip("/")


def token_storage() -> str:
    """Where tokens are kept: ``"keyring (<backend>)"`` or ``"file <path> (0600)"``."""
    return _TOKENS.storage()


def _set_token(name: str, token: str) -> None:
    _TOKENS.set(name, token)


def get_token(name: str) -> str:
    """The token of endpoint ``name``.

    Raises
    ------
    KeyError
        If no token is stored for it.
    """
    return _TOKENS.get(name)


def _delete_token(name: str) -> None:
    _TOKENS.delete(name)


# -- endpoints ---------------------------------------------------------------------------------
def add_endpoint(name: str, url: str, token: str, *, ca_bundle: str | None = None) -> Endpoint:
    """Add or replace endpoint ``name``; the token goes to the keyring (or the 0600 file).

    Raises
    ------
    ValueError
        On an empty name or token, a URL that is not https://, a CA bundle that is not a file.
    """
    if not name or "/" in name or name.strip() != name:
        raise ValueError(f"endpoint name {name!r}: use a plain word such as 'cluster'")
    url = check_url(url)
    if not token or not token.strip():
        raise ValueError("token: empty (give the token 'medview serve add-token' printed)")
    if ca_bundle is not None:
        ca = Path(ca_bundle).expanduser().resolve()
        if not ca.is_file():
            raise ValueError(f"--ca-bundle {ca_bundle}: no such file")
        ca_bundle = str(ca)
    endpoint = Endpoint(name, url, ca_bundle)
    data = _read(_endpoints_file())
    data[name] = endpoint.to_dict()
    _set_token(name, token.strip())
    _write_private(_endpoints_file(), data)
    return endpoint


def list_endpoints() -> list[Endpoint]:
    return [Endpoint(n, d["url"], d.get("ca_bundle"))
            for n, d in sorted(_read(_endpoints_file()).items())]


def get_endpoint(name: str) -> Endpoint:
    """Raises KeyError naming the configured endpoints if ``name`` is unknown."""
    data = _read(_endpoints_file())
    if name not in data:
        known = ", ".join(sorted(data)) or "none"
        raise KeyError(f"no endpoint named {name!r} (configured: {known}); add one with "
                       f"'medview remote add {name} https://HOST:PORT'")
    d = data[name]
    return Endpoint(name, d["url"], d.get("ca_bundle"))


def remove_endpoint(name: str) -> None:
    data = _read(_endpoints_file())
    if name not in data:
        raise KeyError(f"no endpoint named {name!r}")
    del data[name]
    _write_private(_endpoints_file(), data)
    _delete_token(name)
