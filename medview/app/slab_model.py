"""Thick slabs on every view: the model (mode, thickness) and the images it gives, no Qt.

A :class:`Slab` model holds what the reader chose: ``mode`` (``"off"``, ``"mip"``,
``"minip"`` or ``"average"``) and ``thickness_mm``; it applies to every view of the open
volume (axial, coronal and sagittal alike, as RadiAnt and Horos do). :class:`SlabViews`
binds it to a :class:`~medview.app.state.ViewerState`: :meth:`SlabViews.plane_image` is
what a view draws (the slab projected by :class:`~medview.core.reformat.slab.SlabProjector` along
the view's true normal, turned like the view; the plain slice when the slab is off) and
:meth:`SlabViews.overlay_text` the line the view writes in its corner ("MIP 10 mm"). The
projector keeps the last results, so scrolling one view of the 2×2 layout does not
recompute the other two; it is dropped when the voxels change (another volume, slices of a
loading volume arriving).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psygnal import evented

from medview.core.reformat.slab import MODES, SlabProjector

if TYPE_CHECKING:
    from medview.app.state import ViewerState

__all__ = ["SLAB_MODES", "THICKNESS_RANGE_MM", "Slab", "SlabViews"]

#: the choices, in the order the keyboard cycles through them
SLAB_MODES = ("off", *MODES)
#: what the thickness control allows (mm)
THICKNESS_RANGE_MM = (0.5, 200.0)
#: the thickness steps of the keyboard (mm): thinner / thicker moves to the next one
THICKNESS_STEPS_MM = (1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)
_LABELS = {"mip": "MIP", "minip": "MinIP", "average": "Avg"}


@evented
@dataclass(eq=False)
class Slab:
    """The thick slab every view shows: ``mode`` and ``thickness_mm``.

    Events: ``events.mode(new, old)``, ``events.thickness_mm(new, old)``.
    """

    mode: str = "off"
    thickness_mm: float = 10.0

    @property
    def on(self) -> bool:
        return self.mode != "off"


class SlabViews:
    """The slab of a viewer state: checks what is set, and the images of the views.

    Parameters
    ----------
    state : ViewerState
        The views' state (its volume, crosshair and plane geometries).
    """

    def __init__(self, state: ViewerState):
        self._state = state
        self.model = Slab()
        self._projector: SlabProjector | None = None
        state.volume_changed.connect(self._forget)
        state.data_changed.connect(self._forget)

    def _forget(self, *args) -> None:
        self._projector = None

    # -- what the reader sets ----------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.model.mode

    @property
    def thickness_mm(self) -> float:
        return self.model.thickness_mm

    def set_mode(self, mode: str) -> None:
        """One of :data:`SLAB_MODES` ("off" shows the plain slices)."""
        if mode not in SLAB_MODES:
            raise ValueError(f"mode: expected one of {SLAB_MODES}, got {mode!r}")
        self.model.mode = mode

    def cycle_mode(self) -> str:
        """The keyboard's choice: off → MIP → MinIP → average → off. Returns the new mode."""
        k = SLAB_MODES.index(self.model.mode)
        self.set_mode(SLAB_MODES[(k + 1) % len(SLAB_MODES)])
        return self.model.mode

    def set_thickness(self, thickness_mm: float) -> None:
        """Slab thickness (mm), within :data:`THICKNESS_RANGE_MM`."""
        t = float(thickness_mm)
        lo, hi = THICKNESS_RANGE_MM
        if not (np.isfinite(t) and lo <= t <= hi):
            raise ValueError(f"thickness_mm: expected {lo:g}–{hi:g} mm, got {thickness_mm!r}")
        self.model.thickness_mm = t

    def step_thickness(self, steps: int) -> float:
        """Thicker (``steps`` > 0) or thinner through :data:`THICKNESS_STEPS_MM`."""
        t = self.model.thickness_mm
        if steps > 0:
            bigger = [s for s in THICKNESS_STEPS_MM if s > t + 1e-6]
            t = bigger[min(steps, len(bigger)) - 1] if bigger else t
        elif steps < 0:
            smaller = [s for s in THICKNESS_STEPS_MM if s < t - 1e-6]
            t = smaller[-min(-steps, len(smaller))] if smaller else t
        self.set_thickness(t)
        return t

    # -- what the views show -----------------------------------------------------------
    def projector(self) -> SlabProjector | None:
        volume = self._state.volume
        if volume is None or volume.is_rgb:
            return None
        if self._projector is None or self._projector.volume is not volume:
            self._projector = SlabProjector(volume)
        return self._projector

    def plane_image(self, plane: str) -> np.ndarray | None:
        """What view ``plane`` draws: the slab through the crosshair when the slab is on
        (MIP and MinIP in the volume's dtype, the average in float32), else the slice."""
        state = self._state
        if not self.model.on:
            return state.plane_image(plane)
        g = state.geometry(plane)
        projector = self.projector()
        if g is None or projector is None:
            return state.plane_image(plane)
        out = projector.project(axis=g.normal, index=state.plane_slice(plane),
                                thickness_mm=self.model.thickness_mm, mode=self.model.mode)
        return g.image(np.expand_dims(out, 2 - g.normal), 0)

    def planes_taken(self, plane: str) -> tuple[int, ...]:
        """The slice indices the slab of view ``plane`` takes (the slice alone when off)."""
        state = self._state
        g, projector = state.geometry(plane), self.projector()
        if g is None:
            return ()
        if not self.model.on or projector is None:
            return (state.plane_slice(plane),)
        return projector.plan(axis=g.normal, index=state.plane_slice(plane),
                              thickness_mm=self.model.thickness_mm).planes

    def overlay_text(self) -> str:
        """The corner line of every view: "MIP 10 mm", "" when the slab is off."""
        if not self.model.on or self._state.volume is None or self._state.volume.is_rgb:
            return ""
        return f"{_LABELS[self.model.mode]} {self.model.thickness_mm:g} mm"
