"""Reading one slice of a planned stack: the one reader behind load, progressive open and
thumbnails.

:class:`SliceReader` reads slice ``k`` of a :class:`~medview.dicom.series.assemble.StackPlan` as
physical values (Rescale Slope/Intercept applied, MONOCHROME1 mirrored so that higher is
brighter, colour as RGB) with the checks of :mod:`medview.dicom.pixels.decoding` (declared sizes
against the file before anything is allocated; compressed syntaxes decoded by the installed
plugins, GDCM in its sandbox process). A slice whose file cannot be decoded is replaced by a
repeat at the same position when the plan kept one (``plan.alternates``), with a warning.

Its users, so that the same files give the same values whichever way a series is opened:

- :func:`medview.dicom.pixels.read.read_stack` (``medview.load``): every slice, two threads;
- :class:`medview.dicom.series.progressive.ProgressiveLoad`: slice by slice from the first shown;
- the series thumbnails: one slice (:meth:`SliceReader.read`).
"""

from __future__ import annotations

import numpy as np

from medview.dicom.errors import PixelDataError
from medview.dicom.pixels._stand_in import SLICE_ERRORS
from medview.dicom.scan.header import InstanceHeader
from medview.dicom.series.assemble import StackPlan
from medview.dicom.series.slices import SliceRef

__all__ = ["DtypeTooSmall", "SliceReader", "failure_reason", "reads_slice_by_slice"]


class DtypeTooSmall(Exception):
    """A slice's values do not fit the optimistic output dtype (``plan.dtype``): read again
    into ``plan.fallback_dtype``."""


def failure_reason(exc: BaseException, path: str) -> str:
    """Why a slice of file ``path`` could not be read, without the path repeated."""
    return str(exc).removeprefix(f"{path}: ") or type(exc).__name__


def reads_slice_by_slice(stack: StackPlan) -> bool:
    """True when each slice of ``stack`` can be read on its own and no resampling is needed:
    single-frame files, and frames of uncompressed multi-frame files (read at their offset);
    not mosaics or compressed multi-frame files, which are decoded whole."""
    from medview.dicom.pixels.decoding import reads_frames_at_offset

    return stack.resample_t is None and all(
        not r.header.is_mosaic
        and (r.header.number_of_frames <= 1 or reads_frames_at_offset(r.header))
        for r in stack.slices)


class _FileCache:
    """Decoded stored values of the last multi-slice file (multi-frame or mosaic)."""

    def __init__(self):
        self.path: str | None = None
        self.frames: np.ndarray | None = None
        self.error: Exception | None = None

    def get(self, ref: SliceRef) -> np.ndarray:
        from medview.dicom.pixels.decoding import decode

        h = ref.header
        if self.path != h.path:
            self.path, self.frames, self.error = h.path, None, None
            try:
                frames = decode(h)
                if h.is_mosaic:
                    from medview.dicom.series.mosaic import untile

                    frames = untile(frames[0], int(h.mosaic_count))  # type: ignore[arg-type]
            except SLICE_ERRORS as exc:
                self.error = exc  # the file's other frames fail alike: decode it once
                raise
            self.frames = frames
        if self.error is not None:
            raise self.error
        return self.frames[ref.frame]  # type: ignore[index]


class _FrameAtOffset:
    """Reads just the one frame a slice needs, at its offset in an uncompressed multi-frame
    file (the values are those of decoding the whole file: masking and sign extension work
    value by value). Holds nothing: safe to share between threads."""

    def get(self, ref: SliceRef) -> np.ndarray:
        from medview.dicom.pixels.decoding import decode

        return decode(ref.header, range(ref.frame, ref.frame + 1))[0]


def _stored_range(h: InstanceHeader) -> tuple[int, int]:
    from medview.dicom.pixels.decoding import stored_dtype

    bits = h.bits_stored or stored_dtype(h).itemsize * 8
    if h.pixel_representation:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


class SliceReader:
    """Reads the slices of one planned stack, one at a time, as physical values.

    Parameters
    ----------
    stack : StackPlan
        The stack. A slice read from an alternate file replaces its entry in
        ``stack.slices`` and adds a warning to ``stack.warnings``.
    whole_files : bool
        True: a multi-frame file or mosaic is decoded whole once and its frames are taken
        from it (reading in order; not for several threads). False: each frame is read at
        its offset (uncompressed files only, see :func:`reads_slice_by_slice`); nothing is
        kept, so several threads may share the reader.
    """

    def __init__(self, stack: StackPlan, *, whole_files: bool = True):
        self.stack = stack
        self._frames = _FileCache() if whole_files else _FrameAtOffset()

    def read_into(self, k: int, out: np.ndarray) -> None:
        """``out[k]`` = the physical values of slice ``k`` (or of a repeat at its position
        when its file cannot be decoded: it then takes the slice's place, with a warning).

        ``out`` is ``[z, y, x]`` (``[z, y, x, 3]`` for colour) of the stack's dtype (or its
        fallback dtype). What a partial read left in ``out[k]`` is undefined on error.

        Raises
        ------
        DtypeTooSmall
            If ``out`` is of an integer dtype the slice's values do not fit.
        PixelDataError, OSError, ValueError, MemoryError
            The first failure, when no repeat can be read either.
        """
        self._read_slice(k, out[k : k + 1])

    def read(self, k: int) -> np.ndarray:
        """Slice ``k`` as a new array ``[y, x]`` (``[y, x, 3]`` for colour) of the stack's
        dtype, or of its fallback dtype when the values do not fit.

        Raises
        ------
        PixelDataError
            Naming the file and the reason when the slice (and any repeat) cannot be read.
        """
        from medview.dicom.pixels.read import allocate_volume

        plan = self.stack
        ref = plan.slices[k]
        shape = (1, ref.rows, ref.columns) + ((3,) if plan.is_rgb else ())
        path = ref.header.path
        try:
            out = allocate_volume(shape, plan.dtype)
            try:
                self._read_slice(k, out)
            except DtypeTooSmall:
                if plan.fallback_dtype is None:
                    raise PixelDataError(f"{path}: stored values do not fit "
                                         f"{plan.dtype}") from None
                out = allocate_volume(shape, plan.fallback_dtype)
                self._read_slice(k, out)
        except SLICE_ERRORS as exc:
            raise PixelDataError(f"{path}: {failure_reason(exc, path)}") from exc
        return out[0]

    def _read_slice(self, k: int, dst: np.ndarray) -> None:
        """``dst[0]`` = slice ``k`` or a repeat of it (see :meth:`read_into`)."""
        plan = self.stack
        try:
            self._read_one(plan.slices[k], dst)
            return
        except SLICE_ERRORS as exc:
            first = exc
        for alt in plan.alternates.get(k, ()):
            try:
                self._read_one(alt, dst)
            except SLICE_ERRORS:
                continue
            bad = plan.slices[k].header.path
            plan.slices[k] = alt
            plan.warnings.append(
                f"unreadable file {_name(bad)} ({failure_reason(first, bad)}): used "
                f"{_name(alt.header.path)} at the same position instead")
            return
        raise first

    def _read_one(self, ref: SliceRef, dst: np.ndarray) -> None:
        """``dst[0]`` = physical values of ``ref`` (``dst``: one plane, ``[1, y, x(, 3)]``)."""
        from medview.dicom.pixels.decoding import decode, decode_into, stored_dtype

        plan = self.stack
        h = ref.header
        integer_out = dst.dtype.kind in "iu"
        info = np.iinfo(dst.dtype) if integer_out else None
        single = h.number_of_frames <= 1 and not h.is_mosaic
        sd = stored_dtype(h)
        lo, hi = _stored_range(h)
        icpt = ref.intercept
        if single and integer_out and ref.slope == 1.0 and sd.itemsize == dst.dtype.itemsize:
            # the fast path: stored values straight into the output, rescaled in place
            raw = dst.view(sd)
            decode_into(h, raw)
            if not (info.min <= lo and hi <= info.max and info.min <= lo + icpt
                    and hi + icpt <= info.max):
                mn, mx = int(raw.min()), int(raw.max())
                if (mn < info.min or mx > info.max or mn + icpt < info.min
                        or mx + icpt > info.max):
                    raise DtypeTooSmall
            if icpt:
                dst += dst.dtype.type(icpt)
        else:
            stored = self._frames.get(ref) if not single else decode(h)[0]
            if plan.is_rgb:
                dst[0] = stored
            elif not integer_out:
                np.multiply(stored, ref.slope, out=dst[0], dtype=np.float32, casting="unsafe")
                dst[0] += np.float32(icpt)
            else:
                values = stored.astype(np.int64) * int(ref.slope) + int(icpt)
                if values.size and (values.min() < info.min or values.max() > info.max):
                    raise DtypeTooSmall
                dst[0] = values
        if plan.invert:
            # MONOCHROME1: low values are bright. Mirror within the stored range so that
            # higher means brighter, as for every other image.
            a = ref.slope * (lo + hi) + 2 * icpt
            np.subtract(dst.dtype.type(a), dst, out=dst)
