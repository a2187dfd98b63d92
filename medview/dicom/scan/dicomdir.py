"""DICOMDIR: the files a DICOM media directory references (read with pydicom's FileSet)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from medview.dicom.errors import UnreadableFileError

__all__ = ["is_dicomdir", "read_dicomdir", "referenced_files"]

log = logging.getLogger(__name__)


def is_dicomdir(path: str | os.PathLike) -> bool:
    """True for a regular file named ``DICOMDIR`` (any case), the name the standard fixes."""
    p = Path(path)
    return p.name.upper() == "DICOMDIR" and p.is_file()


def _existing_case(path: Path) -> Path:
    """``path`` itself, or the file whose name differs only in case (CD file IDs are upper
    case; copies onto case-sensitive disks often are not)."""
    if path.exists():
        return path
    current = Path(path.anchor) if path.is_absolute() else Path()
    for part in path.parts[len(current.parts) :]:
        candidate = current / part
        if not candidate.exists():
            try:
                matches = [e for e in os.listdir(current) if e.upper() == part.upper()]
            except OSError:
                return path
            if len(matches) != 1:
                return path
            candidate = current / matches[0]
        current = candidate
    return current


_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


def referenced_files(path: str | os.PathLike) -> list[Path]:
    """The files a DICOMDIR references, in record order (see :func:`read_dicomdir`).

    Records that are skipped are logged as warnings.
    """
    files, skipped = read_dicomdir(path)
    for where, reason in skipped:
        log.warning("%s: %s", where, reason)
    return files


def _record_name(index: int, record) -> str:
    kind = str(record.get("DirectoryRecordType", "")).strip() or "record"
    return f"record {index + 1} ({kind})"


def read_dicomdir(path: str | os.PathLike) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files a DICOMDIR references, in record order, and the records it skipped.

    The directory records are read directly (``ReferencedFileID`` of every record in use),
    which is what :class:`pydicom.fileset.FileSet` does too, without its staging folder.
    A record whose ReferencedFileID would leave the DICOMDIR's folder (``..``, ``.``, an
    empty component or a separator inside one) is skipped with a reason; the rest are read.

    Parameters
    ----------
    path : str or os.PathLike
        The DICOMDIR file.

    Returns
    -------
    files : list of Path
        Absolute paths; a referenced file that does not exist is listed all the same (its
        scan then reports it), matched case-insensitively when only the case differs.
    skipped : list of (str, str)
        ``(DICOMDIR path, reason)`` per skipped record; the reason names the record (its
        number and type) and its ReferencedFileID.

    Raises
    ------
    UnreadableFileError
        The file is not a DICOMDIR or cannot be read.
    """
    import pydicom

    path = os.path.abspath(os.fspath(path))
    root = Path(path).parent
    skipped: list[tuple[str, str]] = []
    try:
        ds = pydicom.dcmread(path)
        sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID", ""))
        if sop_class != _DICOMDIR_SOP_CLASS:
            raise ValueError(f"SOP class {sop_class or 'missing'}, not Media Storage Directory")
        files = []
        for index, record in enumerate(ds.DirectoryRecordSequence):
            if record.get("RecordInUseFlag", 0xFFFF) == 0:
                continue  # an inactive record
            file_id = record.get("ReferencedFileID")
            if not file_id:
                continue
            parts = [file_id] if isinstance(file_id, str) else list(file_id)
            parts = [str(p).strip() for p in parts]
            if any(p in ("", ".", "..") or "/" in p or "\\" in p or "\0" in p
                   for p in parts):
                # a file ID may only name a file below the DICOMDIR (PS3.10 8.2, 8.5)
                shown = "\\".join(parts)
                skipped.append((path, f"{_record_name(index, record)} skipped: its "
                                f"ReferencedFileID '{shown}' leaves the DICOMDIR's folder"))
                continue
            files.append(_existing_case(root.joinpath(*parts)))
    except Exception as exc:  # a broken DICOMDIR of any kind becomes a reason, never a crash
        raise UnreadableFileError(path, f"broken DICOMDIR ({type(exc).__name__}: {exc})") from None
    return files, skipped
