"""Offload endpoints: names, URLs, CA bundles (a JSON file) and tokens (the OS keyring).

Endpoints live in ``remotes.json`` in the user config folder (``$MEDVIEW_CONFIG_DIR``
overrides it). Tokens go to the OS keyring (service ``medview-remote``, user = endpoint name);
where no keyring backend is usable (a headless server, a minimal desktop) they go to
``remote-tokens.json`` beside it, readable by the user only (0600), and
:func:`token_storage` says which.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

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


def config_dir() -> Path:
    env = os.environ.get("MEDVIEW_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("medview"))


def data_dir() -> Path:
    env = os.environ.get("MEDVIEW_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("medview"))


@dataclass(frozen=True)
class Endpoint:
    """A named offload server."""

    name: str
    url: str
    ca_bundle: str | None = None

    def to_dict(self) -> dict:
        return {"url": self.url, "ca_bundle": self.ca_bundle}


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _endpoints_file() -> Path:
    return config_dir() / "remotes.json"


def _tokens_file() -> Path:
    return config_dir() / "remote-tokens.json"


def check_url(url: str) -> str:
    """``url`` without a trailing slash; ValueError unless it is an https:// URL."""
    u = urlparse(url)
    if u.scheme != "https" or not u.hostname:
        raise ValueError(f"endpoint URL {url!r}: use https://HOST[:PORT] (TLS is required)")
    return url.rstrip("/")


# -- keyring with a file fallback --------------------------------------------------------------
def _keyring():
    """The keyring module when a usable backend exists, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def token_storage() -> str:
    """Where tokens are kept: ``"keyring (<backend>)"`` or ``"file <path> (0600)"``."""
    kr = _keyring()
    if kr is not None:
        return f"keyring ({type(kr.get_keyring()).__name__})"
    return f"file {_tokens_file()} (0600)"


def _set_token(name: str, token: str) -> None:
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(KEYRING_SERVICE, name, token)
            return
        except kr.errors.KeyringError:
            pass  # a locked or broken keyring: fall back to the private file
    tokens = _read(_tokens_file())
    tokens[name] = token
    _write_private(_tokens_file(), tokens)


def get_token(name: str) -> str:
    """The token of endpoint ``name``.

    Raises
    ------
    KeyError
        If no token is stored for it.
    """
    kr = _keyring()
    if kr is not None:
        try:
            token = kr.get_password(KEYRING_SERVICE, name)
        except kr.errors.KeyringError:
            token = None
        if token:
            return token
    path = _tokens_file()
    if path.exists() and (path.stat().st_mode & 0o077):
        raise PermissionError(f"{path} is readable by others; run 'chmod 600 {path}' "
                              "(it holds offload tokens)")
    token = _read(path).get(name)
    if not token:
        raise KeyError(f"no token stored for endpoint {name!r}; run 'medview remote add "
                       f"{name} URL' again")
    return str(token)


def _delete_token(name: str) -> None:
    kr = _keyring()
    if kr is not None:
        with contextlib.suppress(kr.errors.KeyringError):  # nothing stored there
            kr.delete_password(KEYRING_SERVICE, name)
    tokens = _read(_tokens_file())
    if tokens.pop(name, None) is not None:
        _write_private(_tokens_file(), tokens)


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
