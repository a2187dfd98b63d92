"""Checks and small helpers every core algorithm shares (scikit-image's ``_shared``).

Each check names the argument it rejects, says what it got and what it expected, so the
error reaches the user as written. They were copied into six modules before; one home keeps
the messages alike and a fix in one place.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from medview.core._shared.parallel import map_slices
from medview.core.labelmap import LabelMap
from medview.core.progress import Progress
from medview.core.volume import Volume

__all__ = ["as_float32", "check_finite", "check_labels", "check_mask", "check_non_negative",
           "check_positive", "check_same_grid", "check_scalar", "each_slice"]


def check_scalar(volume: Volume, what: str, *, name: str = "volume") -> None:
    """Raise unless ``volume`` is a Volume of scalar (not RGB) voxels.

    Parameters
    ----------
    volume : Volume
        The argument to check.
    what : str
        What needs the scalar volume, for the message (``"CLAHE"``).
    name : str
        The argument's name, for the message.

    Raises
    ------
    TypeError
        If ``volume`` is not a :class:`Volume`.
    ValueError
        If its voxels are RGB.
    """
    if not isinstance(volume, Volume):
        raise TypeError(f"{name}: expected a Volume, got {type(volume).__name__}")
    if volume.is_rgb:
        raise ValueError(f"{name}: {what} needs a scalar volume, got RGB shape "
                         f"{volume.array.shape}; convert it to gray first")


def check_labels(labels: LabelMap, *, name: str = "labels") -> None:
    """Raise ``TypeError`` unless ``labels`` is a :class:`LabelMap`."""
    if not isinstance(labels, LabelMap):
        raise TypeError(f"{name}: expected a LabelMap, got {type(labels).__name__}")


def check_same_grid(volume: Volume, other: Volume, *, name: str, fix: str) -> None:
    """Raise ``ValueError`` unless ``other`` lies on ``volume``'s grid.

    ``fix`` says what to do about it (``"resample the mask onto the volume"``).
    """
    if not volume.same_grid(other):
        raise ValueError(f"{name}: grid {other.shape} spacing {other.spacing} origin "
                         f"{other.origin} does not match the volume's {volume.shape} spacing "
                         f"{volume.spacing} origin {volume.origin}; {fix}")


def check_mask(volume: Volume, mask: LabelMap | None) -> None:
    """Raise unless ``mask`` is None or a LabelMap on ``volume``'s grid."""
    if mask is None:
        return
    check_labels(mask, name="mask")
    check_same_grid(volume, mask, name="mask", fix="resample the mask onto the volume")


def check_finite(name: str, value: float | None) -> None:
    """Raise ``ValueError`` if ``value`` is given and not a finite number."""
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value}")


def check_positive(name: str, value: float) -> float:
    """``value`` as a float; ``ValueError`` unless it is finite and > 0."""
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value}")
    return value


def check_non_negative(name: str, value: float) -> float:
    """``value`` as a float; ``ValueError`` unless it is finite and >= 0."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    return value


def as_float32(arr: np.ndarray) -> np.ndarray:
    """``arr`` as float32, without a copy when it already is."""
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def each_slice(func: Callable[[int], object], n: int, progress: Progress, message: str) -> None:
    """``func(k)`` for every slice index k < n, in threads, with progress and cancellation.

    :func:`~medview.core._shared.parallel.map_slices` over the indices: ``func`` writes its own
    slice of the output, which spares a copy of every slice.
    """

    def call(k) -> int:
        func(int(k))
        return 0

    map_slices(call, np.arange(n), np.empty(n, np.int8), progress=progress, message=message)
