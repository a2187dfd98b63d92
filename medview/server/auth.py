"""Bearer tokens: made once, shown once, stored only as SHA-256 hashes, with expiry and scopes.

A token is 32 random bytes (URL-safe base64), so a plain SHA-256 is enough to store it: there
is nothing to brute-force as there would be with a password. The tokens file (0600) is JSON::

    {"version": 2,
     "tokens": [{"name": "radiology-ws-3", "sha256": "…", "created": 1764000000.0,
                 "expires": 1771776000.0, "scopes": ["submit", "read"], "revoked": null}]}

Scopes: ``submit`` (submit jobs), ``read`` (status, cancel, download of the jobs this token
submitted — no other), ``admin`` (every job's status, cancel any job, the server's status).
``expires`` is seconds since the epoch or null (never); ``revoked`` the time it was revoked.
A revoked token stays in the file (its name cannot be given to a new token: the jobs it
submitted belong to that name). Files written before version 2 (entries with only name, hash
and time) still load: their tokens keep what they could do then (submit and read their own
jobs) and never expire; ``list-tokens`` says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "DEFAULT_EXPIRY_S",
    "DEFAULT_SCOPES",
    "SCOPES",
    "Principal",
    "TokenBook",
    "TokenRecord",
    "add_token",
    "default_tokens_path",
    "hash_token",
    "parse_expiry",
    "read_tokens",
    "revoke_token",
]

SCOPES = ("submit", "read", "admin")
#: what a workstation needs: submit jobs and follow, cancel and download its own
DEFAULT_SCOPES = ("submit", "read")
#: a new token lives 90 days unless told otherwise (``--expires``)
DEFAULT_EXPIRY_S = 90 * 86400.0
FORMAT_VERSION = 2
_HEX64 = re.compile(r"[0-9a-f]{64}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_tokens_path() -> Path:
    """``$MEDVIEW_CONFIG_DIR/server-tokens.json`` or the user config folder's."""
    from medview.remote.config import config_dir

    return config_dir() / "server-tokens.json"


@dataclass(frozen=True)
class TokenRecord:
    """One token as the file keeps it (its hash, never the token)."""

    name: str
    sha256: str
    created: float
    expires: float | None
    scopes: tuple[str, ...]
    revoked: float | None = None
    #: from a file written before expiry and scopes existed
    legacy: bool = False

    def state(self, now: float | None = None) -> str:
        """``"active"``, ``"expired"`` or ``"revoked"``."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and (time.time() if now is None else now) >= self.expires:
            return "expired"
        return "active"

    def public(self) -> dict:
        """What may be shown: everything but the hash."""
        return {"name": self.name, "created": self.created, "expires": self.expires,
                "scopes": list(self.scopes), "revoked": self.revoked,
                "state": self.state(), "legacy": self.legacy}

    def _stored(self) -> dict:
        d = asdict(self)
        d.pop("legacy")
        d["scopes"] = list(self.scopes)
        return d


def _number(value, what: str, path: Path, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{path}: token {name!r}: {what} must be a number of seconds since "
                         f"the epoch or null, not {value!r}")
    return float(value)


def _record(raw, path: Path, legacy: bool) -> TokenRecord:
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a medview tokens file (an entry is not an object)")
    name = raw.get("name")
    digest = raw.get("sha256")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{path}: not a medview tokens file (an entry has no name)")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError(f"{path}: token {name!r} has no valid sha256 (64 hex digits)")
    if legacy:
        scopes: tuple[str, ...] = DEFAULT_SCOPES
    else:
        scopes = tuple(raw.get("scopes") or ())
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValueError(f"{path}: token {name!r}: scopes {list(scopes)!r}: expected one "
                             f"or more of {', '.join(SCOPES)}")
    return TokenRecord(name=name, sha256=digest,
                       created=_number(raw.get("created"), "created", path, name) or 0.0,
                       expires=_number(raw.get("expires"), "expires", path, name),
                       scopes=scopes,
                       revoked=_number(raw.get("revoked"), "revoked", path, name),
                       legacy=legacy)


def read_tokens(path: str | Path | None = None) -> list[TokenRecord]:
    """Every token in the file ([] when it does not exist).

    Raises
    ------
    ValueError
        Naming the file and the entry, when it is not a tokens file, or was written by a
        newer medview.
    """
    path = Path(path) if path else default_tokens_path()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        tokens = data["tokens"]
        if not isinstance(tokens, list):
            raise TypeError("tokens is not a list")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a medview tokens file ({exc})") from None
    version = data.get("version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: tokens file version {version!r} is newer than this medview "
                         f"reads ({FORMAT_VERSION}): upgrade medview on this server")
    return [_record(t, path, legacy=version < 2) for t in tokens]


def _write(path: Path, records: Iterable[TokenRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"version": FORMAT_VERSION, "tokens": [r._stored() for r in records]},
                      f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the tokens file (two admins at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: single admin assumed
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")
_UNIT_S = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_expiry(text: str | None, *, now: float | None = None) -> float | None:
    """When a token made now with ``--expires TEXT`` expires (seconds since the epoch).

    ``TEXT``: a duration (``90d``, ``12h``, ``30m``, ``2w``), a date or time in ISO 8601
    (``2027-03-31``, ``2027-03-31T18:00+01:00``; a date without a zone is the server's local
    midnight), or ``never`` (None). Empty or None: :data:`DEFAULT_EXPIRY_S` from now.

    Raises
    ------
    ValueError
        Naming the text, when it is none of these or lies in the past.
    """
    now = time.time() if now is None else now
    if text is None or not text.strip():
        return now + DEFAULT_EXPIRY_S
    text = text.strip().lower()
    if text == "never":
        return None
    m = _DURATION.fullmatch(text)
    if m:
        seconds = float(m[1]) * _UNIT_S[m[2]]
        if seconds <= 0:
            raise ValueError(f"--expires {text}: give a duration above zero")
        return now + seconds
    try:
        when = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(f"--expires {text!r}: expected a duration (90d, 12h, 30m, 2w), a date "
                         "(2027-03-31) or 'never'") from None
    stamp = when.timestamp()  # naive = local time
    if stamp <= now:
        raise ValueError(f"--expires {text}: that is in the past")
    return stamp


def add_token(name: str, path: str | Path | None = None, *,
              scopes: Iterable[str] = DEFAULT_SCOPES,
              expires: float | str | None = "") -> str:
    """Make a token named ``name``, store its hash in ``path``; return the token (once).

    Parameters
    ----------
    scopes : iterable of str
        Any of :data:`SCOPES`; default :data:`DEFAULT_SCOPES`.
    expires : float, None or str
        Seconds since the epoch, None (never), or text for :func:`parse_expiry` (the default
        ``""`` = :data:`DEFAULT_EXPIRY_S` from now).

    Raises
    ------
    ValueError
        If ``name`` is empty or already used (also by a revoked token), a scope is unknown,
        or the file is not a tokens file.
    """
    if not name or not name.strip():
        raise ValueError("token name: give a name that says who uses it")
    scopes = tuple(dict.fromkeys(scopes))
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scope {', '.join(bad) or '(none)'}: expected one or more of "
                         f"{', '.join(SCOPES)}")
    if isinstance(expires, str):
        expires = parse_expiry(expires)
    path = Path(path) if path else default_tokens_path()
    with _file_lock(path):
        records = read_tokens(path)
        old = next((r for r in records if r.name == name), None)
        if old is not None:
            what = "a revoked token" if old.revoked is not None else "a token"
            raise ValueError(f"{path}: {what} named {name!r} exists (the jobs it submitted "
                             "belong to that name); choose another name")
        token = secrets.token_urlsafe(32)
        records.append(TokenRecord(name=name, sha256=hash_token(token), created=time.time(),
                                   expires=expires, scopes=scopes))
        _write(path, records)
    return token


def revoke_token(name: str, path: str | Path | None = None) -> TokenRecord:
    """Mark the token ``name`` revoked (a running server refuses it at its next request).

    Raises
    ------
    KeyError
        If no token has that name (the message lists the names there are).
    """
    path = Path(path) if path else default_tokens_path()
    with _file_lock(path):
        records = read_tokens(path)
        for i, r in enumerate(records):
            if r.name == name:
                if r.revoked is None:
                    records[i] = replace(r, revoked=time.time(), legacy=False)
                    _write(path, records)
                return records[i]
    names = ", ".join(r.name for r in records) or "none"
    raise KeyError(f"{path}: no token named {name!r} (tokens: {names})")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the token's name and what it may do."""

    name: str
    scopes: tuple[str, ...]

    def can(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class TokenBook:
    """The tokens the server knows: hash → record."""

    records: dict[str, TokenRecord]

    @classmethod
    def load(cls, path: str | Path) -> TokenBook:
        return cls({r.sha256: r for r in read_tokens(path)})

    def check(self, token: str | None, *, now: float | None = None
              ) -> tuple[Principal | None, str, str]:
        """``(principal or None, name or "-", why refused or "")`` for a presented token.

        The hash is compared with every stored one in constant time; an expired or revoked
        token is refused with its name (the holder learns why; nobody else learns anything).
        """
        if not token:
            return None, "-", "no token"
        h = hash_token(token)
        found = None
        for known, record in self.records.items():
            if secrets.compare_digest(known, h):
                found = record
        if found is None:
            return None, "-", "unknown token"
        state = found.state(now)
        if state == "expired":
            when = datetime.fromtimestamp(found.expires, UTC).strftime(
                "%Y-%m-%d %H:%M UTC")
            return None, found.name, f"token {found.name!r} expired on {when}"
        if state == "revoked":
            return None, found.name, f"token {found.name!r} was revoked"
        return Principal(found.name, found.scopes), found.name, ""

    def who(self, token: str | None) -> str | None:
        """The name of an active token, or None (missing, unknown, expired, revoked)."""
        principal = self.check(token)[0]
        return principal.name if principal else None
