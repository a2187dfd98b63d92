"""Series side by side, synchronised by patient position, without Qt.

A :class:`Comparison` holds panes, each with its own
:class:`~medview.app.state.ViewerState` (one per shown series). Pane 0 is the reference:
every other pane has a :class:`Link` that says how its patient positions (LPS, mm) map
onto the reference's:

- ``"position"``: the series share a Frame of Reference, so the same LPS is the same place
  (the identity);
- ``"registration"``: a rigid registration of the pane's series onto the reference's (the
  registered step ``fuse.register_rigid``, run by :mod:`medview.app.compare_jobs`);
- ``"offset"``: a translation the reader set once by aligning the slices shown now
  (:meth:`Comparison.link_here`);
- ``"off"``: not synchronised.

While linked, moving the crosshair (scrolling) in one pane moves every other linked pane
to the voxel nearest to the same patient position; a window change is copied to the linked
panes of the same modality (values of one modality compare: HU, or the same MR sequence);
zoom and pan are copied by the views through :meth:`Comparison.map_lps` (the pan lives in
the Qt view box). Each link's ``window`` flag switches the window part alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal, evented

from medview.app.state import ViewerState
from medview.core.volume import Volume

__all__ = ["LINK_MODES", "Comparison", "Link", "Pane", "frame_of_reference",
           "offset_transform", "same_frame"]

#: How a pane is tied to the reference pane, in the order a menu offers them.
LINK_MODES = ("position", "registration", "offset", "off")

_IDENTITY = tuple(tuple(float(v) for v in row) for row in np.eye(4))


def _as_matrix(m) -> tuple[tuple[float, ...], ...]:
    a = np.asarray(m, dtype=float)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"transform: expected a finite 4×4 matrix, got shape {a.shape}")
    return tuple(tuple(float(v) for v in row) for row in a)


@evented
@dataclass(eq=False)
class Link:
    """How one pane follows the reference pane.

    ``to_reference`` is the 4×4 matrix (homogeneous LPS, mm) from this pane's patient
    positions to the reference pane's. ``registered`` is the matrix a registration gave
    (kept when the reader switches to another mode and back). Events:
    ``events.<field>(new, old)``.
    """

    mode: str = "off"
    to_reference: tuple = _IDENTITY
    window: bool = True
    registered: tuple | None = None
    #: why the mode is what it is (e.g. "different frames of reference: register or link
    #: here"), for the pane's header
    note: str = ""


@dataclass(eq=False)
class Pane:
    """One series of the comparison: its viewer state and its link."""

    state: ViewerState = field(default_factory=ViewerState)
    link: Link = field(default_factory=Link)
    #: the catalog series shown ("" until one is)
    series_uid: str = ""

    @property
    def volume(self) -> Volume | None:
        return self.state.volume


def frame_of_reference(volume: Volume | None) -> str:
    """The Frame of Reference UID of ``volume`` ("" when unknown)."""
    return "" if volume is None else str(volume.metadata.get("FrameOfReferenceUID") or "")


def same_frame(a: Volume | None, b: Volume | None) -> bool:
    """True when ``a`` and ``b`` declare the same Frame of Reference (and both declare one)."""
    fa, fb = frame_of_reference(a), frame_of_reference(b)
    return bool(fa) and fa == fb


def offset_transform(reference_lps, pane_lps) -> np.ndarray:
    """The translation that takes ``pane_lps`` onto ``reference_lps`` (4×4)."""
    m = np.eye(4)
    m[:3, 3] = np.asarray(reference_lps, dtype=float) - np.asarray(pane_lps, dtype=float)
    return m


class Comparison:
    """Panes side by side, the reference first; see the module's text.

    Events
    ------
    panes_changed()
        A pane was added or removed.
    link_changed(int)
        The link of pane ``index`` changed (mode, transform or window flag).
    """

    panes_changed = Signal()
    link_changed = Signal(int)

    def __init__(self, n_panes: int = 2):
        self.panes: list[Pane] = []
        self._syncing = False
        for _ in range(max(1, int(n_panes))):
            self.add_pane()

    # -- panes -------------------------------------------------------------------------
    def add_pane(self) -> Pane:
        """A new empty pane at the end."""
        pane = Pane()
        self.panes.append(pane)
        pane.state.camera.events.cursor.connect(lambda *_: self._on_cursor(pane))
        pane.state.display.events.window.connect(lambda *_: self._on_window(pane))
        pane.state.volume_changed.connect(lambda *_: self._on_volume(pane))
        pane.link.events.all.connect(lambda *_: self.link_changed.emit(self.index(pane)))
        self.panes_changed.emit()
        return pane

    def set_pane_count(self, n: int) -> None:
        """Keep ``n`` panes (at least one): new ones empty, the last ones dropped."""
        n = max(1, int(n))
        changed = False
        while len(self.panes) > n:
            self.panes.pop()
            changed = True
        if changed:
            self.panes_changed.emit()
        while len(self.panes) < n:
            self.add_pane()

    def index(self, pane: Pane) -> int:
        return next(i for i, p in enumerate(self.panes) if p is pane)

    @property
    def reference(self) -> Pane:
        return self.panes[0]

    def show(self, index: int, volume: Volume | None, *, series_uid: str = "",
             window: tuple[float, float] | None = None) -> None:
        """Show ``volume`` in pane ``index`` (its link is chosen again: :meth:`auto_link`)."""
        pane = self.panes[index]
        pane.series_uid = series_uid or (
            "" if volume is None else str(volume.metadata.get("SeriesInstanceUID") or ""))
        pane.state.set_volume(volume, window=window)

    def _on_volume(self, pane: Pane) -> None:
        if pane is self.reference:
            for other in self.panes[1:]:
                self.auto_link(self.index(other))
        else:
            self.auto_link(self.index(pane))
        if pane is not self.reference and pane.link.mode != "off":
            self.sync_from(self.reference)

    # -- links -------------------------------------------------------------------------
    def auto_link(self, index: int) -> str:
        """Link pane ``index`` the best way known now: by position when its series shares
        the reference's Frame of Reference, else off (until registered or linked here).
        Returns the mode."""
        pane = self.panes[index]
        if index == 0:
            self._set_link(pane, "position", _IDENTITY, note="reference")
        elif pane.volume is None or self.reference.volume is None:
            self._set_link(pane, "off", _IDENTITY, note="")
        elif same_frame(pane.volume, self.reference.volume):
            self._set_link(pane, "position", _IDENTITY, note="same frame of reference")
        else:
            self._set_link(pane, "off", _IDENTITY, registered=None,
                           note="another frame of reference: register, or link here")
        return pane.link.mode

    def _set_link(self, pane: Pane, mode: str, matrix, *, note: str,
                  registered=False) -> None:
        link = pane.link
        # the transform before the mode: a listener of the mode sees the new transform
        link.to_reference = _as_matrix(matrix)
        link.note = note
        if registered is not False:
            link.registered = registered
        link.mode = mode

    def set_mode(self, index: int, mode: str) -> None:
        """Switch pane ``index``'s link to ``mode`` (one of :data:`LINK_MODES`).

        Raises
        ------
        ValueError
            For an unknown mode, for ``"position"`` across frames of reference, for
            ``"registration"`` before a registration is known, or for the reference pane.
        """
        if mode not in LINK_MODES:
            raise ValueError(f"mode: expected one of {LINK_MODES}, got {mode!r}")
        if index == 0:
            raise ValueError("the reference pane (0) is what the others follow")
        pane = self.panes[index]
        if mode == "position":
            if not same_frame(pane.volume, self.reference.volume):
                raise ValueError(
                    "these series have different frames of reference: the same patient "
                    "position is not the same place; register them or link here")
            self._set_link(pane, mode, _IDENTITY, note="same frame of reference")
        elif mode == "registration":
            if pane.link.registered is None:
                raise ValueError("no registration of this pair yet: register first")
            self._set_link(pane, mode, pane.link.registered, note="rigid registration")
        elif mode == "offset":
            self.link_here(index)
            return
        else:
            self._set_link(pane, "off", pane.link.to_reference, note="not linked")
        self.sync_from(self.reference)

    def set_registration(self, index: int, fixed_to_moving) -> None:
        """Link pane ``index`` by a rigid registration: ``fixed_to_moving`` is the 4×4
        matrix from the reference's LPS to this pane's (as ``fuse.register_rigid`` gives)."""
        m = np.asarray(_as_matrix(fixed_to_moving))
        to_ref = _as_matrix(np.linalg.inv(m))
        self._set_link(self.panes[index], "registration", to_ref,
                       note="rigid registration", registered=to_ref)
        self.sync_from(self.reference)

    def link_here(self, index: int) -> None:
        """"Link here": the slices shown now are the same place; from now on pane
        ``index`` follows by this offset (a translation)."""
        pane, ref = self.panes[index], self.reference
        if index == 0 or pane.volume is None or ref.volume is None:
            raise ValueError("link here needs a series in the reference pane and in this one")
        # the reference's position mapped through nothing: a pure translation between the
        # two crosshairs (the voxels shown now)
        m = offset_transform(ref.state.cursor_lps(), pane.state.cursor_lps())
        self._set_link(pane, "offset", m, note="offset set by hand")

    def set_window_link(self, index: int, on: bool) -> None:
        self.panes[index].link.window = bool(on)

    # -- mapping -----------------------------------------------------------------------
    def to_reference(self, index: int, lps) -> np.ndarray:
        """Patient position ``lps`` of pane ``index`` in the reference pane's LPS."""
        m = np.asarray(self.panes[index].link.to_reference, dtype=float)
        return (m @ np.append(np.asarray(lps, dtype=float), 1.0))[:3]

    def from_reference(self, index: int, lps) -> np.ndarray:
        """Reference position ``lps`` in pane ``index``'s LPS."""
        m = np.linalg.inv(np.asarray(self.panes[index].link.to_reference, dtype=float))
        return (m @ np.append(np.asarray(lps, dtype=float), 1.0))[:3]

    def map_lps(self, source: int, target: int, lps) -> np.ndarray:
        """Patient position ``lps`` of pane ``source`` in pane ``target``'s LPS."""
        return self.from_reference(target, self.to_reference(source, lps))

    def linked(self, index: int) -> bool:
        pane = self.panes[index]
        return pane.volume is not None and (index == 0 or pane.link.mode != "off")

    def linked_panes(self, index: int) -> list[int]:
        """The other panes that follow pane ``index`` (none when it is not linked)."""
        if not self.linked(index):
            return []
        return [i for i in range(len(self.panes)) if i != index and self.linked(i)]

    # -- synchronising -----------------------------------------------------------------
    def sync_from(self, pane: Pane) -> None:
        """Move every pane linked to ``pane`` to ``pane``'s crosshair position."""
        self._on_cursor(pane)

    def _on_cursor(self, pane: Pane) -> None:
        if self._syncing or pane not in self.panes:
            return
        source = self.index(pane)
        targets = self.linked_panes(source)
        if not targets:
            return
        lps = pane.state.cursor_lps()
        self._syncing = True  # the panes moved here must not move the others back
        try:
            for i in targets:
                self.panes[i].state.set_cursor_lps(self.map_lps(source, i, lps))
        finally:
            self._syncing = False

    def _on_window(self, pane: Pane) -> None:
        if self._syncing or pane not in self.panes or not pane.link.window:
            return
        source = self.index(pane)
        modality = pane.state.modality
        self._syncing = True
        try:
            for i in self.linked_panes(source):
                other = self.panes[i]
                if other.link.window and other.state.modality == modality \
                        and not other.volume.is_rgb:
                    other.state.set_window(*pane.state.window)
        finally:
            self._syncing = False

    def set_own_window(self, index: int, window: tuple[float, float] | str) -> None:
        """Give pane ``index`` a window of its own without copying it to the linked panes:
        ``(center, width)`` or ``"auto"`` (its 1–99 % range), as a layout rule opens each
        series (MR values differ from series to series)."""
        state = self.panes[index].state
        self._syncing = True
        try:
            if window == "auto":
                state.auto_window()
            else:
                state.set_window(*window)
        finally:
            self._syncing = False

    def distance_mm(self, source: int, target: int) -> float:
        """How far pane ``target``'s crosshair is from where pane ``source``'s maps to (mm):
        at most about half a voxel diagonal when synchronised inside both volumes."""
        lps = self.map_lps(source, target, self.panes[source].state.cursor_lps())
        return float(np.linalg.norm(self.panes[target].state.cursor_lps() - lps))
