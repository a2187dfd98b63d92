"""Batches that stream and never lose work: ``medview run CHAIN INPUTS... --batch``.

Inputs are expanded first (a study folder into its series, a catalog query into the series it
finds: :func:`expand_sources`, :func:`catalog_items`), but read one at a time: locally each is
run and written before the next is read; on an endpoint (:func:`stream_remote`) they are read
and submitted as the server has room (its worker slots plus one waiting), and each result is
written — atomically, into a folder that appears complete or not at all — as soon as it is
downloaded, and only then acknowledged (deleted on the server). An interrupted batch keeps
every result already written; ``resume`` skips the inputs whose results are on disk.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BatchItem", "BatchReport", "catalog_items", "deliver_to", "done_marker",
           "expand_sources", "parse_date_range", "stream_remote"]


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch: its output folder name, where it is read from, which series."""

    name: str
    source: str
    series: str | None = None


@dataclass
class BatchReport:
    """What a batch did: the items written, skipped (already on disk) and failed (why)."""

    written: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "series"


def _unique(name: str, used: set[str]) -> str:
    base, k = name, 2
    while name in used:
        name, k = f"{base}-{k}", k + 1
    used.add(name)
    return name


def expand_sources(sources: Sequence[str], *, series: str | None = None) -> list[BatchItem]:
    """One item per series: a volume file or a series UID is one; a folder holding several
    series (a study) is one per series, named ``<folder>-<series number>-<modality>``."""
    from medview.dicom.series.loading import find_series, is_series_uid
    from medview.formats.volume_io import SUFFIXES

    used: set[str] = set()
    items = []
    for src in sources:
        stem = Path(src.rstrip("/")).name or "series"
        for suffix in SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        path = Path(src)
        if series is not None or is_series_uid(src) or not path.is_dir():
            items.append(BatchItem(_unique(_safe(stem), used), src, series))
            continue
        plans, _ = find_series(path)
        if len(plans) <= 1:  # none: the load says why, naming the folder
            items.append(BatchItem(_unique(_safe(stem), used), src))
            continue
        for plan in plans:
            h = plan.headers[0]
            label = f"{stem}-{h.series_number if h.series_number is not None else 'x'}-" \
                    f"{h.modality or 'OT'}"
            items.append(BatchItem(_unique(_safe(label), used), src, plan.series_uid))
    return items


def parse_date_range(text: str) -> tuple[str, str]:
    """``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``YYYYMMDD-`` or ``-YYYYMMDD`` → (first, last).

    Raises
    ------
    ValueError
        Naming the text when it is none of these.
    """
    first, sep, last = text.partition("-")
    if not sep:
        last = first
    for d in (first, last):
        if d and not (len(d) == 8 and d.isdigit()):
            raise ValueError(f"--study-date {text!r}: give YYYYMMDD or YYYYMMDD-YYYYMMDD")
    return first or "00000000", last or "99999999"


def catalog_items(catalog, *, modality: str | None = None, study_date: str | None = None,
                  used: set[str] | None = None) -> list[BatchItem]:
    """The catalog's series of ``modality`` in the ``study_date`` range, one item each
    (read from the catalog by UID), named ``<study date>-<modality>-<number>-<uid tail>``."""
    first, last = parse_date_range(study_date) if study_date else ("", "")
    used = set() if used is None else used
    items = []
    for rec in catalog.series():
        if modality and rec.modality.upper() != modality.upper():
            continue
        if study_date and not (first <= (rec.study_date or "") <= last):
            continue
        label = f"{rec.study_date or 'nodate'}-{rec.modality or 'OT'}-" \
                f"{rec.series_number if rec.series_number is not None else 'x'}-{rec.uid[-6:]}"
        items.append(BatchItem(_unique(_safe(label), used), rec.uid))
    return items


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the complete folder ``tmp`` to ``final`` (an older ``final`` goes only then)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def deliver_to(out: Path | None, dicom_out: Path | None, *, image_suffix: str = ".nii.gz",
               table_format: str = "csv") -> Callable:
    """A function ``deliver(item, inputs, result) -> [paths]`` writing one item's results
    to ``out/<name>/`` and/or (DICOM) ``dicom_out/<name>/``, each folder atomically: written
    beside it under a hidden name, renamed into place when complete. The DICOM folder comes
    first, so a results folder on disk means the item is done."""
    from medview.formats.results import write_results

    def deliver(item: BatchItem, inputs: dict, result) -> list[Path]:
        outputs = result.outputs(exclude=inputs)
        written: list[Path] = []
        for root, write in ((dicom_out, _write_dicom), (out, None)):
            if root is None:
                continue
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f".{item.name}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                if write is not None:
                    write(outputs, tmp, list(inputs.values()))
                else:
                    write_results(outputs, result.main_output, tmp, image_suffix=image_suffix,
                                  table_format=table_format)
                _replace_dir(tmp, root / item.name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            written.append(root / item.name)
        return written

    return deliver


def _write_dicom(outputs, folder: Path, sources) -> None:
    from medview.dicom.export.dispatch import write_dicom_outputs

    write_dicom_outputs(outputs, folder, sources=sources)


def done_marker(item: BatchItem, out: Path | None, dicom_out: Path | None) -> Path:
    """The folder whose presence means ``item`` was delivered (written last)."""
    root = out if out is not None else dicom_out
    assert root is not None
    return root / item.name


def stream_remote(chain, items: Iterable[BatchItem], *, client, load: Callable,
                  deliver: Callable, encoding: str = "auto", slots: int | None = None,
                  on_event: Callable[[str], None] = print, poll_s: float = 0.2,
                  download_dir: Path | None = None) -> BatchReport:
    """Run ``chain`` on every item on the endpoint of ``client``, streaming.

    ``load(item)`` reads an item's inputs (only when there is room on the server: its
    worker slots plus one waiting, or ``slots``); ``deliver(item, inputs, result)`` writes its
    results; the result is deleted on the server only after ``deliver`` returned. A failed
    item (its reading, its job, its writing) is reported and the batch goes on. On Ctrl-C
    the jobs still running are cancelled on the server; what was delivered stays.
    """
    from medview.core.progress import Cancelled
    from medview.remote.errors import RemoteError
    from medview.remote.run import collect_job, submit_job

    info = client.info()
    room = max(1, slots or ((info.slots or 1) + 1))
    pending = list(items)
    pending.reverse()  # pop() from the end keeps the given order
    flying: dict[str, tuple[BatchItem, object]] = {}
    report = BatchReport([], [], [])
    try:
        while pending or flying:
            while pending and len(flying) < room:
                item = pending.pop()
                try:
                    inputs = load(item)
                    job = submit_job(client, chain, inputs, encoding=encoding, info=info)
                except (RemoteError, OSError, ValueError) as exc:
                    report.failed.append((item.name, str(exc)))
                    on_event(f"failed {item.name}: {exc}")
                    if isinstance(exc, RemoteError) and exc.status is None:
                        raise  # the server is gone: the rest would fail the same way
                    continue
                flying[job.status.id] = (item, job)
                on_event(f"submitted {item.name} (job {job.status.id})")
            done = [st.id for st in client.jobs() if st.id in flying and st.done]
            for job_id in done:
                item, job = flying[job_id]
                try:
                    result = collect_job(client, job, download_dir=download_dir,
                                         acknowledge=False)
                    paths = deliver(item, job.inputs, result)
                except (RemoteError, OSError, ValueError, Cancelled) as exc:
                    del flying[job_id]
                    report.failed.append((item.name, str(exc)))
                    on_event(f"failed {item.name}: {exc}")
                    continue
                # on disk: only now may the server delete it
                with contextlib.suppress(RemoteError):
                    client.acknowledge(job_id)
                del flying[job_id]
                report.written.append(item.name)
                for p in paths:
                    on_event(f"wrote {p}")
            if flying and not done:
                time.sleep(poll_s)
    except BaseException:
        for job_id in list(flying):
            with contextlib.suppress(Exception):
                client.cancel(job_id)
        raise
    return report
