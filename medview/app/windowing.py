"""Window/level: the CT presets, the automatic window for MR and PET, the default window.

Plain NumPy, no Qt: the viewer state uses these, the widgets only show the result.
A window is ``(center, width)`` in the volume's physical units (HU for CT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medview.core.volume import Volume

__all__ = [
    "CT_PRESETS",
    "WindowPreset",
    "auto_window",
    "default_window",
    "initial_windows",
    "is_ct",
    "window_from_header",
]


@dataclass(frozen=True)
class WindowPreset:
    """A named window; ``key`` is the number key that applies it."""

    key: int
    name: str
    width: float
    center: float


#: The CT presets of DESIGN.md (width/level in HU), on keys 1–8.
CT_PRESETS: tuple[WindowPreset, ...] = (
    WindowPreset(1, "Brain", 80, 40),
    WindowPreset(2, "Subdural", 200, 75),
    WindowPreset(3, "Stroke", 40, 40),
    WindowPreset(4, "Lung", 1500, -600),
    WindowPreset(5, "Mediastinum", 350, 50),
    WindowPreset(6, "Abdomen", 400, 50),
    WindowPreset(7, "Liver", 150, 30),
    WindowPreset(8, "Bone", 1800, 400),
)

#: Sampling more voxels than this for a percentile changes the result by far less than a
#: grey level and costs time on a 300-slice volume.
_MAX_SAMPLES = 1_000_000


def is_ct(volume: Volume) -> bool:
    """True when the volume holds CT numbers (modality CT or units HU)."""
    meta = volume.metadata
    return meta.get("Modality") == "CT" or str(meta.get("Units", "")).upper() == "HU"


def _first_number(value) -> float | None:
    """DICOM window values can be one number, several (a list) or missing."""
    if value is None:
        return None
    if isinstance(value, list | tuple | np.ndarray):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def window_from_header(volume: Volume) -> tuple[float, float] | None:
    """``(center, width)`` from the WindowCenter/WindowWidth the series carries, if usable."""
    center = _first_number(volume.metadata.get("WindowCenter"))
    width = _first_number(volume.metadata.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center, width


def auto_window(array: np.ndarray, *, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """``(center, width)`` spanning the ``low``–``high`` percentiles of ``array``'s values.

    Parameters
    ----------
    array : ndarray, any shape
        Scalar values (a slice or a whole volume).
    low, high : float
        Percentiles in [0, 100], ``low < high``.

    Returns
    -------
    (center, width) : tuple of float
        ``width`` is at least 1 for integer data and positive for float data, so a constant
        image still gets a usable window.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"low, high: expected 0 <= low < high <= 100, got {low}, {high}")
    flat = np.asarray(array).reshape(-1)
    if flat.size == 0:
        raise ValueError("array: empty, no window can be computed")
    if flat.size > _MAX_SAMPLES:
        flat = flat[:: flat.size // _MAX_SAMPLES + 1]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, (low, high)))
    floor = 1.0 if flat.dtype.kind in "iub" else max(abs(hi) * 1e-6, 1e-6)
    width = max(hi - lo, floor)
    return (lo + hi) / 2.0, width


def default_window(volume: Volume, *, z: int | None = None) -> tuple[float, float]:
    """The window a series opens with: the one rule for every way a series is shown (opened
    whole, its first image while it loads, its thumbnail).

    CT: the series' own WindowCenter/Width when present (the technologist chose it), else the
    abdomen preset. Other modalities (MR, PET, …): the 1–99 percentile window, since their
    values have no fixed scale. RGB volumes: the full 0–255 range.

    Parameters
    ----------
    volume : Volume
    z : int, optional
        Only slice ``z`` is known yet (the first image of a progressive open, a thumbnail):
        the percentiles are those of that slice. CT and RGB windows read no pixels.
    """
    if volume.is_rgb:
        return 127.5, 255.0
    if is_ct(volume):
        header = window_from_header(volume)
        if header is not None:
            return header
        abdomen = CT_PRESETS[5]
        return abdomen.center, abdomen.width
    return auto_window(volume.array if z is None else volume.array[z])


def initial_windows(volume: Volume) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """``(default, automatic)`` windows of a freshly loaded volume (automatic: None for RGB).

    Meant for the worker that loads the volume, so the GUI thread never waits on percentiles.
    """
    if volume.is_rgb:
        return default_window(volume), None
    auto = auto_window(volume.array)
    if is_ct(volume):
        return default_window(volume), auto
    return auto, auto
