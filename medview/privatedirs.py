"""Where medview keeps patient data on the workstation, readable by the user only.

The catalog (names, IDs, birth dates, study dates, descriptions, file paths), thumbnails,
recovery files (autosaved label maps), PACS copies and offload mappings all hold patient data.
They live in folders that only the user can enter (0700) and are written as files only the
user can read (0600). A folder that already exists with a wider mode (made by an older
medview) is tightened when medview opens it, and everything below it once with it.

Every path is decided here, once, so the code that writes and ``medview catalog wipe`` (which
removes) agree; the environment variables used by tests and by users who move the data
(``MEDVIEW_DATA_DIR``, ``MEDVIEW_CACHE_DIR``, ``MEDVIEW_RECOVERY_DIR``, ``MEDVIEW_DB``,
``MEDVIEW_LOG_DIR``) override the platform's folders (platformdirs).

Imports nothing of medview but :mod:`medview.userconfig`, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

__all__ = [
    "cache_dir",
    "catalog_path",
    "log_dir",
    "make_private_dirs",
    "pacs_dir",
    "private_file",
    "private_folder",
    "recovery_dir",
    "thumbnails_dir",
]

_lock = threading.Lock()


def _warn(path, exc: OSError) -> None:
    import logging  # only when there is something to say (start-up time of every command)

    logging.getLogger(__name__).warning("%s: cannot make it readable by this account only (%s)",
                                        path, exc.strerror or exc)


def _platform(kind: str) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("medview"))


def catalog_path() -> Path:
    """``$MEDVIEW_DB``, else ``catalog.sqlite`` in the data folder."""
    env = os.environ.get("MEDVIEW_DB")
    if env:
        return Path(env)
    from medview.userconfig import data_dir

    return data_dir() / "catalog.sqlite"


def cache_dir() -> Path:
    """``$MEDVIEW_CACHE_DIR``, else the user cache folder for medview."""
    env = os.environ.get("MEDVIEW_CACHE_DIR")
    return Path(env) if env else _platform("cache")


def thumbnails_dir() -> Path:
    return cache_dir() / "thumbnails"


def recovery_dir() -> Path:
    """``$MEDVIEW_RECOVERY_DIR``, else ``recovery`` in the data folder."""
    env = os.environ.get("MEDVIEW_RECOVERY_DIR")
    if env:
        return Path(env)
    from medview.userconfig import data_dir

    return data_dir() / "recovery"


def pacs_dir() -> Path:
    """Retrieved and received instances: ``pacs`` in the data folder."""
    from medview.userconfig import data_dir

    return data_dir() / "pacs"


def log_dir() -> Path:
    """``$MEDVIEW_LOG_DIR``, else the user log folder for medview (medview writes its log to
    stderr today; a log file, when there is one, belongs here)."""
    env = os.environ.get("MEDVIEW_LOG_DIR")
    return Path(env) if env else _platform("log")


def _tighten_tree(root: Path) -> None:
    """Folders 0700 and files 0600 below ``root`` (symbolic links are left alone)."""
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
        for name in files:
            p = os.path.join(folder, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
                os.chmod(p, 0o600)


def private_folder(path: str | os.PathLike) -> Path:
    """``path`` as a folder only the user can enter (0700), made if missing.

    Missing parents are made 0700 too. An existing folder with a wider mode is tightened, and
    with it everything below it (once: afterwards the folder is 0700 and nothing is walked).
    """
    path = Path(path)
    with _lock:
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for p in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(p, 0o700)
            os.chmod(p, 0o700)  # the umask may have taken bits away, never added any
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != 0o700:
            try:
                os.chmod(path, 0o700)
                if mode & 0o077:
                    _tighten_tree(path)  # files made by an older medview, readable by others
            except OSError as exc:  # another account's folder, a read-only medium
                _warn(path, exc)
    return path


def make_private_dirs(root: Path, folder: Path, *, tighten_root: bool = True) -> None:
    """Make ``folder`` (below ``root``) and the folders between them, each 0700.

    ``root`` is made with :func:`private_folder` when it is missing or ``tighten_root`` (a
    folder of medview's own); an existing folder the user chose is left as it is.
    """
    if tighten_root or not root.exists():
        private_folder(root)
    if folder.is_dir():
        return
    rel = folder.relative_to(root)
    p = root
    for part in rel.parts:
        p = p / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, 0o700)


def private_file(path: str | os.PathLike) -> None:
    """Make an existing file readable by the user only (0600); no-op when it is missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o600:
        try:
            os.chmod(path, 0o600)
        except OSError as exc:  # another account's file, a read-only medium
            _warn(path, exc)
