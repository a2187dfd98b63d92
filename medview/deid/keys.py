"""Per-project keys, and what is derived from them: UIDs, pseudonyms, date offsets.

Every replacement value is an HMAC-SHA256 of the original under the project's key, so a share
is reproducible: the same study shared twice into one project gets the same UIDs and the same
pseudonym (a second share can be merged with the first), while two projects cannot link their
data. The key is a secret (:class:`medview.userconfig.SecretStore`: the OS keyring, else a 0600
file); the pseudonym → original mapping stays in the user data folder
(``deid/<project>/mapping.json``, 0600) and never leaves the workstation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from medview.userconfig import SecretStore, data_dir, read_json, write_private

__all__ = ["ProjectKey", "mapping_path", "project_key", "record_mapping"]

_STORE = SecretStore("medview-deid", "deid-keys.json", what="de-identification project keys",
                     missing_hint="no key for project {name}")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: dates move back by 1-10 years, whole days (times of day stay, intervals stay)
_MIN_SHIFT_DAYS, _SHIFT_RANGE_DAYS = 365, 3288


def _check_project(name: str) -> str:
    if not _PROJECT.match(name or ""):
        raise ValueError(f"project name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                         "(starting with a letter or digit)")
    return name


class ProjectKey:
    """The derivations of one project's secret key."""

    def __init__(self, project: str, key: bytes):
        self.project = _check_project(project)
        self._key = key
        self._uids: dict[str, str] = {}

    def _mac(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + value.encode("utf-8"),
                        hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """``2.25.<integer>``: the same original UID always gives the same new one (128 bits of
        the HMAC, so at most 44 characters)."""
        new = self._uids.get(original)
        if new is None:
            mac = self._mac(b"uid", original.strip().rstrip("\0"))
            new = self._uids[original] = f"2.25.{int.from_bytes(mac[:16], 'big')}"
        return new

    def pseudonym(self, patient_id: str) -> str:
        """The patient's pseudonym (used as Patient ID and Patient's Name): 16 characters."""
        mac = self._mac(b"patient", patient_id.strip())
        return "P" + base64.b32encode(mac[:10]).decode("ascii")[:15]

    def date_offset(self, patient_id: str) -> dt.timedelta:
        """How far back this patient's dates move (1-10 years, whole days)."""
        mac = self._mac(b"date-offset", patient_id.strip())
        days = _MIN_SHIFT_DAYS + int.from_bytes(mac[:4], "big") % _SHIFT_RANGE_DAYS
        return dt.timedelta(days=days)


def project_key(project: str, *, create: bool = True) -> ProjectKey:
    """The project's key from the secret store (made on first use when ``create``).

    Raises
    ------
    KeyError
        When the project has no key and ``create`` is False.
    ValueError
        For a project name that is not a plain name.
    """
    _check_project(project)
    try:
        key_hex = _STORE.get(project)
    except KeyError:
        if not create:
            raise
        key_hex = secrets.token_hex(32)
        _STORE.set(project, key_hex)
    return ProjectKey(project, bytes.fromhex(key_hex))


def key_storage() -> str:
    return _STORE.storage()


def mapping_path(project: str) -> Path:
    return data_dir() / "deid" / _check_project(project) / "mapping.json"


def record_mapping(project: str, entries: dict[str, dict]) -> Path:
    """Merge ``pseudonym → {PatientID, PatientName, ...}`` into the project's local mapping
    (0600). The originals stay here; nothing of this file is shared."""
    path = mapping_path(project)
    current = read_json(path)
    changed = False
    for pseudo, original in entries.items():
        if current.get(pseudo) != original:
            current[pseudo] = original
            changed = True
    if changed or not path.exists():
        write_private(path, current)
    for folder in (path.parent, path.parent.parent):   # deid/ and deid/<project>/: user only
        os.chmod(folder, 0o700)
    return path
