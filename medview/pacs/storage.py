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

import hashlib
import io
import os
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


def _place(root: Path, path: Path, write) -> Path:
    # received instances carry everything about the patient: folders 0700, files 0600;
    # the folders are made (and checked) once per series folder, not once per file
    if path.parent not in _made or not path.parent.is_dir():
        from medview.privatedirs import make_private_dirs

        root = Path(root)
        make_private_dirs(root, path.parent, tighten_root=_is_default(root))
        _made.add(path.parent)
    # no fsync per instance: a store receives thousands, and the sender keeps its copy until
    # the association ends
    with (atomic_file(path, overwrite=True, mode=0o600, suffix=".part", parents=False,
                      durable=False) as tmp,
          open(tmp, "wb") as f):
        write(f)
    return path


def _uids_of_raw(raw: bytes, transfer_syntax: str) -> tuple[str, str, str]:
    """(study, series, SOP instance) UIDs read from an encoded dataset (no pixel parsing)."""
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    ts = UID(transfer_syntax)
    if ts.is_deflated:
        import zlib

        raw = zlib.decompress(raw, -zlib.MAX_WBITS)
    ds = read_dataset(io.BytesIO(raw), ts.is_implicit_VR, ts.is_little_endian,
                      stop_when=lambda tag, vr, length: tag > 0x0020000E)
    return (str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")),
            str(ds.get("SOPInstanceUID", "")))


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

    def write(f):
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, file_meta, enforce_standard=True)
        f.write(raw)

    return _place(root, instance_path(root, *uids), write), uids


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
        self._queue.put((file_meta, raw))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            file_meta, raw = item
            try:
                path, uids = write_raw(self.root, file_meta, raw)
            except (OSError, ValueError, KeyError) as exc:
                self.errors.append((str(file_meta.get("MediaStorageSOPInstanceUID", "")),
                                    str(exc)))
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
