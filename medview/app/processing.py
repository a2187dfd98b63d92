"""The heavy actions of the workstation as registered steps on an executor, without Qt.

Fusing (resample or rigid registration, then the colour blend) and the scribble classifier
(train and segment, or apply a saved model) each run as a registered step through
:func:`~medview.pipeline.executors.run_step_on`, so that the executor the user chose ("Run
on: Local / Remote: NAME") runs them with the same progress, cancel, de-identification and
audit as a chain. The :class:`~medview.app.session.Session` calls these in its jobs; the
Fusion and Segmentation docks show what they return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medview.core.progress import NO_PROGRESS, Progress
from medview.core.volume import Volume

__all__ = ["APPLY_STEP", "NO_COVERAGE", "TRAIN_STEP", "Classified", "Fused", "apply_model_on",
           "blend_on", "register_on", "resample_on", "train_on"]

#: The fused value where the second series has no data (outside its field of view): NaN is
#: drawn transparent by the views and left grey by the Secondary Capture blend
#: (:func:`medview.core.fusion.blend.blend_colour`); 0 was drawn and exported as a coloured frame.
NO_COVERAGE = float("nan")
#: What the resampling steps write outside the second series (a step parameter is a finite
#: number, so NaN cannot travel as one); turned into NO_COVERAGE when the result is back. The
#: linear resampling never blends it into voxels inside the series (ITK interpolates from the
#: image's own voxels), so the swap is exact; a series holding it is refused.
OUTSIDE = -1e6

#: the registered steps of the Segmentation dock's classifier
TRAIN_STEP = "segment.classifier_train_predict"
APPLY_STEP = "segment.classifier_apply"


@dataclass(frozen=True)
class Fused:
    """A second series on the base series' grid (NO_COVERAGE outside it)."""

    base: Volume
    volume: Volume
    #: the display range of the fused series (1–99 %)
    window: tuple[float, float]
    #: the rigid transform's table when registered, else None (placed by patient position)
    transform: Any = None


@dataclass(frozen=True)
class Classified:
    """A classifier's segmentation of ``volume``."""

    volume: Volume
    model: Any
    labels: Any
    seconds: float


def _step_on(executor, step_id: str, base: Volume, moving: Volume, *,
             progress: Progress) -> tuple:
    """Run ``step_id`` (``volume`` = base, ``moving``) on ``executor`` with the no-coverage
    marker; the resampled series with NO_COVERAGE outside the moving one, and the output."""
    from medview.pipeline.executors import run_step_on

    if moving.array.size and float(np.nanmin(moving.array)) <= OUTSIDE:
        raise ValueError(f"the second series has values at or below {OUTSIDE:g}; it cannot "
                         "be fused")
    out = run_step_on(executor, step_id, {"volume": base, "moving": moving},
                      {"default_value": OUTSIDE}, progress=progress)
    fused = out["volume"] if isinstance(out, dict) else out
    array = np.where(fused.array == np.float32(OUTSIDE), np.float32(NO_COVERAGE), fused.array)
    return fused.with_array(array.astype(fused.array.dtype, copy=False)), out


def register_on(executor, base: Volume, moving: Volume, *, progress: Progress = NO_PROGRESS):
    """``fuse.register_rigid`` of ``moving`` onto ``base`` on ``executor``: the resampled
    series (NO_COVERAGE outside it) and the transform's table.

    Raises
    ------
    ValueError
        If ``moving`` holds the value that marks "outside" during the run.
    """
    fused, out = _step_on(executor, "fuse.register_rigid", base, moving, progress=progress)
    return fused, out["transform"]


def resample_on(executor, base: Volume, moving: Volume, *, progress: Progress = NO_PROGRESS):
    """``fuse.resample`` of ``moving`` onto ``base``'s grid by patient position, on
    ``executor``; NO_COVERAGE outside ``moving``.

    Raises
    ------
    ValueError
        If ``moving`` holds the value that marks "outside" during the run.
    """
    return _step_on(executor, "fuse.resample", base, moving, progress=progress)[0]


def fuse_on(executor, base: Volume, moving: Volume, *, register: bool = False,
            progress: Progress = NO_PROGRESS) -> Fused:
    """``moving`` brought onto ``base``'s grid on ``executor`` (registered rigidly first when
    ``register``), with its 1–99 % display range.

    Raises
    ------
    ValueError
        If ``moving`` is a colour series.
    """
    from medview.app.windowing import auto_window

    if moving.is_rgb:
        raise ValueError("a colour series cannot be fused in colour; choose a grey one")
    transform = None
    if register:
        fused, transform = register_on(executor, base, moving, progress=progress)
    else:
        fused = resample_on(executor, base, moving, progress=progress)
    center, width = auto_window(fused.array)
    return Fused(base, fused, (center - width / 2.0, center + width / 2.0), transform)


def blend_on(executor, base: Volume, fused: Volume, *, window_center: float,
             window_width: float, colormap: str, moving_range: tuple[float, float],
             opacity: float, progress: Progress = NO_PROGRESS) -> Volume:
    """The registered step ``fuse.blend`` on ``executor``: the grey base in its window with
    the fused series in ``colormap`` over it (an RGB volume, what the views show)."""
    from medview.pipeline.executors import run_step_on

    low, high = moving_range
    return run_step_on(executor, "fuse.blend", {"volume": base, "moving": fused},
                       {"window_center": window_center, "window_width": window_width,
                        "colormap": colormap, "moving_min": low, "moving_max": high,
                        "opacity": opacity}, progress=progress)


def train_on(executor, volume: Volume, scribbles, *, classifier: str = "random_forest",
             seed: int = 0, progress: Progress = NO_PROGRESS) -> Classified:
    """Train the pixel classifier on ``scribbles`` and segment ``volume`` (the step
    :data:`TRAIN_STEP` on ``executor``)."""
    from medview.pipeline.executors import run_step_on

    t0 = time.perf_counter()
    out = run_step_on(executor, TRAIN_STEP, {"volume": volume, "scribbles": scribbles},
                      {"classifier": classifier, "seed": seed}, progress=progress)
    progress.check()
    return Classified(volume, out["model"], out["labels"], time.perf_counter() - t0)


def apply_model_on(executor, volume: Volume, path: str | Path, *,
                   progress: Progress = NO_PROGRESS) -> Classified:
    """Segment ``volume`` with the saved model ``path`` (the step :data:`APPLY_STEP` on
    ``executor``). The model is loaded here first: only a safe model file travels.

    Raises
    ------
    ValueError
        If ``path`` is not a safe model file (see :mod:`medview.core.segmentation.model_file`).
    """
    from medview.core.segmentation.classifier import PixelClassifier
    from medview.pipeline.executors import run_step_on

    t0 = time.perf_counter()
    model = PixelClassifier.load(path)
    labels = run_step_on(executor, APPLY_STEP, {"volume": volume},
                         {"model_path": str(path)}, progress=progress)
    progress.check()
    return Classified(volume, model, labels, time.perf_counter() - t0)
