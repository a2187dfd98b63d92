"""Fast header scan: one DICOM file in, one :class:`InstanceHeader` out.

Two readers produce the same *raw tree* (the undecoded bytes of the elements medview needs)
and one builder turns it into an :class:`InstanceHeader`, so they cannot disagree on how a
value is decoded:

- a small hand-written parser for the common case (a Part 10 file, or a bare data set, encoded
  explicit or implicit VR little endian). It walks elements with :mod:`struct`, reads only the
  values it needs, skips the others by their declared length (checked against the bytes that
  remain), steps into the functional-group sequences only, stops at the pixel data and records
  its offset. Anything surprising makes it hand over to pydicom.
- pydicom (:func:`pydicom.dcmread` with deferred reading) for everything else: big endian,
  deflate, writers that switch VR encoding mid-file, sequences encoded as UN.

Corrupt files must never make the scanner allocate more than the file size or recurse without
bound: every declared length is checked against the bytes remaining, nesting is limited to
:data:`MAX_DEPTH` and the number of elements to :data:`MAX_ELEMENTS`.

Where the parts live: the hand-written parser in :mod:`medview.dicom.scan._fastparse`, the pydicom
path in :mod:`medview.dicom.scan._pydicom`, the field tables and the builder in
:mod:`medview.dicom.scan._decode`; this module has the public entry points, the folder walk
and the batches (in a process pool for large imports).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
from collections.abc import Iterable

from medview.core.progress import NO_PROGRESS, Progress
from medview.dicom.catalog._walk import skipped_name
from medview.dicom.errors import UnreadableFileError
from medview.dicom.scan._decode import _build
from medview.dicom.scan._fastparse import (
    MAX_DEPTH,
    MAX_ELEMENTS,
    _Fallback,
    _not_dicom,
    _scan_fast,
    _sniff,
)
from medview.dicom.scan._pydicom import _scan_pydicom
from medview.dicom.scan.header import FrameInfo, InstanceHeader

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "iter_files",
    "scan_file",
    "scan_file_pydicom",
    "scan_paths",
    "skipped_name",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- public API


def _stat(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):  # from the same stat: one system call, not two
        raise UnreadableFileError(path, "not a regular file")
    if st.st_size == 0:
        raise UnreadableFileError(path, "empty file (0 bytes)")
    return st


def scan_file(path: str | os.PathLike) -> InstanceHeader:
    """Read the header of one DICOM file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    InstanceHeader
        Everything medview needs of the file, including the byte offset of native pixel data.

    Raises
    ------
    UnreadableFileError
        The file is not DICOM, is truncated, has no pixel data or cannot be parsed; its
        ``reason`` says which.
    """
    path = os.fspath(path)
    st = _stat(path)
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: _Window does the buffering
            meta, tree, ts, little, pixel = _scan_fast(path, f, st.st_size)
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    except _Fallback:
        with open(path, "rb") as f:
            kind = _sniff(f.read(132))
        meta, tree, ts, little, pixel = _scan_pydicom(path, st.st_size, kind or "part10")
    return _build(path, st, meta, tree, ts, little, pixel)


def scan_file_pydicom(path: str | os.PathLike) -> InstanceHeader:
    """Like :func:`scan_file` but always through pydicom (reference for tests, fallback).

    Raises
    ------
    UnreadableFileError
        As :func:`scan_file`.
    """
    path = os.fspath(path)
    st = _stat(path)
    try:
        with open(path, "rb") as f:
            kind = _sniff(f.read(132))
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if kind is None:
        raise _not_dicom(path)
    meta, tree, ts, little, pixel = _scan_pydicom(path, st.st_size, kind)
    return _build(path, st, meta, tree, ts, little, pixel)


def iter_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """All regular files under ``paths`` (folders recursively, sorted, without the names
    :func:`skipped_name` rejects).

    A path naming a file is returned as given, hidden or not; missing paths are ignored.
    """
    out: list[str] = []

    def walk(folder: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if skipped_name(e.name):
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path)
                elif e.is_file():
                    out.append(e.path)
            except OSError:
                continue

    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            walk(p)
        elif os.path.isfile(p):
            out.append(p)
    return out


def _scan_batch(paths: list[str]) -> tuple[list[InstanceHeader], list[tuple[str, str]]]:
    headers: list[InstanceHeader] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        try:
            headers.append(scan_file(p))
        except UnreadableFileError as exc:
            errors.append((exc.path, exc.reason))
    return headers, errors


_FIELDS = tuple(f.name for f in dataclasses.fields(InstanceHeader))
_FRAME_FIELDS = tuple(f.name for f in dataclasses.fields(FrameInfo))


def _pack(h: InstanceHeader) -> tuple:
    """A header as plain tuples: pickles 3× faster than the dataclass, for the pool."""
    values = [getattr(h, name) for name in _FIELDS]
    if h.frames:
        values[_FIELDS.index("frames")] = tuple(
            tuple(getattr(f, name) for name in _FRAME_FIELDS) for f in h.frames
        )
    return tuple(values)


def _unpack(values: tuple) -> InstanceHeader:
    h = InstanceHeader(*values)
    if h.frames:
        h.frames = tuple(FrameInfo(*f) for f in h.frames)
    return h


def _scan_batch_packed(paths: list[str]) -> tuple[list[tuple], list[tuple[str, str]]]:
    headers, errors = _scan_batch(paths)
    return [_pack(h) for h in headers], errors


POOL_MIN_FILES = 4000  # measured: below this, spawning the pool costs what it saves
_BATCH = 200


def default_workers(n_files: int) -> int:
    """Processes worth using for ``n_files`` files: 1 below :data:`POOL_MIN_FILES`."""
    if n_files < POOL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def scan_batches(
    files: list[str],
    *,
    workers: int | None = None,
    batch_size: int | None = None,
) -> Iterable[tuple[list[InstanceHeader], list[tuple[str, str]], int]]:
    """Scan ``files`` in batches; yields (headers, errors, files done) per batch.

    With ``workers`` > 1 the batches run in a spawn process pool and arrive in completion
    order. Stop iterating to cancel: pending batches are dropped.
    """
    workers = default_workers(len(files)) if workers is None else max(1, int(workers))
    if batch_size is None:
        # several batches per worker keep the processes busy to the end
        per_worker = -(-len(files) // (workers * 4)) if workers > 1 else _BATCH
        batch_size = max(16, min(_BATCH, per_worker))
    batches = [files[i : i + batch_size] for i in range(0, len(files), batch_size)]
    if workers <= 1 or len(batches) <= 1:
        for b in batches:
            yield (*_scan_batch(b), len(b))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from medview.children import die_with_parent

    pending = dict(enumerate(batches))
    try:
        # the workers end when this process is killed (kill -9 leaves no time to stop them)
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent, initargs=(os.getpid(),),
        )
        try:
            futures = {pool.submit(_scan_batch_packed, b): i for i, b in pending.items()}
            for fut in as_completed(futures):
                packed, errors = fut.result()
                i = futures[fut]
                del pending[i]
                yield [_unpack(v) for v in packed], errors, len(batches[i])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    except (BrokenProcessPool, OSError) as exc:
        # e.g. a __main__ that cannot be re-imported (python - < script): finish here
        log.warning("header scan process pool failed (%s); scanning in this process", exc)
    for i in sorted(pending):
        yield (*_scan_batch(batches[i]), len(batches[i]))


def scan_paths(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    progress: Progress = NO_PROGRESS,
    workers: int | None = None,
) -> tuple[list[InstanceHeader], list[tuple[str, str]]]:
    """Scan every file under ``paths`` (folders recursively).

    Parameters
    ----------
    paths : path or iterable of paths
        Files and folders.
    progress : Progress, optional
        Receives ``update(fraction, message)`` per batch; cancellation is checked per batch.
    workers : int, optional
        Processes to use; default: one below :data:`POOL_MIN_FILES` files, else up to the
        number of CPUs (at most 4).

    Returns
    -------
    headers : list of InstanceHeader
        The readable files, in path order.
    errors : list of (path, reason)
        The files that could not be used, in path order.

    Raises
    ------
    Cancelled
        When ``progress`` was cancelled.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    progress = progress if progress is not None else NO_PROGRESS
    files = iter_files(paths)
    headers: list[InstanceHeader] = []
    errors: list[tuple[str, str]] = []
    done = 0
    progress.check()
    for h, e, n in scan_batches(files, workers=workers):
        headers.extend(h)
        errors.extend(e)
        done += n
        progress.update(done / max(len(files), 1), f"scanned {done}/{len(files)} files")
        progress.check()
    headers.sort(key=lambda h: h.path)
    errors.sort()
    return headers, errors
