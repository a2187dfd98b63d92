"""Reading a planned stack's pixels into a Volume of physical values."""

from __future__ import annotations

import math
import os

import numpy as np

from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume
from medview.dicom.errors import PixelDataError, SeriesError
from medview.dicom.pixels._stand_in import (
    SLICE_ERRORS,
    fill_stand_ins,
    resample_around,
    stand_in_warnings,
)
from medview.dicom.pixels.slice_reader import DtypeTooSmall, SliceReader, failure_reason
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.series.assemble import StackPlan, interpolated_slices

__all__ = ["allocate_volume", "read_stack", "series_metadata", "stack_volume"]

#: share of the machine's physical memory one volume may take
MAX_MEMORY_SHARE = 0.75


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows: no sysconf
        return None


def allocate_volume(shape: tuple[int, ...], dtype, *, zeros: bool = False) -> np.ndarray:
    """An array for a volume of ``shape``, refused with a clear error when it cannot fit.

    The shape comes from headers, which may lie: a size beyond :data:`MAX_MEMORY_SHARE` of
    the physical memory, or one the allocator refuses, is a :class:`SeriesError` that says
    how big the volume would be, never an uncaught MemoryError.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    total = _physical_memory()
    if total is not None and nbytes > MAX_MEMORY_SHARE * total:
        raise SeriesError(
            f"the volume would take {nbytes / 2**30:,.1f} GiB ({' × '.join(map(str, shape))} "
            f"{dtype.name}), more than {MAX_MEMORY_SHARE:.0%} of this machine's "
            f"{total / 2**30:,.1f} GiB of memory: the headers claim more than can be loaded")
    try:
        return np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)
    except (MemoryError, ValueError) as exc:
        raise SeriesError(
            f"cannot allocate the volume ({' × '.join(map(str, shape))} {dtype.name}, "
            f"{nbytes / 2**30:,.1f} GiB): {exc or 'out of memory'}") from None


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
#: slices per task when reading with several threads
_READ_CHUNK = 16
#: reading threads: two already saturate the page-fault and copy rate of these machines
_READ_THREADS = 2


def _read_slices(plan: StackPlan, out: np.ndarray, progress: Progress,
                 failed: dict[int, str]) -> None:
    """Fill ``out[k]`` with the physical values of ``plan.slices[k]``.

    A slice that cannot be read is recorded in ``failed`` (index → reason) and left as is;
    the caller stands in for it.

    Single-frame files are read by two threads, a chunk of slices each at a time (reading is
    bound by copying and page faults, which two threads overlap); multi-frame files and
    mosaics are read in order, decoding each file once.

    Raises
    ------
    DtypeTooSmall
        If ``out``'s dtype was chosen optimistically and a slice does not fit it.
    """
    n = len(plan.slices)
    single = all(r.header.number_of_frames <= 1 and not r.header.is_mosaic
                 for r in plan.slices)
    reader = SliceReader(plan)  # its file cache is used only when not single (one thread)
    starts = list(range(0, n, _READ_CHUNK))

    def read_chunk(start: int) -> int:
        progress.check()
        stop = min(n, start + _READ_CHUNK)
        for k in range(start, stop):
            try:
                reader.read_into(k, out)
            except SLICE_ERRORS as exc:
                failed[k] = failure_reason(exc, plan.slices[k].header.path)
        return stop - start

    done = 0
    if single and n >= 2 * _READ_CHUNK:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(_READ_THREADS) as pool:
            futures = [pool.submit(read_chunk, s) for s in starts]
            try:
                for f in futures:
                    done += f.result()
                    progress.update(done / n, f"read {done} of {n} slices")
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return
    for s in starts:
        done += read_chunk(s)
        progress.update(done / n, f"read {done} of {n} slices")


def read_stack(plan: StackPlan, *, metadata: dict | None = None,
               progress: Progress = NO_PROGRESS) -> Volume:
    """Read the pixels of a planned stack into a Volume of physical values.

    A slice whose file cannot be decoded is a missing slice: it is interpolated from its
    nearest readable neighbours (copied at the ends of the stack), named with its reason in
    the warnings, and listed in ``metadata["made_up_slices"]``.

    Raises
    ------
    medview.core.progress.Cancelled
        If ``progress`` was cancelled.
    PixelDataError
        If no slice of the stack can be decoded (the message lists the reasons).
    SeriesError
        If the volume the headers describe cannot fit in memory.
    """
    n = len(plan.slices)
    r0 = plan.slices[0]
    shape = (n, r0.rows, r0.columns) + ((3,) if plan.is_rgb else ())
    failed: dict[int, str] = {}
    if plan.resample_t is None:
        out = allocate_volume(shape, plan.dtype)
        try:
            _read_slices(plan, out, progress, failed)
        except DtypeTooSmall:
            if plan.fallback_dtype is None:
                raise
            out = allocate_volume(shape, plan.fallback_dtype)
            failed.clear()
            _read_slices(plan, out, progress, failed)
        _all_failed(plan, failed)
        t = plan.acquired_t if plan.acquired_t is not None else np.arange(n, dtype=float)
        made_up = fill_stand_ins(plan, out, failed, t)
    else:
        acquired = allocate_volume(shape, np.float32)
        _read_slices(plan, acquired, progress.sub(0.0, 0.9), failed)
        _all_failed(plan, failed)
        ok = np.ones(n, dtype=bool)
        ok[list(failed)] = False
        dtype = plan.dtype
        if dtype.kind in "iu" and plan.fallback_dtype is not None and acquired.size and any(
            acquired[k].min() < np.iinfo(dtype).min or acquired[k].max() > np.iinfo(dtype).max
            for k in np.flatnonzero(ok)
        ):
            dtype = plan.fallback_dtype
        out = allocate_volume((len(plan.resample_t), *shape[1:]), dtype)
        made_up = resample_around(acquired, plan.acquired_t, plan.resample_t, ok, out, failed,
                                  plan)
    progress.update(1.0, "done")
    notes = stand_in_warnings(plan, failed)
    return stack_volume(plan, out, metadata, made_up=made_up, warnings=notes)


def _all_failed(plan: StackPlan, failed: dict[int, str]) -> None:
    if len(failed) == len(plan.slices):
        listed = "; ".join(f"{plan.slices[k].header.path}: {r}"
                           for k, r in sorted(failed.items())[:5])
        raise PixelDataError(
            f"none of the {len(failed)} slice(s) of the stack could be read: {listed}")


def stack_volume(plan: StackPlan, array: np.ndarray, metadata: dict | None = None, *,
                 made_up=(), warnings=()) -> Volume:
    """The Volume of ``plan`` around ``array`` (not copied): geometry, metadata, warnings.

    ``metadata["made_up_slices"]`` is the sorted tuple of ``(z, reason)`` of the planes that
    hold no acquired slice of their own: entries already there, the plan's stand-ins
    (``plan.made_up``) and ``made_up`` (slices that failed to decode), one per plane.
    """
    out = array
    meta = dict(metadata or {})
    meta["source_files"] = tuple(r.header.path for r in plan.slices)
    meta["source_frames"] = tuple(r.frame for r in plan.slices)
    meta["source_sop_instance_uids"] = tuple(r.header.sop_instance_uid for r in plan.slices)
    if plan.resample_t is not None and plan.acquired_t is not None:
        meta["acquired_positions_mm"] = tuple(float(t) for t in plan.acquired_t)
        meta["made_up_slices"] = interpolated_slices(plan)
    _merge_made_up(meta, (*plan.made_up, *made_up))
    meta["stack"] = plan.label
    return Volume(out, plan.spacing, plan.origin, plan.direction, meta,
                  (*plan.warnings, *warnings))


def _merge_made_up(meta: dict, entries) -> None:
    """Add stand-ins to ``meta["made_up_slices"]``: one ``(z, reason)`` per plane, sorted by
    z; a stand-in's reason ("unreadable file NAME: …") replaces another entry of its plane
    (an interpolation is what a stand-in is made of, the file is the news)."""
    if not entries:
        return
    merged = {int(z): str(r) for z, r in meta.get("made_up_slices", ())}
    merged.update((int(z), str(r)) for z, r in entries)
    meta["made_up_slices"] = tuple(sorted(merged.items()))


def series_metadata(h: InstanceHeader) -> dict:
    """Read-only facts about a series that travel with its Volume."""
    units = ""
    if h.rescale_type:
        units = h.rescale_type
    elif h.modality == "CT":
        units = "HU"
    return {
        "Modality": h.modality,
        "Units": units,
        "PatientName": h.patient_name,
        "PatientID": h.patient_id,
        "PatientBirthDate": h.patient_birth_date,
        "PatientSex": h.patient_sex,
        "StudyInstanceUID": h.study_instance_uid,
        "StudyDate": h.study_date,
        "StudyTime": h.study_time,
        "StudyDescription": h.study_description,
        "AccessionNumber": h.accession_number,
        "SeriesInstanceUID": h.series_instance_uid,
        "SeriesNumber": h.series_number,
        "SeriesDescription": h.series_description,
        "FrameOfReferenceUID": h.frame_of_reference_uid,
        "Manufacturer": h.manufacturer,
        "BodyPartExamined": h.body_part,
        "PhotometricInterpretation": h.photometric_interpretation,
        "WindowCenter": h.window_center,
        "WindowWidth": h.window_width,
        "SOPClassUID": h.sop_class_uid,
    }
