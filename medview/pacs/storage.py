"""Where received instances go: paths medview builds from hashes, never from DICOM values.

A PACS or a sender controls every UID in what it sends; a SOP Instance UID such as
``../../x`` must not choose a path (the path-traversal bug class seen in PACS software).
So each path component is a hash of the UID::

    ROOT/<sha256(study UID)[:20]>/<sha256(series UID)[:20]>/<sha256(SOP UID)[:32]>.dcm

The same instance always lands at the same path, which is how a resumed retrieve knows what
it already has. Files are written to a temporary name beside the target and renamed into
place, so a dropped connection never leaves a partial ``.dcm``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import threading
from pathlib import Path

from medview.atomic import atomic_file

__all__ = ["RawWriter", "default_store", "instance_path", "write_dataset", "write_raw"]

_made: set[Path] = set()  # folders known to exist: one mkdir per series, not per file


def default_store() -> Path:
    """``pacs/`` in the user data folder (``$MEDVIEW_DATA_DIR`` overrides the folder)."""
    from medview.privatedirs import pacs_dir

    return pacs_dir()


def _h(uid: str, n: int) -> str:
    return hashlib.sha256(str(uid).encode("utf-8", "surrogateescape")).hexdigest()[:n]


def instance_path(root: str | os.PathLike, study_uid: str, series_uid: str,
                  sop_uid: str) -> Path:
    """The file of an instance under ``root``; only hex digits below ``root``."""
    return Path(root) / _h(study_uid, 20) / _h(series_uid, 20) / f"{_h(sop_uid, 32)}.dcm"


def _is_default(root: Path) -> bool:
    try:
        return root.resolve() == default_store().resolve()
    except OSError:
        return False


def _make_folder(root: Path, path: Path) -> None:
    # received instances carry everything about the patient: folders 0700, files 0600;
    # the folders are made (and checked) once per series folder, not once per file
    if path.parent not in _made or not path.parent.is_dir():
        from medview.privatedirs import make_private_dirs

        root = Path(root)
        make_private_dirs(root, path.parent, tighten_root=_is_default(root))
        _made.add(path.parent)


def _place(root: Path, path: Path, write) -> Path:
    _make_folder(root, path)
    # no fsync per instance: a store receives thousands, and the sender keeps its copy until
    # the association ends
    with (atomic_file(path, overwrite=True, mode=0o600, suffix=".part", parents=False,
                      durable=False) as tmp,
          open(tmp, "wb") as f):
        write(f)
    return path


def _place_bytes(root: Path, path: Path, pieces: list) -> Path:
    """:func:`_place` of ``b"".join(pieces)``, in as few system calls as it takes: the
    temporary file (``.<name>.<random>.part`` beside the target, mode 0600) created, written
    with ``writev`` and renamed into place; removed again on any failure. (A retrieve
    writes hundreds of instances a second while its network thread waits for the same
    interpreter lock: each call that releases it costs one a turn.)"""
    _make_folder(root, path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue
    try:
        try:
            views = [memoryview(p) for p in pieces if len(p)]
            if hasattr(os, "writev"):
                while views:
                    n = os.writev(fd, views)
                    while n:  # drop what was written; the rest goes again
                        if n >= len(views[0]):
                            n -= len(views.pop(0))
                        else:
                            views[0], n = views[0][n:], 0
            else:
                for v in views:
                    while len(v):
                        v = v[os.write(fd, v):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


#: what :func:`_uids_of_raw` reads: SOP Instance, Study Instance and Series Instance UID
_UID_TAGS = (0x00080018, 0x0020000D, 0x0020000E)
#: how much of a deflated data set is inflated to find its UIDs (they come first, in groups
#: 0008 and 0020): a peer's few kilobytes can inflate to gigabytes
INFLATE_FOR_UIDS = 1 << 20


def _uids_of_raw(raw: bytes, transfer_syntax: str) -> tuple[str, str, str]:
    """(study, series, SOP instance) UIDs read from an encoded dataset (no pixel parsing:
    pydicom walks the elements up to the Series Instance UID and converts only these)."""
    from pydicom.dataelem import DataElement, convert_raw_data_element
    from pydicom.filereader import data_element_generator
    from pydicom.uid import UID

    ts = UID(transfer_syntax)
    cut = False  # only the start of a deflated data set was inflated
    if ts.is_deflated:
        import zlib

        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        raw = inflate.decompress(raw, INFLATE_FOR_UIDS)
        cut = bool(inflate.unconsumed_tail)
    found = {}
    try:
        for elem in data_element_generator(io.BytesIO(raw), ts.is_implicit_VR,
                                           ts.is_little_endian,
                                           stop_when=lambda tag, vr, length: tag > 0x0020000E,
                                           defer_size=None, specific_tags=list(_UID_TAGS)):
            if elem.tag in _UID_TAGS:
                if not isinstance(elem, DataElement):
                    elem = convert_raw_data_element(elem)
                found[elem.tag] = str(elem.value) if elem.value is not None else ""
    except Exception:
        if not cut:  # a malformed data set: said as before
            raise
        # an element running past the inflated start: the UIDs found before it are kept
    return found.get(0x0020000D, ""), found.get(0x0020000E, ""), found.get(0x00080018, "")


def write_raw(root: str | os.PathLike, file_meta, raw: bytes) -> tuple[Path, tuple]:
    """Store an encoded dataset as received (C-STORE): preamble, ``file_meta``, ``raw``.

    Returns
    -------
    path : Path
    uids : (study UID, series UID, SOP instance UID)
    """
    from pydicom.filewriter import write_file_meta_info

    uids = _uids_of_raw(raw, file_meta.TransferSyntaxUID)
    if not uids[2]:
        uids = (uids[0], uids[1], str(file_meta.MediaStorageSOPInstanceUID))
    head = io.BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, file_meta, enforce_standard=True)
    return _place_bytes(root, instance_path(root, *uids), [head.getbuffer(), raw]), uids


def write_dataset(root: str | os.PathLike, ds) -> Path:
    """Store a pydicom dataset (WADO-RS) as a DICOM file in its own transfer syntax.

    A dataset read from a buffer holding a whole DICOM file (what dicomweb-client makes of
    each part) is written as those bytes, without encoding it again.
    """
    path = instance_path(root, ds.get("StudyInstanceUID", ""), ds.get("SeriesInstanceUID", ""),
                         ds.get("SOPInstanceUID", ""))
    buffer = getattr(ds, "buffer", None)
    raw = buffer.getvalue() if isinstance(buffer, io.BytesIO) else b""
    if raw[128:132] == b"DICM":
        return _place(root, path, lambda f: f.write(raw))
    return _place(root, path, lambda f: ds.save_as(f, enforce_file_format=True))


class RawWriter:
    """Writes received datasets in a thread of its own, so a retrieve answers the PACS's
    C-STORE at once and the PACS sends the next instance while this one goes to disk.

    Only for retrieves: the PACS keeps its copy whatever we answer, and an instance that
    could not be written is missing from the store, so the retrieve's report lists it (and
    a resume asks for it again). A storage SCP that others send to answers only once the
    file is written. ``close()`` waits for what is queued (at most ``depth`` datasets in
    memory); ``errors`` lists (SOP Instance UID, reason) of what could not be written.

    Parameters
    ----------
    root : path
    on_written : callable
        ``on_written(path, uids)`` in the writer's thread after each file is in place.
    """

    def __init__(self, root, on_written, depth: int = 32):
        import queue

        self.root = root
        self.on_written = on_written
        self.errors: list[tuple[str, str]] = []
        self._queue: queue.Queue = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="medview-pacs-writer",
                                        daemon=True)
        self._thread.start()

    def put(self, file_meta, raw: bytes) -> None:
        """Queue ``raw`` to be written after ``file_meta`` (its File Meta Information, or a
        callable making it, called in the writer's thread)."""
        self._queue.put((file_meta, raw))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            file_meta, raw = item
            try:
                if callable(file_meta):
                    file_meta = file_meta()
                path, uids = write_raw(self.root, file_meta, raw)
            except (OSError, ValueError, KeyError, AttributeError) as exc:
                sop = "" if callable(file_meta) else file_meta.get("MediaStorageSOPInstanceUID", "")
                self.errors.append((str(sop), str(exc)))
                continue
            try:
                self.on_written(path, uids)
            except Exception as exc:  # a callback's failure must not stop the writing
                self.errors.append((uids[2], f"after writing: {exc}"))

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
