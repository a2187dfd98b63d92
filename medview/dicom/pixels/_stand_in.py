"""Stand-ins for slices that could not be decoded: the rest of the series still loads.

A slice whose file fails to decode (a corrupt JPEG 2000 frame, a decoder that died, a file
changed since it was scanned) is treated like a missing slice: its plane is interpolated
linearly from the nearest readable slices on either side (copied from the one neighbour at
the ends of the stack), the warning names the file and the reason, and the plane is listed
as ``(z, "unreadable file NAME: reason")`` in the Volume's ``metadata["made_up_slices"]``.
"""

from __future__ import annotations

import numpy as np

from medview.dicom.errors import PixelDataError

__all__ = ["SLICE_ERRORS", "fill_stand_ins", "resample_around", "stand_in_warnings"]

#: what reading one slice may raise and what costs only that slice
SLICE_ERRORS = (PixelDataError, OSError, ValueError, MemoryError)
#: failures named one by one in the warnings (the rest are counted)
_LISTED = 20


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _entry(plan, k: int, reason: str) -> str:
    return f"unreadable file {_name(plan.slices[k].header.path)}: {reason}"


def _blend(a: np.ndarray, b: np.ndarray, w: float, dtype: np.dtype) -> np.ndarray:
    if w == 0.0:
        return a
    if w == 1.0:
        return b
    val = a.astype(np.float32) * (1 - w) + b.astype(np.float32) * w
    return np.rint(val) if dtype.kind in "iu" else val


def fill_stand_ins(plan, out: np.ndarray, failed: dict[int, str], t: np.ndarray
                   ) -> list[tuple[int, str]]:
    """Write a stand-in into ``out[k]`` for every ``k`` in ``failed``, in place.

    Parameters
    ----------
    plan : StackPlan
        The stack (for file names).
    out : ndarray, shape (n, rows, cols[, 3])
        The stack's slices; the failed ones are overwritten.
    failed : dict
        Slice index → reason.
    t : ndarray, shape (n,)
        Position of each slice along the stack (mm), for the interpolation weights.

    Returns
    -------
    list of (int, str)
        ``(k, "unreadable file NAME: reason")`` per stand-in.
    """
    n = out.shape[0]
    good = np.array([k for k in range(n) if k not in failed], dtype=np.int64)
    made_up = []
    for k, reason in sorted(failed.items()):
        i = int(np.searchsorted(good, k))
        lo = int(good[i - 1]) if i > 0 else None
        hi = int(good[i]) if i < len(good) else None
        if lo is None or hi is None:
            out[k] = out[hi if lo is None else lo]
        else:
            span = float(t[hi] - t[lo])
            w = float(np.clip((t[k] - t[lo]) / span, 0.0, 1.0)) if span else 0.5
            out[k] = _blend(out[lo], out[hi], w, out.dtype)
        made_up.append((k, _entry(plan, k, reason)))
    return made_up


def resample_around(acquired: np.ndarray, t_acq: np.ndarray, t_out: np.ndarray,
                    ok: np.ndarray, out: np.ndarray, failed: dict[int, str], plan=None
                    ) -> list[tuple[int, str]]:
    """Resample the readable acquired slices onto ``t_out`` (linear), into ``out``.

    The failed acquired slices are left out, as if they had not been acquired; a plane of the
    output whose interpolation would have used a failed slice is a stand-in.

    Returns
    -------
    list of (int, str)
        ``(z, "unreadable file NAME: reason")`` per stand-in plane.
    """
    n = len(t_acq)
    good = np.flatnonzero(ok)
    tg = t_acq[good]
    made_up = []
    for z, t in enumerate(t_out):
        if len(good) == 1:
            a = b = int(good[0])
            w = 0.0
        else:
            j = int(np.clip(np.searchsorted(tg, t, side="right") - 1, 0, len(good) - 2))
            a, b = int(good[j]), int(good[j + 1])
            w = float(np.clip((t - t_acq[a]) / (t_acq[b] - t_acq[a]), 0.0, 1.0))
            # an acquired slice on a grid plane is copied as is, not blended with rounding
            if abs(t - t_acq[a]) < 1e-3:
                w = 0.0
            elif abs(t - t_acq[b]) < 1e-3:
                w = 1.0
        val = acquired[a] * (1 - w) + acquired[b] * w
        if out.dtype.kind in "iu":
            val = np.rint(val)
        out[z] = val
        if failed and n >= 2:
            jf = int(np.clip(np.searchsorted(t_acq, t, side="right") - 1, 0, n - 2))
            wf = float(np.clip((t - t_acq[jf]) / (t_acq[jf + 1] - t_acq[jf]), 0.0, 1.0))
            if abs(t - t_acq[jf]) < 1e-3:
                wf = 0.0
            elif abs(t - t_acq[jf + 1]) < 1e-3:
                wf = 1.0
            used = ([jf] if wf < 1.0 else []) + ([jf + 1] if wf > 0.0 else [])
            bad = [k for k in used if k in failed]
            if bad and plan is not None:
                made_up.append((z, _entry(plan, bad[0], failed[bad[0]])))
    return made_up


def stand_in_warnings(plan, failed: dict[int, str]) -> list[str]:
    """One warning per failed slice (the first few), naming the file and the reason."""
    n = len(plan.slices)
    notes = [
        f"{_entry(plan, k, reason)}: slice {k + 1} of {n} is a stand-in, interpolated from "
        "its nearest readable neighbours"
        for k, reason in sorted(failed.items())[:_LISTED]
    ]
    if len(failed) > _LISTED:
        notes.append(f"… and {len(failed) - _LISTED} more unreadable slice(s), interpolated alike")
    return notes
