"""The disclosure audit log: one line per series that leaves the workstation.

Every disclosure — an offload job, a PACS send, a share, a backup — appends one JSON line to
``audit.log`` in the user data folder (:func:`medview.userconfig.data_dir`): when (ISO 8601 with
the zone), who (the OS user), what action, which series (its UIDs as the catalog knows them),
where to, under which de-identification profile, how many bytes, and a free ``detail`` (the job
id, the share folder …). The file is append-only by construction: it is opened ``O_APPEND``
(each line is one ``write``), never rewritten or truncated, readable by the user only (0600);
a lock (``flock``) keeps lines from two processes whole.

Imports nothing of medview but :mod:`medview.userconfig`, so every layer may write to it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["AuditEntry", "audit_path", "read_audit", "record"]

FILE_NAME = "audit.log"


@dataclass(frozen=True)
class AuditEntry:
    """One disclosure of one series."""

    time: str
    user: str
    action: str          # "offload", "send", "share", "backup"
    series_uid: str      # the series as the catalog knows it ("" when it has none)
    destination: str     # node / endpoint name and address, folder or ZIP path
    profile: str = ""    # de-identification profile ("" = none: sent as stored)
    bytes: int = 0
    detail: dict = field(default_factory=dict)


def audit_path() -> Path:
    """Where the log is: ``$MEDVIEW_DATA_DIR/audit.log`` or the user data folder's."""
    from medview.userconfig import data_dir

    return data_dir() / FILE_NAME


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def record(*, action: str, series: Iterable[tuple[str, int]] | Iterable[str], destination: str,
           profile: str = "", detail: dict | None = None, path: Path | None = None) -> Path:
    """Append one line per disclosed series; returns the log's path.

    ``series``: ``(series UID, bytes)`` pairs, or bare UIDs (0 bytes). Written before or as the
    data leaves — a disclosure that fails half-way is still a disclosure.
    """
    path = path or audit_path()
    if not path.parent.exists() or path.parent == audit_path().parent:
        from medview.privatedirs import private_folder

        private_folder(path.parent)  # the user's data folder: 0700
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    user = _user()
    lines = []
    for item in series:
        uid, size = (item, 0) if isinstance(item, str) else item
        entry = AuditEntry(stamp, user, action, str(uid), destination, profile, int(size),
                           dict(detail or {}))
        lines.append(json.dumps(asdict(entry), sort_keys=True))
    if not lines:
        return path
    data = ("\n".join(lines) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with _locked(fd):
            size = os.fstat(fd).st_size
            if size and os.lseek(fd, size - 1, os.SEEK_SET) >= 0 and os.read(fd, 1) != b"\n":
                # a line torn by a crash mid-write: end it, or this entry would be glued to
                # it and lost with it
                data = b"\n" + data
            os.write(fd, data)
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: O_APPEND alone
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_audit(path: Path | None = None) -> list[AuditEntry]:
    """Every entry in the log, oldest first ([] when there is none).

    A line that is not a whole entry (a crash mid-write, an edit by hand) is skipped, not fatal:
    the rest of the log stays readable.
    """
    path = path or audit_path()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    known = set(AuditEntry.__dataclass_fields__)
    out = []
    for line in text.splitlines():
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict) or not {"time", "action"} <= raw.keys():
                continue
            out.append(AuditEntry(**{k: v for k, v in raw.items() if k in known}))
        except (ValueError, TypeError):
            continue
    return out
