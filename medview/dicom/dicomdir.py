"""DICOMDIR: the files a DICOM media directory references (read with pydicom's FileSet)."""

from __future__ import annotations

import os
from pathlib import Path

from medview.dicom.errors import UnreadableFileError

__all__ = ["is_dicomdir", "referenced_files"]


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
    """The files a DICOMDIR references, in record order.

    The directory records are read directly (``ReferencedFileID`` of every record in use),
    which is what :class:`pydicom.fileset.FileSet` does too, without its staging folder.

    Parameters
    ----------
    path : str or os.PathLike
        The DICOMDIR file.

    Returns
    -------
    list of Path
        Absolute paths; a referenced file that does not exist is listed all the same (its
        scan then reports it), matched case-insensitively when only the case differs.

    Raises
    ------
    UnreadableFileError
        The file is not a DICOMDIR, cannot be read, or a record is broken.
    """
    import pydicom

    path = os.path.abspath(os.fspath(path))
    root = Path(path).parent
    try:
        ds = pydicom.dcmread(path)
        sop_class = str(ds.file_meta.get("MediaStorageSOPClassUID", ""))
        if sop_class != _DICOMDIR_SOP_CLASS:
            raise ValueError(f"SOP class {sop_class or 'missing'}, not Media Storage Directory")
        files = []
        for record in ds.DirectoryRecordSequence:
            if record.get("RecordInUseFlag", 0xFFFF) == 0:
                continue  # an inactive record
            file_id = record.get("ReferencedFileID")
            if not file_id:
                continue
            parts = [file_id] if isinstance(file_id, str) else list(file_id)
            parts = [str(p).strip() for p in parts]
            if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
                raise ValueError(f"invalid ReferencedFileID {parts}")
            files.append(_existing_case(root.joinpath(*parts)))
    except Exception as exc:  # a broken DICOMDIR of any kind becomes a reason, never a crash
        raise UnreadableFileError(path, f"broken DICOMDIR ({type(exc).__name__}: {exc})") from None
    return files
