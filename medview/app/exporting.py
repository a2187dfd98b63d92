"""Exporting what the reader takes away, without Qt: the items and the writers behind
File ▸ Export (:mod:`medview.gui.exports` is the dialog).

Every file is written atomically (temporary name, then rename) and never over an existing
one unless asked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = ["FORMATS", "Exportable", "export_item"]

#: What each kind of item can become: (format id, label, suffix or "" for a folder).
FORMATS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "labels": (("seg", "DICOM SEG", ".dcm"), ("nifti", "NIfTI label map", ".nii.gz"),
               ("nrrd", "NRRD label map", ".nrrd")),
    "volume": (("series", "DICOM series (new derived series)", ""),
               ("nifti", "NIfTI", ".nii.gz"), ("nrrd", "NRRD", ".nrrd"), ("mha", "MHA", ".mha")),
    "rgb": (("capture", "DICOM Secondary Capture (true colour, multi-frame)", ".dcm"),),
    "table": (("csv", "CSV", ".csv"), ("json", "JSON", ".json")),
    "view": (("png", "PNG with overlays", ".png"), ("png-plain", "PNG without overlays",
                                                    ".png")),
    # an SR or KOS saved with the study (annotations, key images): a copy of the file
    "document": (("dicom", "DICOM file (as saved with the study)", ".dcm"),),
}


@dataclass
class Exportable:
    """Something the window can export now.

    ``value`` is the object, or a callable making it (e.g. the fused RGB volume is blended
    only when exported); ``source`` is the volume loaded from the DICOM series it derives
    from (for DICOM exports).
    """

    name: str
    kind: str
    value: Any
    source: Volume | None = None

    def resolve(self) -> Any:
        return self.value() if callable(self.value) else self.value

    @property
    def formats(self) -> tuple[tuple[str, str, str], ...]:
        return FORMATS[self.kind]


def export_item(item: Exportable, fmt: str, path: str | os.PathLike, *,
                overwrite: bool = False, save_view: Callable | None = None) -> list[Path]:
    """Write ``item`` in format ``fmt`` to ``path``; returns the files written.

    Raises
    ------
    FileExistsError
        If the target exists and ``overwrite`` is False (nothing is written).
    ValueError
        If the item cannot be written in that format (e.g. DICOM without a source series).
    """
    path = Path(path)
    if fmt not in {f[0] for f in item.formats}:
        raise ValueError(f"{item.name} cannot be exported as {fmt!r}")
    if item.kind == "view":
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
        return [save_view(path, overlays=fmt == "png")]
    value = item.resolve()
    if item.kind == "document":
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
        from medview.atomic import atomic_file

        with atomic_file(path, overwrite=overwrite, suffix=".dcm") as tmp:
            Path(tmp).write_bytes(Path(value).read_bytes())
        return [path]
    if item.kind == "table":
        if not isinstance(value, Table):
            raise ValueError(f"{item.name}: expected a table")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
        from medview.atomic import write_text_atomic

        write_text_atomic(path, value.to_csv() if fmt == "csv" else value.to_json())
        return [path]
    if not isinstance(value, Volume):
        raise ValueError(f"{item.name}: nothing to export")
    if fmt in ("seg", "series", "capture"):
        from medview.dicom.export.dispatch import export_dicom

        return list(export_dicom(value, path, source=item.source, kind=fmt,
                                 overwrite=overwrite))
    from medview.formats.volume_io import volume_suffix, write_volume

    side = None
    if isinstance(value, LabelMap):
        side = path.with_name(path.name[: -len(volume_suffix(path))] + ".segments.json")
        if side.exists() and not overwrite:
            raise FileExistsError(f"{side} exists; choose another name or allow overwriting")
    written = [write_volume(value, path, overwrite=overwrite)]
    if side is not None:
        from medview.atomic import write_text_atomic
        from medview.formats.results import _segments_json

        write_text_atomic(side, _segments_json(value))
        written.append(side)
    return written
