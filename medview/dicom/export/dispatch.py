"""One entry point for DICOM exports, used by ``medview run --dicom-out``, ``medview export``
and the GUI's Export menu.

- :class:`~medview.core.labelmap.LabelMap` → DICOM SEG (:func:`~medview.dicom.export.seg.write_seg`)
- RGB :class:`~medview.core.volume.Volume` → Multi-frame True Color Secondary Capture
  (:func:`~medview.dicom.export.secondary_capture.write_rgb_capture`)
- scalar Volume → a derived CT/MR series
  (:func:`~medview.dicom.export.series.write_derived_series`)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from medview.atomic import atomic_folder
from medview.core.labelmap import LabelMap
from medview.core.volume import Volume
from medview.dicom.export._common import ExportError

__all__ = ["ExportError", "ExportKind", "export_dicom", "export_kind", "pick_source",
           "write_dicom_outputs"]

ExportKind = Literal["seg", "series", "capture"]


def export_kind(value: Volume) -> ExportKind:
    """What a value becomes in DICOM: a SEG, a derived series or a Secondary Capture."""
    if isinstance(value, LabelMap):
        return "seg"
    if value.is_rgb:
        return "capture"
    return "series"


def has_source(volume: Volume) -> bool:
    """Whether ``volume`` knows the DICOM instances it was loaded from."""
    return bool(volume.metadata.get("source_files"))


def pick_source(value: Volume, sources: Sequence[Volume]) -> Volume | None:
    """The source volume to reference for ``value``: one on the same grid, else the first."""
    dicom = [s for s in sources if has_source(s)]
    for s in dicom:
        if s.shape == value.shape and s.same_grid(value, atol=1e-3):
            return s
    return dicom[0] if dicom else None


def export_dicom(value: Volume, out: str | os.PathLike, *, source: Volume | None = None,
                 kind: ExportKind | None = None, overwrite: bool = False,
                 series_description: str | None = None,
                 seg_encoding: str | None = None) -> list[Path]:
    """Write ``value`` as DICOM: a SEG file, a derived series folder or a Secondary Capture.

    Parameters
    ----------
    value : Volume or LabelMap
    out : path
        A file for a SEG or a Secondary Capture, a folder for a derived series.
    source : Volume, optional
        The volume loaded from the source series; default ``value`` itself.
    kind : {"seg", "series", "capture"}, optional
        Default from the value (:func:`export_kind`).
    overwrite : bool
        Replace an existing target.
    series_description : str, optional
        Of the new series.
    seg_encoding : {"labelmap", "binary"}, optional
        A SEG's encoding (:func:`medview.dicom.export.seg.write_seg`); default BINARY up to
        16 segments, LABELMAP above (:func:`medview.dicom.export.seg.choose_encoding`).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ExportError
        If the value cannot be written as asked (see the three writers).
    FileExistsError
        If ``out`` exists and ``overwrite`` is False.
    """
    kind = kind or export_kind(value)
    extra = {"series_description": series_description} if series_description else {}
    if kind == "seg":
        from medview.dicom.export.seg import write_seg

        if not isinstance(value, LabelMap):
            raise ExportError(f"SEG {out}: expected a label map, got {type(value).__name__}")
        # a series resampled at load (missing slices, varying spacing): the SEG goes onto the
        # acquired slices, each taking the nearest grid slice
        resampled = "acquired_positions_mm" in (source if source is not None else value).metadata
        return [write_seg(value, out, source=source, overwrite=overwrite,
                          nearest_slices=resampled, encoding=seg_encoding, **extra)]
    if kind == "capture":
        from medview.dicom.export.secondary_capture import write_rgb_capture

        return [write_rgb_capture(value, out, source=source, overwrite=overwrite, **extra)]
    if kind == "series":
        from medview.dicom.export.series import write_derived_series

        return write_derived_series(value, out, source=source, overwrite=overwrite, **extra)
    raise ValueError(f"kind: expected 'seg', 'series' or 'capture', got {kind!r}")


def dicom_output_name(name: str, value: Volume) -> str:
    """File or folder name of a chain result in a DICOM output folder."""
    kind = export_kind(value)
    return {"seg": f"{name}.seg.dcm", "capture": f"{name}.sc.dcm", "series": name}[kind]


def write_dicom_outputs(values: Mapping[str, Any], folder: str | os.PathLike, *,
                        sources: Sequence[Volume], overwrite: bool = False) -> list[Path]:
    """Write every volume and label map of a chain's results as DICOM into a new folder.

    Label maps become ``<name>.seg.dcm``, RGB volumes ``<name>.sc.dcm``, other volumes a
    derived series in ``<name>/``; tables and models are skipped (they have no DICOM form
    here). The folder appears complete or not at all.

    Parameters
    ----------
    values : mapping
        Result name → value.
    folder : path
        The folder to create.
    sources : sequence of Volume
        The chain's inputs; each result references the DICOM input on its grid, else the
        first DICOM input.
    overwrite : bool
        Replace an existing folder.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ExportError
        If no input came from DICOM, or a result cannot be written (e.g. a label map that is
        not on the source grid); nothing is written then.
    FileExistsError
        If ``folder`` exists and ``overwrite`` is False.
    """
    folder = Path(folder)
    if not any(has_source(s) for s in sources):
        raise ExportError(f"DICOM outputs {folder}: no input was loaded from DICOM, so there "
                          "is no series to reference; give a DICOM input or export NIfTI")
    volumes = {n: v for n, v in values.items() if isinstance(v, Volume)}
    written: list[Path] = []
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        for name, value in volumes.items():
            source = pick_source(value, sources)
            target = tmp / dicom_output_name(name, value)
            try:
                files = export_dicom(value, target, source=source)
            except ExportError as exc:  # name the folder the user asked for, not the temp one
                raise ExportError(str(exc).replace(str(tmp), str(folder))) from exc
            written.extend(folder / p.relative_to(tmp) for p in files)
    return written
