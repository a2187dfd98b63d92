"""Write what a chain produced: volumes and label maps as images, tables as CSV or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medview.atomic import write_bytes_atomic, write_text_atomic
from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume
from medview.formats.volume_io import SUFFIXES, write_volume

__all__ = ["read_segments_json", "segments_sidecar", "write_results"]


def _segments_json(labels: LabelMap) -> str:
    return json.dumps([{"number": s.number, "name": s.name, "color": list(s.color),
                        "category": list(s.category), "type": list(s.type)}
                       for s in labels.segments], indent=2)


def segments_sidecar(path: str | os.PathLike) -> Path:
    """The ``.segments.json`` beside a label-map file (``labels.nii.gz`` →
    ``labels.segments.json``), as :func:`write_results` and the window's Export write it."""
    from medview.formats.volume_io import volume_suffix

    path = Path(path)
    return path.with_name(path.name[: -len(volume_suffix(path))] + ".segments.json")


def read_segments_json(path: str | os.PathLike) -> tuple:
    """The segments (numbers, names, colours, codes) of a ``.segments.json`` file.

    Raises
    ------
    ValueError
        If the file is not such a list (names the file and what is wrong).
    """
    from medview.core.labelmap import Segment, default_segments

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, list):
            raise TypeError("expected a list of segments")
        out = []
        for item in raw:
            default = default_segments([int(item["number"])])[0]
            colour = tuple(int(c) for c in item.get("color", default.color))
            if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
                raise ValueError(f"colour {colour} is not three values 0–255")
            out.append(Segment(int(item["number"]), str(item.get("name", default.name)),
                               colour,
                               tuple(str(c) for c in item.get("category", default.category)),
                               tuple(str(c) for c in item.get("type", default.type))))
    except (OSError, json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a segments file ({exc})") from None
    return tuple(out)


def write_results(values: Mapping[str, Any], main: str, out: str | os.PathLike, *,
                  image_suffix: str = ".nii.gz", table_format: str = "csv",
                  overwrite: bool = False) -> list[Path]:
    """Write a chain's results.

    If ``out`` ends in an image suffix, the main result goes there and every other result
    beside it as ``<stem>.<name><suffix>``; otherwise ``out`` is a folder holding
    ``<name><suffix>`` per result. Label maps also get ``.segments.json``; tables are CSV or
    JSON; objects with a ``save(path)`` method (trained models) are saved as ``.model``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileExistsError
        If a target exists and ``overwrite`` is False (nothing is written then).
    """
    out = Path(out)
    name_l = out.name.lower()
    single = next((s for s in SUFFIXES if name_l.endswith(s)), None)
    if single:
        folder, stem = out.parent, out.name[: -len(single)]
        image_suffix = single
    else:
        folder, stem = out, ""
    plan: list[tuple[Path, Any]] = []
    for name, value in values.items():
        base = name if not stem else (stem if name == main else f"{stem}.{name}")
        if isinstance(value, Volume):
            plan.append((folder / f"{base}{image_suffix}", value))
            if isinstance(value, LabelMap):
                plan.append((folder / f"{base}.segments.json", _segments_json(value)))
        elif isinstance(value, Table):
            plan.append((folder / f"{base}.{table_format}",
                         value.to_csv() if table_format == "csv" else value.to_json()))
        elif isinstance(value, bytes | bytearray):
            plan.append((folder / f"{base}.bin", bytes(value)))
        elif hasattr(value, "save"):
            name_model = base if base.endswith(".model") else f"{base}.model"
            plan.append((folder / name_model, value))
    if not overwrite:
        existing = [str(p) for p, _ in plan if p.exists()]
        if existing:
            raise FileExistsError(f"would overwrite {', '.join(existing)}; use --force")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path, value in plan:
        if isinstance(value, Volume):
            write_volume(value, path, overwrite=True)
        elif isinstance(value, str):
            write_text_atomic(path, value)
        elif isinstance(value, bytes):
            write_bytes_atomic(path, value)
        else:
            value.save(path)
        written.append(path)
    return written
