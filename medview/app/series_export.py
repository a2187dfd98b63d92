"""Exporting a catalog series to a volume file (NIfTI, NRRD, MetaImage), in plain Python."""

from __future__ import annotations

import os
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Progress

__all__ = ["EXPORT_FILTERS", "export_series", "export_suffix"]

#: file dialog filters → the suffix added when the name has none
EXPORT_FILTERS: dict[str, str] = {
    "NIfTI, compressed (*.nii.gz)": ".nii.gz",
    "NIfTI (*.nii)": ".nii",
    "NRRD (*.nrrd)": ".nrrd",
    "MetaImage (*.mha)": ".mha",
}


def export_suffix(path: str | os.PathLike, chosen_filter: str = "") -> Path:
    """``path`` with the suffix of ``chosen_filter`` added when it has no known one."""
    from medview.formats.volume_io import volume_suffix

    path = Path(path)
    try:
        volume_suffix(path)
    except ValueError:
        path = path.with_name(path.name + EXPORT_FILTERS.get(chosen_filter, ".nii.gz"))
    return path


def export_series(catalog, series_uid: str, path: str | os.PathLike, *,
                  progress: Progress = NO_PROGRESS) -> Path:
    """Load catalog series ``series_uid`` and write it to ``path`` (format from the suffix).

    The write is atomic (a temporary file renamed into place) and replaces an existing file:
    the file dialog has already asked.

    Raises
    ------
    ValueError
        If the suffix is not .nii, .nii.gz, .nrrd or .mha (header + data pairs such as .nhdr
        and .mhd cannot be written atomically, so they are refused here).
    Cancelled
        If ``progress`` was cancelled (nothing is written then).
    """
    from medview.app import library
    from medview.formats.volume_io import volume_suffix, write_volume

    path = Path(path)
    suffix = volume_suffix(path)
    if suffix not in EXPORT_FILTERS.values():
        raise ValueError(f"{path}: export to {', '.join(EXPORT_FILTERS.values())}; "
                         f"{suffix} is a header + data pair that cannot be written atomically")
    volume = library.load_series(catalog, series_uid, progress=progress.sub(0.0, 0.7))
    progress.check()
    progress.update(0.7, f"writing {path.name}")
    written = write_volume(volume, path, overwrite=True)
    progress.update(1.0, f"wrote {written}")
    return written
