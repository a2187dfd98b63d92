"""The user's config and data folders, private JSON files and a secret store.

Shared by the offload client (:mod:`medview.remote.config`) and the PACS nodes
(:mod:`medview.pacs.nodes`); it imports nothing of medview, so any layer may use it.

Secrets go to the OS keyring (one service name per kind of secret, user = the entry's name);
where no keyring backend is usable (a headless server, a minimal desktop) they go to a JSON
file in the config folder readable by the user only (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

__all__ = ["SecretStore", "config_dir", "data_dir", "read_json", "write_private"]


def config_dir() -> Path:
    """``$MEDVIEW_CONFIG_DIR``, else the platform's user config folder for medview."""
    env = os.environ.get("MEDVIEW_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("medview"))


def data_dir() -> Path:
    """``$MEDVIEW_DATA_DIR``, else the platform's user data folder for medview."""
    env = os.environ.get("MEDVIEW_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("medview"))


def write_private(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically, mode 0600."""
    from medview.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2), mode=0o600, parents=True)


def read_json(path: Path) -> dict:
    """The JSON object in ``path`` ({} when it does not exist).

    Raises
    ------
    ValueError
        Naming the file, when it is not a valid JSON object.
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


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


class SecretStore:
    """Secrets by name: the OS keyring (``service``), else ``file_name`` (0600) in the config
    folder.

    Parameters
    ----------
    service : str
        Keyring service name, e.g. ``"medview-remote"``.
    file_name : str
        Fallback file in :func:`config_dir`, e.g. ``"remote-tokens.json"``.
    what : str
        What the secrets are, for messages ("offload tokens").
    missing_hint : str
        Format string with ``{name}`` telling how to store a missing secret.
    """

    def __init__(self, service: str, file_name: str, *, what: str, missing_hint: str):
        self.service = service
        self.file_name = file_name
        self.what = what
        self.missing_hint = missing_hint

    @property
    def file(self) -> Path:
        return config_dir() / self.file_name

    def storage(self) -> str:
        """Where secrets are kept: ``"keyring (<backend>)"`` or ``"file <path> (0600)"``."""
        kr = _keyring()
        if kr is not None:
            return f"keyring ({type(kr.get_keyring()).__name__})"
        return f"file {self.file} (0600)"

    def set(self, name: str, secret: str) -> None:
        kr = _keyring()
        if kr is not None:
            try:
                kr.set_password(self.service, name, secret)
                return
            except kr.errors.KeyringError:
                pass  # a locked or broken keyring: fall back to the private file
        secrets = read_json(self.file)
        secrets[name] = secret
        write_private(self.file, secrets)

    def get(self, name: str) -> str:
        """The secret stored for ``name``.

        Raises
        ------
        KeyError
            If none is stored (the message says how to store one).
        PermissionError
            If the fallback file is readable by others.
        """
        kr = _keyring()
        if kr is not None:
            try:
                secret = kr.get_password(self.service, name)
            except kr.errors.KeyringError:
                secret = None
            if secret:
                return secret
        path = self.file
        if path.exists() and (path.stat().st_mode & 0o077):
            raise PermissionError(f"{path} is readable by others; run 'chmod 600 {path}' "
                                  f"(it holds {self.what})")
        secret = read_json(path).get(name)
        if not secret:
            raise KeyError(self.missing_hint.format(name=name))
        return str(secret)

    def delete(self, name: str) -> None:
        kr = _keyring()
        if kr is not None:
            with contextlib.suppress(kr.errors.KeyringError):  # nothing stored there
                kr.delete_password(self.service, name)
        secrets = read_json(self.file)
        if secrets.pop(name, None) is not None:
            write_private(self.file, secrets)
