"""Permissions of the files medview writes for the user.

``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 entries (right for secrets, wrong for an
export a colleague or another program should read): a file renamed into place from such a
temporary keeps that mode. Exports get the mode a plain ``open()`` would give them, i.e.
0666/0777 less the process umask (0644/0755 with the usual umask 022); only secrets (tokens,
keys) stay 0600, and they set that themselves.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["current_umask", "give_user_mode"]

_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux
    ``/proc/self/status``), else by the set-and-restore dance (under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def give_user_mode(path: str | os.PathLike, *, folder: bool = False) -> None:
    """Give ``path`` (a temporary file or folder about to be renamed into place) the mode a
    newly created file (``folder``: folder) gets from the umask: 0644/0755 usually."""
    base = 0o777 if folder else 0o666
    os.chmod(Path(path), base & ~current_umask())
