"""The viewer state's annotations as one set, and its key images, without Qt.

A mixin of :class:`~medview.app.state.ViewerState`. The measurements the views draw are the
one record of the annotations (:mod:`medview.app.annotation_model` converts them for DICOM
SR); the annotations read from a report that lie in no view's slice are kept beside them, so
a save writes them back unchanged. Key images are slices of the acquired plane (voxel z).

Events: ``key_images_changed()`` — a slice was marked or unmarked, or the key images were
read; a reader's mark or unmark also emits ``work_changed("key_images")``.
"""

from __future__ import annotations

from collections.abc import Iterable

from psygnal import Signal

from medview.app.annotation_model import annotation_of, place_annotations
from medview.core.annotations import Annotation

__all__ = ["AnnotationsAndKeyImages"]


class AnnotationsAndKeyImages:
    """Mixed into ViewerState (which calls :meth:`_init_annotations` and
    :meth:`_clear_annotations`)."""

    key_images_changed = Signal()

    def _init_annotations(self) -> None:
        self._key_slices: list[int] = []
        self._kept: list[Annotation] = []

    def _clear_annotations(self) -> None:
        had = bool(self._key_slices)
        self._key_slices, self._kept = [], []
        if had:
            self.key_images_changed.emit()

    # -- annotations -------------------------------------------------------------------
    @property
    def kept_annotations(self) -> tuple[Annotation, ...]:
        """Annotations read from a report that lie in no view's slice (kept for saving)."""
        return tuple(self._kept)

    def annotations(self) -> list[Annotation]:
        """Every finished annotation on the open volume, in patient space and measured:
        what a save writes (shapes still being drawn are left out)."""
        vol = self.volume
        if vol is None:
            return []
        out = list(self._kept)
        for m in self._measurements:
            ann = annotation_of(m, vol, self.geometry(m.plane))
            if ann is not None:
                out.append(ann)
        return out

    def set_annotations(self, annotations: Iterable[Annotation]) -> int:
        """Show ``annotations`` (read from a report) instead of the current ones; returns how
        many lie in no view's slice (kept, not shown). Not the reader's work: no
        ``work_changed``."""
        vol = self.volume
        if vol is None:
            raise ValueError("no volume is open")
        geometries = {name: self.geometry(name) for name in self.planes}
        placed, self._kept = place_annotations(annotations, vol, geometries,
                                               self.native_plane)
        self._measurements = placed
        self.measurements_changed.emit()
        return len(self._kept)

    def edit_measurement(self, m, points) -> None:
        """Give the finished measurement ``m`` new display ``points`` (moved, or a handle
        dragged: :mod:`medview.app.annotation_edit`); its values are measured again and the
        change is the reader's work (``work_changed("measurements")``)."""
        from medview.app.annotation_edit import bounds

        if m not in self._measurements:
            raise ValueError("m: not a measurement of the open volume")
        pts = tuple((float(u), float(v)) for u, v in points)
        if len(pts) != len(m.shape_points()):
            raise ValueError(f"points: {m.kind} has {len(m.shape_points())} points, "
                             f"got {len(pts)}")
        m.points = pts
        m.p0, m.p1 = bounds(m.kind, pts)
        self._measured()

    # -- key images --------------------------------------------------------------------
    @property
    def key_slices(self) -> tuple[int, ...]:
        """The key images: z indices of the acquired plane, in the order they were marked."""
        return tuple(self._key_slices)

    def is_key_slice(self, z: int) -> bool:
        return int(z) in self._key_slices

    def toggle_key_image(self, z: int | None = None) -> bool:
        """Mark slice ``z`` (default: the current one) as a key image, or unmark it; returns
        True when it is marked now.

        Raises
        ------
        ValueError
            If ``z`` is outside the volume, or a slice made up at load (no image to mark).
        """
        if self.volume is None:
            raise ValueError("no volume is open")
        z = self.slice_index if z is None else int(z)
        if not 0 <= z < self.n_slices:
            raise ValueError(f"z: slice {z} is outside 0..{self.n_slices - 1}")
        marked = z not in self._key_slices
        made_up = {int(k) for k, _ in self.volume.metadata.get("made_up_slices", ())}
        if marked and z in made_up:
            raise ValueError(f"slice {z + 1} was made up at load (interpolated): there is no "
                             "acquired image to mark as a key image")
        if marked:
            self._key_slices.append(z)
        else:
            self._key_slices.remove(z)
        self.key_images_changed.emit()
        self.work_changed.emit("key_images")
        return marked

    def set_key_slices(self, slices: Iterable[int]) -> None:
        """The key images read from a document (not the reader's work: no
        ``work_changed``); slices outside the volume are left out."""
        n = self.n_slices
        out: list[int] = []
        for z in slices:
            if 0 <= int(z) < n and int(z) not in out:
                out.append(int(z))
        self._key_slices = out
        self.key_images_changed.emit()

    def step_key_image(self, step: int = 1) -> int | None:
        """Go to the next (``step`` > 0) or previous key image from the current slice, in
        slice order, wrapping around; returns its z, or None when there is none."""
        if not self._key_slices:
            return None
        here = self.slice_index
        ordered = sorted(self._key_slices)
        if step > 0:
            z = next((k for k in ordered if k > here), ordered[0])
        else:
            z = next((k for k in reversed(ordered) if k < here), ordered[-1])
        self.set_slice(z)
        return z
