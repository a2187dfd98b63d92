# Over 400 lines on purpose: planning is one pass (group, split stacks, order, spacing).
"""Series assembly: from scanned headers to a planned volume, checked like dcm2niix does.

Why one module: one planning pipeline (split, sort, check, dtype) over the same slices.

The work is split in two so that listing series (``medview series``) needs no pixels:

1. :func:`plan_series` (here) takes the :class:`~medview.dicom.scan.header.InstanceHeader` of one
   series, expands multi-frame files and Siemens mosaics into slices
   (:mod:`medview.dicom.series.slices`), splits the series into stacks (orientation, size, echo,
   temporal position, repeated positions), sorts each stack by position along the slice
   normal and checks its geometry: gantry tilt, missing or duplicate positions, varying
   spacing, varying rescale. Every problem becomes a warning that says what was done about it.
2. :func:`medview.dicom.pixels.read.read_stack` reads the pixels of one planned stack into a
   :class:`~medview.core.volume.Volume` with physical values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medview.dicom.errors import SeriesError
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.series._instance_checks import check_instances
from medview.dicom.series._slice_checks import (
    place_set_aside,
    same_position,
    set_aside_unusable,
    split_far_apart,
    usable_slices,
)
from medview.dicom.series.slices import SliceRef

__all__ = ["SeriesPlan", "StackPlan", "group_by_series", "interpolated_slices", "plan_series"]

#: positions closer than this along the stack (mm) are the same position
DUPLICATE_TOL_MM = 0.01
#: relative tolerance of a uniform slice step
STEP_RTOL = 0.01
#: slice step vectors deviating from the normal by more than this are a gantry tilt
TILT_MIN_DEG = 0.05
#: never resample a stack onto more slices than this
MAX_RESAMPLED_SLICES = 4096


# ---------------------------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------------------------
@dataclass
class StackPlan:
    """One stack of a series, sorted and checked, ready to be read."""

    label: str
    slices: list[SliceRef]
    shape: tuple[int, int, int]  # (z, y, x) of the volume that will be built
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    dtype: np.dtype
    is_rgb: bool = False
    invert: bool = False
    #: stack coordinate (mm along the z column of direction) of each acquired slice
    acquired_t: np.ndarray | None = None
    #: None when slices map 1:1 onto z; else the target coordinates to interpolate
    resample_t: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    has_geometry: bool = True
    #: dtype to fall back to when the optimistic ``dtype`` turns out too small
    fallback_dtype: np.dtype | None = None
    #: ``(z, reason)`` of planes that hold no acquired slice of their own (stand-ins);
    #: they end up in the Volume's ``metadata["made_up_slices"]``
    made_up: list[tuple[int, str]] = field(default_factory=list)
    #: slice index → slices at the same position left out as repeats, read instead when the
    #: kept one cannot be decoded
    alternates: dict[int, list[SliceRef]] = field(default_factory=dict)


@dataclass
class SeriesPlan:
    """All stacks of one series and which one loads by default."""

    series_uid: str
    headers: list[InstanceHeader]
    stacks: list[StackPlan]
    chosen: int
    warnings: list[str] = field(default_factory=list)

    @property
    def stack(self) -> StackPlan:
        return self.stacks[self.chosen]

    def summary(self) -> dict:
        """What ``medview series`` prints about this series."""
        h = self.headers[0]
        st = self.stack
        return {
            "series_uid": self.series_uid,
            "patient_name": h.patient_name,
            "patient_id": h.patient_id,
            "study_date": h.study_date,
            "study_uid": h.study_instance_uid,
            "modality": h.modality,
            "series_number": h.series_number,
            "description": h.series_description,
            "instances": len(self.headers),
            "shape": list(st.shape),
            "spacing": [round(s, 6) for s in st.spacing],
            "stacks": [
                {"label": s.label, "slices": len(s.slices), "shape": list(s.shape)}
                for s in self.stacks
            ],
            "warnings": self.all_warnings(),
        }

    def all_warnings(self) -> list[str]:
        return [*self.warnings, *self.stack.warnings]


def group_by_series(headers: Sequence[InstanceHeader]) -> dict[str, list[InstanceHeader]]:
    """Headers grouped by SeriesInstanceUID, in order of first appearance."""
    groups: dict[str, list[InstanceHeader]] = defaultdict(list)
    for h in headers:
        groups[h.series_instance_uid or f"(no series UID) {h.path}"].append(h)
    return dict(groups)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _describe_files(refs: Sequence[SliceRef], limit: int = 4) -> str:
    names = [_basename(r.header.path) + (f"#{r.frame}" if r.header.number_of_frames > 1 else "")
             for r in refs]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _split_repeats(refs: list[SliceRef], normal: np.ndarray) -> tuple[list[list[SliceRef]], str]:
    """Split slices that repeat positions into phases, or drop duplicates.

    Returns the resulting stacks (sorted by position) and a warning ("" if none).
    """
    t = np.array([float(r.position @ normal) for r in refs])  # type: ignore[operator]
    order = np.argsort(t, kind="stable")
    groups: list[list[SliceRef]] = []
    last = None
    for i in order:
        if last is None or abs(t[i] - last) > DUPLICATE_TOL_MM:
            groups.append([])
            last = t[i]
        groups[-1].append(refs[i])
    counts = {len(g) for g in groups}
    if counts == {1}:
        return [[g[0] for g in groups]], ""
    for g in groups:
        g.sort(key=lambda r: r.order)
    if len(counts) == 1 and len(groups) > 1:
        m = counts.pop()
        phases = [[g[k] for g in groups] for k in range(m)]
        return phases, (
            f"{m} slices at each of {len(groups)} positions: split into {m} stacks "
            "(repeated acquisitions, phases or time points)"
        )
    dropped = [r for g in groups for r in g[1:]]
    kept = [g[0] for g in groups]
    return [kept], (
        f"{len(dropped)} slice(s) repeat the position of another slice ({_describe_files(dropped)})"
        f": kept the first acquired at each position ({len(kept)} of {len(refs)} slices)"
    )


def _plane_name(ref: SliceRef) -> str:
    """axial / coronal / sagittal / oblique from the slice normal (LPS)."""
    if ref.orientation is None:
        return "no geometry"
    n = np.abs(ref.normal)
    axis = int(np.argmax(n))
    if n[axis] < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _stack_label(key: tuple, refs: Sequence[SliceRef]) -> str:
    """A name a reader recognises: echo, time point, plane and image size."""
    echo, te, temporal = key[0], key[1], key[2]
    parts = []
    if echo is not None:
        parts.append(f"echo {echo}")
    elif te is not None:
        parts.append(f"TE {te:g} ms")
    if temporal is not None:
        parts.append(f"time point {temporal}")
    r0 = refs[0]
    return ", ".join(parts) or f"{_plane_name(r0)} {r0.columns}×{r0.rows}"


def _output_dtype(refs: Sequence[SliceRef]) -> tuple[np.dtype, bool]:
    """The dtype of physical values and whether the stack is RGB."""
    from medview.dicom.pixels.decoding import stored_dtype

    h0 = refs[0].header
    if h0.photometric_interpretation.strip().upper() == "PALETTE COLOR":
        return np.dtype(np.uint8), True  # looked up to 8-bit RGB when decoded
    if h0.samples_per_pixel >= 3:
        return np.dtype(np.uint8) if stored_dtype(h0).itemsize == 1 else np.dtype(np.uint16), True
    slopes = {r.slope for r in refs}
    intercepts = {r.intercept for r in refs}
    integral = slopes == {1.0} and all(float(c).is_integer() for c in intercepts)
    if not integral:
        return np.dtype(np.float32), False
    lo, hi = math.inf, -math.inf
    sd_set = set()
    for h in {id(r.header): r.header for r in refs}.values():
        sd = stored_dtype(h)
        sd_set.add(sd)
        bits = h.bits_stored or sd.itemsize * 8
        if h.pixel_representation:
            s_lo, s_hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        else:
            s_lo, s_hi = 0, 2**bits - 1
        lo = min(lo, s_lo + min(intercepts))
        hi = max(hi, s_hi + max(intercepts))
    candidates = []
    if intercepts == {0.0} and len(sd_set) == 1:
        candidates.append(next(iter(sd_set)))
    candidates += [np.dtype(np.int16), np.dtype(np.int32)]
    for dt in candidates:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt, False
    return np.dtype(np.float32), False


def _optimistic_int16(refs: Sequence[SliceRef], dtype: np.dtype) -> bool:
    """Whether 16-bit stored values declared wider than int16 may still fit it.

    Many CTs declare 16 stored bits with intercept −1024 while their values span only
    −1024…3071; reading them as int32 would double the memory. medview reads them as int16,
    checks each slice's actual range and falls back to int32 if one does not fit.
    """
    from medview.dicom.pixels.decoding import stored_dtype

    return dtype == np.int32 and all(stored_dtype(r.header).itemsize == 2 for r in refs[:1])


def _plan_geometryless(label: str, refs: list[SliceRef], warnings: list[str]) -> StackPlan:
    refs = sorted(refs, key=lambda r: (r.header.instance_number or 0, r.order))
    ps = refs[0].pixel_spacing or (1.0, 1.0)
    dtype, rgb = _output_dtype(refs)
    warnings.append(
        "no patient geometry (ImagePositionPatient/ImageOrientationPatient missing): images "
        "stacked by instance number on a 1 mm grid; positions and measurements across slices "
        "are not in patient space"
    )
    return StackPlan(
        label, refs, (len(refs), refs[0].rows, refs[0].columns), (ps[1], ps[0], 1.0),
        (0.0, 0.0, 0.0), np.eye(3), dtype, rgb, refs[0].header.photometric_interpretation
        == "MONOCHROME1", warnings=warnings, has_geometry=False,
    )


def _plan_stack(label: str, refs: list[SliceRef], normal: np.ndarray,
                warnings: list[str]) -> StackPlan:
    """Sort one stack and work out its grid; the refs share orientation and size."""
    r0 = refs[0]
    orient = r0.orientation
    row_dir, col_dir = orient[:3], orient[3:]  # type: ignore[index]
    # the most common spacing, so that one slice with a damaged or missing value does not
    # set the geometry of all the others
    rounded: dict = {}  # a stack repeats one or two spacings: round each once

    def _rounded(ps) -> tuple:
        try:
            hit = rounded.get(ps)
        except TypeError:
            return tuple(np.round(ps, 5))
        if hit is None:
            hit = rounded[ps] = tuple(np.round(ps, 5))
        return hit

    seen = [_rounded(r.pixel_spacing) for r in refs if r.pixel_spacing is not None]
    if not seen:
        warnings.append("PixelSpacing missing: assumed 1 mm")
        ps = (1.0, 1.0)
    else:
        common = max(set(seen), key=seen.count)
        ps = next(r.pixel_spacing for r in refs if r.pixel_spacing is not None
                  and _rounded(r.pixel_spacing) == common)
        if len(set(seen)) > 1 or len(seen) < len(refs):
            odd = [r for r in refs if r.pixel_spacing is None
                   or tuple(np.round(r.pixel_spacing, 5)) != common]
            warnings.append(
                f"PixelSpacing differs or is missing on {len(odd)} of {len(refs)} slices "
                f"({_describe_files(odd)}): used the most common value "
                f"{common[0]:g}\\{common[1]:g} mm")
    dtype, rgb = _output_dtype(refs)
    fallback = None
    if _optimistic_int16(refs, dtype):
        dtype, fallback = np.dtype(np.int16), dtype
    invert = r0.header.photometric_interpretation == "MONOCHROME1"
    if len({(r.slope, r.intercept) for r in refs}) > 1:
        warnings.append(
            "rescale slope/intercept vary between slices: each slice was rescaled with its own "
            f"values into {dtype.name}"
        )
    n = len(refs)
    origin = refs[0].position
    if n == 1:
        dz = r0.header.slice_thickness or r0.header.spacing_between_slices or 1.0
        direction = np.column_stack([row_dir, col_dir, normal])
        return StackPlan(label, refs, (1, r0.rows, r0.columns), (ps[1], ps[0], float(dz)),
                         tuple(origin), direction, dtype, rgb, invert,  # type: ignore[arg-type]
                         acquired_t=np.zeros(1), warnings=warnings,
                         fallback_dtype=fallback)
    positions = np.array([r.position for r in refs])
    step_vec = (positions[-1] - positions[0])
    extent = float(np.linalg.norm(step_vec))
    z_dir = step_vec / extent
    cos_tilt = abs(float(z_dir @ normal))
    tilt_deg = math.degrees(math.acos(min(1.0, cos_tilt)))
    if tilt_deg > TILT_MIN_DEG:
        declared = {r.header.gantry_tilt for r in refs if r.header.gantry_tilt}
        warnings.append(
            f"gantry tilt of {tilt_deg:.2f}° (from the slice positions"
            + (f"; GantryDetectorTilt says {sorted(declared)[0]:g}°" if declared else "")
            + "): slices kept as acquired; the volume's z axis follows the tilted stack "
            "(a sheared grid), so every pixel stays at its header position"
        )
    else:
        z_dir = normal
    # every slice must lie on the line origin + t * z_dir
    along = (positions - origin) @ z_dir
    off_line = np.linalg.norm(positions - origin - np.outer(along, z_dir), axis=1)
    if off_line.max() > 0.05:
        warnings.append(
            f"slice positions leave a straight line by up to {off_line.max():.2f} mm: "
            "the grid follows the first and last slices"
        )
    steps = np.diff(along)
    direction = np.column_stack([row_dir, col_dir, z_dir])
    plan = StackPlan(label, refs, (n, r0.rows, r0.columns), (ps[1], ps[0], 0.0),
                     tuple(origin), direction, dtype, rgb, invert,  # type: ignore[arg-type]
                     acquired_t=along, warnings=warnings, fallback_dtype=fallback)
    s_min, s_max = float(steps.min()), float(steps.max())
    median = float(np.median(steps))
    if s_max - s_min <= max(STEP_RTOL * median, 1e-3):
        plan.spacing = (ps[1], ps[0], extent / (n - 1))
        return plan
    # irregular: missing slices or varying spacing -> resample onto a uniform grid
    # a regular grid with missing slices has every step a whole multiple of its spacing,
    # which may be a fraction of the smallest step (7.5 and 17.5 mm steps on a 2.5 mm grid)
    step = None
    for divisor in (1, 2, 3, 4, 5):
        cand = s_min / divisor
        multiples = steps / cand
        whole = np.abs(multiples - np.round(multiples)) <= STEP_RTOL * np.maximum(1, multiples)
        if whole.all() and extent / cand < MAX_RESAMPLED_SLICES:
            step = cand
            break
    if step is not None:
        missing = int(np.round(multiples).sum() - len(steps))
        where = [f"{along[i]:.2f}–{along[i + 1]:.2f} mm" for i in np.nonzero(multiples > 1.5)[0]]
        what = (f"{missing} slice(s) missing (gaps at {', '.join(where[:4])}"
                + (" …" if len(where) > 4 else "") + " from the first slice)")
    else:
        step = median
        what = f"slice spacing varies from {s_min:.3g} to {s_max:.3g} mm"
    count = int(round(extent / step)) + 1
    if count > MAX_RESAMPLED_SLICES:
        count = MAX_RESAMPLED_SLICES
        step = extent / (count - 1)
    plan.resample_t = np.arange(count) * step
    plan.shape = (count, r0.rows, r0.columns)
    plan.spacing = (ps[1], ps[0], step)
    warnings.append(
        f"{what}: resampled onto a uniform {step:.3g} mm grid ({n} acquired → {count} slices) "
        "by linear interpolation between neighbouring acquired slices"
    )
    return plan


def interpolated_slices(plan: StackPlan) -> tuple[tuple[int, str], ...]:
    """The slices of a resampled stack that no acquired slice lies on: ``(z, reason)``.

    The volume's ``metadata["made_up_slices"]`` holds these (with any stand-ins for
    unreadable files), sorted by z, so every view and export can say which slices medview
    made up. A slice within 1 µm of an acquired one is that slice, copied as is
    (:func:`medview.dicom.pixels.read.read_stack`), and is not listed. Empty when the stack maps
    1:1 onto its acquired slices.
    """
    if plan.resample_t is None or plan.acquired_t is None or len(plan.acquired_t) < 2:
        return ()
    t_acq = np.asarray(plan.acquired_t, dtype=float)
    out = []
    for z, t in enumerate(plan.resample_t):
        j = int(np.clip(np.searchsorted(t_acq, t, side="right") - 1, 0, len(t_acq) - 2))
        if abs(t - t_acq[j]) < 1e-3 or abs(t - t_acq[j + 1]) < 1e-3:
            continue
        out.append((z, f"interpolated between acquired slices at {t_acq[j]:.1f} and "
                       f"{t_acq[j + 1]:.1f} mm"))
    return tuple(out)


def plan_series(headers: Sequence[InstanceHeader]) -> SeriesPlan:
    """Split one series into stacks, sort and check each, and pick the one to load.

    Raises
    ------
    SeriesError
        If no header has pixel data.
    """
    if not headers:
        raise SeriesError("no DICOM images to assemble")
    uid = headers[0].series_instance_uid
    headers, series_warnings = check_instances(headers)  # duplicate SOP UIDs, file notes
    images = [h for h in headers if h.has_pixel_data and h.rows > 0 and h.columns > 0]
    if len(images) < len(headers):
        series_warnings.append(
            f"{len(headers) - len(images)} file(s) without image pixels ignored "
            f"({', '.join(_basename(h.path) for h in headers if h not in images)[:200]})"
        )
    if not images:
        raise SeriesError(f"series {uid}: none of its {len(headers)} files holds image pixels")
    # counts and sizes before anything proportional to them: a file that cannot hold what
    # its header declares is set aside (and becomes a missing slice), not expanded
    images, set_aside = set_aside_unusable(images, series_warnings)
    if not images:
        listed = "; ".join(f"{_basename(h.path)}: {r}" for h, r in set_aside[:5])
        raise SeriesError(f"series {uid}: none of its {len(headers)} files can be read: {listed}")
    slices = usable_slices(images, series_warnings)
    if not slices:
        raise SeriesError(f"series {uid}: no slice with usable geometry")
    groups: dict[tuple, list[SliceRef]] = defaultdict(list)
    for ref in slices:
        geometric = ref.position is not None and ref.orientation is not None
        # a palette slice decodes to RGB: never in one stack with grey slices of the series
        palette = ref.header.photometric_interpretation.strip().upper() == "PALETTE COLOR"
        key = (*ref.key, ref.header.samples_per_pixel, palette, geometric)
        groups[key].append(ref)

    stacks: list[StackPlan] = []
    for key, refs in groups.items():
        label = _stack_label(key, refs)
        if not key[-1]:  # geometric
            stacks.append(_plan_geometryless(label, refs, []))
            continue
        normal = refs[0].normal
        parts, warning = _split_repeats(refs, normal)
        for p, part in enumerate(parts):
            lab = label if len(parts) == 1 else f"{label}, phase {p + 1}"
            blocks, far = split_far_apart(part, normal)
            # slices dropped for repeating a kept slice's position stand by for it
            kept = {id(r) for r in part}
            dropped = [r for r in refs if id(r) not in kept] if len(parts) == 1 else []
            for b, block in enumerate(blocks):
                w = [x for x in (warning, far) if x]
                name = lab if len(blocks) == 1 else f"{lab}, part {b + 1}"
                st = _plan_stack(name, block, normal, w)
                st.alternates = same_position(block, dropped, normal, DUPLICATE_TOL_MM)
                stacks.append(st)
    stacks.sort(key=lambda s: (-len(s.slices), not s.has_geometry))
    for st in stacks:
        st.made_up.extend(place_set_aside(st, set_aside))
    if len(stacks) > 1:
        series_warnings.append(
            f"series holds {len(stacks)} stacks (different orientation, size, echo, time point or "
            "repeated positions): loaded '" + stacks[0].label + f"' ({len(stacks[0].slices)} "
            "slices); others: " + "; ".join(
                f"[{i}] {s.label} ({len(s.slices)} slices)"
                for i, s in enumerate(stacks[1:], start=1)
            )
        )
    return SeriesPlan(uid, list(headers), stacks, 0, series_warnings)
