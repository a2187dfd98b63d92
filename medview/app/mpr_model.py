"""Oblique MPR and reference lines of the three views, without Qt.

The :class:`Mpr` model holds the oblique frame (``frame``: a
:class:`~medview.core.reformat.oblique.MprFrame`, or None while the views show the acquired planes),
whether reference lines are drawn, and a localizer's plane when the study has one.
:class:`MprViews` binds it to a :class:`~medview.app.state.ViewerState`:

- :meth:`MprViews.rotate_in_view` is the crosshair drag (the two other planes turn about the
  dragged view's normal; :meth:`~medview.core.reformat.oblique.MprFrame.rotated_in_view` keeps the
  three views orthogonal); :meth:`MprViews.reset` goes back to the acquired planes.
- :meth:`MprViews.view_plane` is each view's :class:`~medview.core.reformat.plane.ImagePlane`
  (the acquired slice through the crosshair, or the oblique plane); :meth:`oblique_image`
  samples an oblique plane (trilinear, :func:`~medview.core.reformat.oblique.sample_plane`; with
  pixels twice as large while a drag is under way, ``coarse``).
- :meth:`MprViews.reference_lines` gives where the other views' planes (and the localizer's)
  cut a view, from :func:`~medview.core.reformat.reference_lines.reference_line`.

The oblique frame's centre is continuous (a wheel step moves it by one pixel along the view's
normal); the crosshair voxel (``camera.cursor``) follows it to the nearest voxel, and a
crosshair moved by anyone else moves the frame's centre there.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from psygnal import evented

from medview.app.planes import PLANES
from medview.core.reformat.oblique import MprFrame, mpr_plane, sample_plane
from medview.core.reformat.plane import ImagePlane
from medview.core.reformat.reference_lines import ReferenceLine, reference_line

if TYPE_CHECKING:
    from medview.app.state import ViewerState

__all__ = ["Localizer", "Mpr", "MprViews"]

#: a drag samples with pixels this many times larger (4× fewer samples)
COARSE_FACTOR = 2.0


@dataclass(frozen=True)
class Localizer:
    """A localizer (scout) image's plane and what to call it."""

    plane: ImagePlane
    description: str = ""
    frame_of_reference_uid: str = ""


@evented(equality_operators={"frame": operator.is_, "localizer": operator.is_})
@dataclass(eq=False)
class Mpr:
    """Oblique frame, reference lines, localizer.

    Events: ``events.frame`` (rotated, moved or reset: None), ``events.coarse`` (a drag
    began or ended), ``events.reference_lines``, ``events.localizer``.
    """

    frame: MprFrame | None = None
    coarse: bool = False
    reference_lines: bool = False
    localizer: Localizer | None = None


class MprViews:
    """The oblique MPR and reference lines of a viewer state."""

    def __init__(self, state: ViewerState):
        self._state = state
        self.model = Mpr()
        self._images: dict[str, tuple] = {}
        state.volume_changed.connect(self._on_volume_changed)
        state.data_changed.connect(self._forget_images)
        state.camera.events.cursor.connect(self._on_cursor)

    def _forget_images(self, *args) -> None:
        self._images.clear()

    def _on_volume_changed(self, *args) -> None:
        # announced by volume_changed itself: the views redraw everything once
        self._images.clear()
        with self.model.events.blocked():
            self.model.frame = None
            self.model.coarse = False
            self.model.localizer = None

    # -- the oblique frame -------------------------------------------------------------
    @property
    def rotated(self) -> bool:
        """True when the views show oblique planes."""
        return self.model.frame is not None

    def current_frame(self) -> MprFrame | None:
        """The oblique frame, or the acquired planes' through the crosshair."""
        if self.model.frame is not None:
            return self.model.frame
        vol = self._state.volume
        if vol is None or vol.is_rgb:
            return None
        return MprFrame.acquisition(vol, centre=self._state.cursor_lps())

    def rotate_in_view(self, plane: str, angle_rad: float, *, base: MprFrame | None = None,
                       coarse: bool | None = None) -> None:
        """Turn the two views other than ``plane`` by ``angle_rad`` about ``plane``'s normal
        (clockwise on ``plane``'s screen), from ``base`` (default: the current frame)."""
        if plane not in PLANES:
            raise ValueError(f"plane: expected one of {PLANES}, got {plane!r}")
        start = base if base is not None else self.current_frame()
        if start is None:
            return
        if coarse is not None:
            self.model.coarse = bool(coarse)
        self.model.frame = start.rotated_in_view(plane, float(angle_rad))

    def set_coarse(self, coarse: bool) -> None:
        self.model.coarse = bool(coarse)

    def reset(self) -> None:
        """Back to the acquired planes (the crosshair stays where it is)."""
        self.model.coarse = False
        self.model.frame = None

    def move_centre(self, lps) -> None:
        """Put the crosshair at LPS ``lps`` (mm): the oblique planes pass through it."""
        state = self._state
        if state.volume is None:
            return
        lps = np.asarray(lps, dtype=np.float64).reshape(3)
        if self.model.frame is not None:
            self.model.frame = self.model.frame.moved(lps)
        state.set_cursor_lps(lps)

    def step(self, plane: str, steps: int) -> bool:
        """Move the oblique plane of ``plane`` along its normal by ``steps`` pixels; False
        (nothing done) while the views show the acquired planes or past the volume's end."""
        frame, vol = self.model.frame, self._state.volume
        if frame is None or vol is None:
            return False
        step_mm = min(vol.spacing[0], vol.spacing[1])
        centre = frame.centre + int(steps) * step_mm * frame.normal(plane)
        ijk = vol.lps_to_index(centre)
        if np.any(ijk < -0.5) or np.any(ijk > np.asarray(vol.shape[:3][::-1]) - 0.5):
            return True  # at the end: the wheel does nothing, as on the first/last slice
        self.move_centre(centre)
        return True

    def _on_cursor(self, new, old) -> None:
        frame, vol = self.model.frame, self._state.volume
        if frame is None or vol is None:
            return
        nearest = tuple(int(round(float(c))) for c in vol.lps_to_index(frame.centre))
        if tuple(new) != nearest:  # moved by someone else (a click, a key, the cine)
            self.model.frame = frame.moved(self._state.cursor_lps())

    # -- planes and images -------------------------------------------------------------
    def acquired_plane(self, plane: str) -> ImagePlane | None:
        """View ``plane``'s slice through the crosshair as an ImagePlane (its display
        coordinates are the view's, :mod:`medview.app.planes`)."""
        state = self._state
        g = state.geometry(plane)
        if g is None:
            return None
        return ImagePlane.from_volume_slice(state.volume, axis=g.normal,
                                            index=state.plane_slice(plane),
                                            horizontal=g.horizontal, vertical=g.vertical,
                                            flip_h=g.flip_h, flip_v=g.flip_v)

    def view_plane(self, plane: str, *, coarse: bool | None = None) -> ImagePlane | None:
        """The plane view ``plane`` shows now."""
        vol, frame = self._state.volume, self.model.frame
        if vol is None:
            return None
        if frame is None:
            return self.acquired_plane(plane)
        coarse = self.model.coarse if coarse is None else coarse
        pixel = min(vol.spacing[0], vol.spacing[1]) * (COARSE_FACTOR if coarse else 1.0)
        return mpr_plane(vol, frame, plane, pixel_mm=pixel)

    def oblique_image(self, plane: str) -> tuple[np.ndarray, ImagePlane] | None:
        """The sampled pixels of view ``plane``'s oblique plane and that plane (None when
        the views show the acquired planes)."""
        if self.model.frame is None:
            return None
        image_plane = self.view_plane(plane)
        key = (tuple(image_plane.origin), tuple(image_plane.col_step),
               tuple(image_plane.row_step), image_plane.rows, image_plane.columns)
        hit = self._images.get(plane)
        if hit is not None and hit[0] == key:
            return hit[1], image_plane
        image = sample_plane(self._state.volume, image_plane)
        self._images[plane] = (key, image)
        return image, image_plane

    def view_matrix(self, plane: str, image_plane: ImagePlane) -> np.ndarray:
        """2×3 matrix from display ``(u, v, 1)`` of ``image_plane`` to view ``plane``'s
        millimetres: square pixels, the crosshair where the acquired view has it (so the
        picture does not jump when it turns)."""
        state = self._state
        g, vol = state.geometry(plane), state.volume
        centre = self.model.frame.centre if self.model.frame is not None \
            else state.cursor_lps()
        uc, vc = (float(c) for c in image_plane.lps_to_display(centre))
        xc, yc = g.to_view(*g.index_to_display(vol.lps_to_index(centre)))
        pw, ph = image_plane.pixel_mm
        return np.array([[pw, 0.0, xc - uc * pw], [0.0, ph, yc - vc * ph]])

    # -- reference lines ---------------------------------------------------------------
    def set_reference_lines(self, on: bool) -> None:
        self.model.reference_lines = bool(on)

    def set_localizer(self, localizer: Localizer | None) -> None:
        self.model.localizer = localizer

    def reference_lines(self, plane: str, *, clip_to_other: bool = True,
                        localizer: bool = True) -> list[tuple[str, ReferenceLine]]:
        """Where the other views' planes (and the localizer's) cut view ``plane``:
        ``(name, line)`` pairs, the line in ``plane``'s display coordinates."""
        current = self.view_plane(plane)
        if current is None:
            return []
        out = []
        for other in PLANES:
            if other == plane:
                continue
            line = reference_line(current, self.view_plane(other), clip_to_other=clip_to_other)
            if line is not None:
                out.append((other, line))
        loc = self.model.localizer
        vol = self._state.volume
        same_frame = loc is not None and (
            not loc.frame_of_reference_uid
            or loc.frame_of_reference_uid == str(vol.metadata.get("FrameOfReferenceUID") or ""))
        if localizer and same_frame:
            line = reference_line(current, loc.plane)
            if line is not None:
                out.append(("localizer", line))
        return out
