"""Atomic writes: a file or folder is the old one or the whole new one, never half written.

Everything medview writes for the user (exports, results, settings, secrets, received
instances, caches) goes through here: the new content is written to a temporary entry in the
same folder (so the final rename stays on one file system), flushed to disk, then renamed into
place. Without ``overwrite`` the file is linked into place, which fails when the target exists,
so a file someone else wrote meanwhile is never replaced. Any exception removes the temporary
entry (and the folders made for it) and leaves the target as it was.

Modes: ``mode=None`` gives the mode a plain ``open()`` would (0666/0777 less the umask, see
:mod:`medview.fileperms`), right for exports others should read; secrets and patient stores
pass ``mode=0o600``. This module imports nothing of medview but :mod:`medview.fileperms`, so
any layer may use it.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medview.fileperms import give_user_mode

__all__ = ["atomic_file", "atomic_folder", "write_bytes_atomic", "write_text_atomic"]

#: link() errors meaning "this file system cannot hard-link", not "the target exists"
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK,
            errno.ENOSYS}


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(created: list[Path]) -> None:
    for p in created:
        try:
            p.rmdir()
        except OSError:
            break


def _refuse_existing(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder for fsync)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place_no_replace(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (atomically where links work)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (--force) to replace it") from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        _refuse_existing(path)  # no hard links here (FAT, some shares): check, then rename
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextmanager
def atomic_file(path: str | os.PathLike, *, overwrite: bool = False, mode: int | None = None,
                suffix: str = ".tmp", parents: bool = True,
                durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place when the block succeeds.

    Parameters
    ----------
    path : path
        The file to write.
    overwrite : bool
        Replace an existing ``path``; without it an existing ``path`` is an error, checked
        before the block and again (atomically where the file system links) when placing.
    mode : int, optional
        The file's mode; None: what a plain ``open()`` gives (umask, e.g. 0644).
    suffix : str
        The temporary file's suffix (writers that pick a format by suffix need the real one).
    parents : bool
        Create missing parent folders (removed again on failure).
    durable : bool
        fsync the file and its folder before returning (off for caches that can be rebuilt).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not overwrite:
        _refuse_existing(path)
    folder = path.parent if str(path.parent) else Path(".")
    created = _make_parents(folder) if parents else []
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        # mkstemp makes 0600: an export is for others to read too; secrets ask for 0600
        if mode is None:
            give_user_mode(tmp)
        else:
            os.chmod(tmp, mode)
        yield tmp
        if durable:
            _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_no_replace(tmp, path)
        if durable:
            _fsync_folder(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes | memoryview, *,
                       overwrite: bool = True, mode: int | None = None,
                       parents: bool = False, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`); return ``path``."""
    path = Path(path)
    with atomic_file(path, overwrite=overwrite, mode=mode, parents=parents,
                     durable=durable) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = True,
                      mode: int | None = None, parents: bool = False) -> Path:
    """:func:`write_bytes_atomic` of ``text`` in UTF-8, newlines written as given."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite, mode=mode,
                              parents=parents)


@contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool = False,
                  mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; rename it to ``path`` when the block succeeds.

    With ``overwrite`` an existing ``path`` is moved aside first and deleted only after the
    new folder is in place. On failure the temporary folder is deleted and ``path`` is left as
    it was. ``mode`` as in :func:`atomic_file` (None: 0777 less the umask).

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not overwrite:
        _refuse_existing(path)
    created = _make_parents(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        if mode is None:
            give_user_mode(tmp, folder=True)  # mkdtemp makes 0700
        else:
            os.chmod(tmp, mode)
        yield tmp
        if not overwrite:
            _refuse_existing(path)
        old = None
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
            raise
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
