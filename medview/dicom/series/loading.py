"""``medview.load``: a folder, files, a DICOMDIR or a catalog series UID → a Volume."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.dicom.errors import AmbiguousSourceError, PixelDataError, SeriesError
from medview.dicom.pixels.read import read_stack, series_metadata
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.series.assemble import SeriesPlan, group_by_series, plan_series

__all__ = ["find_series", "headers_from_source", "is_series_uid", "load", "plan_load",
           "select_series", "with_load_warnings"]

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)+$")

Source = str | os.PathLike | Iterable[str | os.PathLike]


def is_series_uid(source) -> bool:
    """Whether ``source`` names a series UID rather than a file or folder."""
    return isinstance(source, str) and bool(_UID_RE.match(source)) and not os.path.exists(source)


def headers_from_source(
    source: Source, *, catalog=None, progress: Progress = NO_PROGRESS
) -> tuple[list[InstanceHeader], list[tuple[str, str]]]:
    """Scanned headers of every file in ``source`` and the files that could not be used.

    ``source`` is a folder (searched recursively), a DICOM file, a DICOMDIR, a list of
    files, or a SeriesInstanceUID held in ``catalog`` (default: the user's catalog).
    """
    if is_series_uid(source):
        from medview.dicom.catalog.db import Catalog

        cat = catalog if catalog is not None else Catalog()
        headers = cat.instances(source)
        if not headers:
            raise SeriesError(
                f"series {source} is not in the catalog {cat.path}; import its folder with "
                "`medview index FOLDER` or load the folder directly"
            )
        return headers, []
    from medview.dicom.scan.scanner import scan_paths

    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        paths = [path]
        skipped: list[tuple[str, str]] = []
        if path.is_file() and path.name.upper() == "DICOMDIR":
            from medview.dicom.scan.dicomdir import read_dicomdir

            paths, skipped = read_dicomdir(path)
    else:
        paths = [Path(p) for p in source]
        skipped = []
        if not paths:
            raise SeriesError("no files given")
    headers, errors = scan_paths(paths, progress=progress)
    return headers, skipped + errors


def find_series(
    source: Source, *, catalog=None, progress: Progress = NO_PROGRESS
) -> tuple[list[SeriesPlan], list[tuple[str, str]]]:
    """Every series in ``source``, planned (no pixels read), and the unreadable files."""
    headers, errors = headers_from_source(source, catalog=catalog, progress=progress)
    plans = []
    for uid, hs in group_by_series(headers).items():
        try:
            plans.append(plan_series(hs))
        except SeriesError as exc:
            errors.extend((h.path, str(exc)) for h in hs)
            del uid
    return plans, errors


def select_series(plans: list[SeriesPlan], series: str | int | None, source) -> SeriesPlan:
    """The plan named by ``series`` (UID, UID prefix or series number), or the only one."""
    if not plans:
        raise SeriesError(f"{source}: no DICOM image series found")
    if series is None:
        if len(plans) == 1:
            return plans[0]
        choices = [p.summary() for p in plans]
        listing = "\n".join(
            f"  {c['series_uid']}  #{c['series_number']}  {c['modality']}  "
            f"{c['description']!r}  {c['instances']} files" for c in choices
        )
        raise AmbiguousSourceError(
            f"{source} holds {len(plans)} series; name one with series=UID "
            f"(--series on the command line):\n{listing}",
            choices,
        )
    key = str(series)
    exact = [p for p in plans if p.series_uid == key]
    if not exact:
        exact = [p for p in plans if p.series_uid.startswith(key)] if "." in key else []
    if not exact and key.isdigit():
        exact = [p for p in plans if p.headers[0].series_number == int(key)]
    if len(exact) != 1:
        known = ", ".join(f"{p.series_uid} (#{p.headers[0].series_number})" for p in plans)
        what = "matches several series" if exact else "matches no series"
        raise SeriesError(f"{source}: '{key}' {what}; the series are: {known}")
    return exact[0]


def load(
    source: Source,
    *,
    series: str | int | None = None,
    stack: int | None = None,
    catalog=None,
    progress: Progress | None = None,
) -> Volume:
    """Load one DICOM series as a Volume of physical values in patient coordinates.

    Parameters
    ----------
    source : path, list of paths, or str
        A folder (searched recursively), a DICOM file, a DICOMDIR, a list of files, or a
        SeriesInstanceUID held in the catalog.
    series : str or int, optional
        Which series when ``source`` holds several: its UID, a UID prefix, or its number.
    stack : int, optional
        Which stack when the series holds several (echoes, phases, orientations); by default
        the largest. ``medview series PATH`` lists them.
    catalog : Catalog, optional
        The catalog to look UIDs up in; default the user's.
    progress : Progress, optional
        Progress and cancellation.

    Returns
    -------
    Volume
        ``array`` [z, y, x] (or [z, y, x, 3] for colour), LPS geometry, metadata and the
        warnings met while assembling the series.

    Raises
    ------
    AmbiguousSourceError
        If ``source`` holds several series and ``series`` is None (lists them).
    SeriesError
        If no usable series is found, or the named series or stack does not exist.
    FileNotFoundError
        If ``source`` does not exist.
    """
    progress = progress or NO_PROGRESS
    plan, extra = plan_load(source, series=series, stack=stack, catalog=catalog,
                            progress=progress.sub(0.0, 0.2))
    vol = _read_chosen_or_next(plan, stack, extra, progress.sub(0.2, 1.0))
    return with_load_warnings(vol, plan, extra)


def _read_chosen_or_next(plan: SeriesPlan, stack: int | None, extra: list[str],
                         progress: Progress) -> Volume:
    """Read the chosen stack; if none of its slices can be decoded and the caller did not
    ask for that stack, the next stack that can be read (said in ``extra``)."""
    tried = []
    order = [plan.chosen] + ([i for i in range(len(plan.stacks)) if i != plan.chosen]
                             if stack is None else [])
    for i in order:
        st = plan.stacks[i]
        try:
            vol = read_stack(st, metadata=series_metadata(st.slices[0].header),
                             progress=progress)
        except PixelDataError as exc:
            if not str(exc).startswith("none of the"):
                raise
            tried.append((st.label, exc))
            continue
        if tried:
            plan.chosen = i
            extra.extend(f"stack '{label}' could not be read ({exc}): loaded stack [{i}] "
                         f"'{st.label}' instead" for label, exc in tried)
        return vol
    raise tried[0][1]


def plan_load(
    source: Source,
    *,
    series: str | int | None = None,
    stack: int | None = None,
    catalog=None,
    progress: Progress = NO_PROGRESS,
) -> tuple[SeriesPlan, list[str]]:
    """What :func:`load` does before reading pixels: find, select and plan the series.

    Returns the plan (its chosen stack set) and the warnings about skipped files that
    :func:`with_load_warnings` adds to the Volume. Raises as :func:`load`.
    """
    plans, errors = find_series(source, catalog=catalog, progress=progress)
    if not plans and errors:
        shown = "\n".join(f"  {p}: {r}" for p, r in errors[:10])
        raise SeriesError(f"{source}: no readable DICOM image; {len(errors)} file(s) failed:\n"
                          f"{shown}")
    plan = select_series(plans, series, source)
    if stack is not None:
        if not 0 <= stack < len(plan.stacks):
            raise SeriesError(
                f"stack {stack} does not exist: series {plan.series_uid} has "
                f"{len(plan.stacks)} stack(s)"
            )
        plan.chosen = stack
    extra: list[str] = []
    mine = {h.path for h in plan.headers}
    if errors:
        skipped = [(p, r) for p, r in errors if p not in mine]
        if skipped and len(plans) == 1:
            extra.append(
                f"{len(skipped)} file(s) could not be read and were skipped: "
                + "; ".join(f"{p}: {r}" for p, r in skipped[:5])
            )
    return plan, extra


def with_load_warnings(vol: Volume, plan: SeriesPlan, extra: list[str]) -> Volume:
    """``vol`` (same array, not copied) with the series' and the skipped files' warnings."""
    warnings = [*plan.warnings, *vol.warnings, *extra]
    return Volume(vol.array, vol.spacing, vol.origin, vol.direction, vol.metadata,
                  tuple(warnings))
