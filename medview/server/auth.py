"""Bearer tokens: made once, shown once, stored only as SHA-256 hashes in the server config.

A token is 32 random bytes (URL-safe base64), so a plain SHA-256 is enough to store it: there
is nothing to brute-force as there would be with a password. The tokens file is JSON::

    {"tokens": [{"name": "radiology-ws-3", "sha256": "…", "created": 1764000000.0}]}
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TokenBook", "add_token", "default_tokens_path", "hash_token"]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_tokens_path() -> Path:
    """``$MEDVIEW_CONFIG_DIR/server-tokens.json`` or the user config folder's."""
    from medview.remote.config import config_dir

    return config_dir() / "server-tokens.json"


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        tokens = data["tokens"]
        if not isinstance(tokens, list):
            raise TypeError("tokens is not a list")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a medview tokens file ({exc})") from None
    return tokens


def add_token(name: str, path: str | Path | None = None) -> str:
    """Make a token named ``name``, store its hash in ``path``; return the token (once).

    Raises
    ------
    ValueError
        If ``name`` is empty or already used, or the file is not a tokens file.
    """
    if not name or not name.strip():
        raise ValueError("token name: give a name that says who uses it")
    path = Path(path) if path else default_tokens_path()
    tokens = _read(path)
    if any(t.get("name") == name for t in tokens):
        raise ValueError(f"{path}: a token named {name!r} exists; choose another name")
    token = secrets.token_urlsafe(32)
    tokens.append({"name": name, "sha256": hash_token(token), "created": time.time()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"tokens": tokens}, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return token


@dataclass(frozen=True)
class TokenBook:
    """The hashes the server accepts: hash → token name."""

    hashes: dict[str, str]

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        tokens = _read(Path(path))
        return cls({str(t["sha256"]): str(t.get("name", "?")) for t in tokens if "sha256" in t})

    def who(self, token: str | None) -> str | None:
        """The name of the token, or None if it is missing or unknown (constant time)."""
        if not token:
            return None
        h = hash_token(token)
        found = None
        for known, name in self.hashes.items():
            if secrets.compare_digest(known, h):
                found = name
        return found
