"""The viewer's evented models, one per concern, without Qt.

Each model is a dataclass made evented by :func:`psygnal.evented`: assigning a field emits
``model.events.<field>(new, old)`` once when the value really changes and not at all when it
is set to what it already is; ``model.events.all`` announces any field. Widgets bind to
these events and never keep a second copy of the values.
:class:`~medview.app.state.ViewerState` composes the models, checks what is assigned (a
window width above zero, a known tool…) and offers the operations (scroll, window drag,
paint) as methods.

Fields that hold arrays or volumes compare by identity (``is``): comparing voxels on every
assignment would cost as much as drawing them, and a new object is a new picture.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal, evented

from medview.app.planes import PLANES
from medview.app.windowing import CT_PRESETS, WindowPreset, is_ct
from medview.core.labelmap import LabelMap
from medview.core.volume import Volume

__all__ = ["COLORMAPS", "Camera", "Display", "Fusion", "LabelLayers", "Overlay",
           "PlaneCamera", "Preview", "SlicePreview", "Tools"]

#: Colour maps for grey volumes (PET reads best in "hot"); label maps have their own colours.
COLORMAPS = ("grey", "hot", "inferno", "viridis")


@dataclass(frozen=True)
class SlicePreview:
    """A processed version of one slice of the acquired plane, shown over it (the chain
    panel's live preview).

    ``kind`` is ``"labels"`` (``image`` holds label numbers drawn with ``segments``' colours
    at the label opacity), ``"image"`` (grey, shown with ``levels``) or ``"rgb"``.
    """

    z: int
    kind: str
    image: np.ndarray
    segments: tuple = ()
    levels: tuple[float, float] | None = None


@evented
@dataclass(eq=False)
class PlaneCamera:
    """What one view (axial, coronal or sagittal) keeps of its own: its zoom.

    Events: ``events.zoom(new, old)``; ``reset()`` asks the view to fit its slice again
    (zoom 1, no pan; the pan lives in the view box).
    """

    name: str = "axial"
    #: zoom factor relative to the whole slice fitting the view (1)
    zoom: float = 1.0
    reset = Signal()


@evented
@dataclass(eq=False)
class Camera:
    """The crosshair every view passes through, and each view's camera (:attr:`planes`).

    ``cursor`` is a voxel index ``(x, y, z)``: each view shows the slice through it
    perpendicular to its normal. Events: ``events.cursor(new, old)``.
    """

    cursor: tuple[int, int, int] = (0, 0, 0)
    planes: dict[str, PlaneCamera] = field(
        default_factory=lambda: {name: PlaneCamera(name) for name in PLANES})


@evented
@dataclass(eq=False)
class Display:
    """How grey values become screen grey: the window, black/white inverted, colour map.

    ``window`` is ``(center, width)``. Events: ``events.window``, ``events.inverted``,
    ``events.colormap`` (each ``(new, old)``).
    """

    window: tuple[float, float] = (0.0, 1.0)
    inverted: bool = False
    colormap: str = "grey"

    @property
    def levels(self) -> tuple[float, float]:
        """``(low, high)``: the values shown black and white."""
        center, width = self.window
        return center - width / 2.0, center + width / 2.0

    @staticmethod
    def presets_for(volume: Volume | None) -> tuple[WindowPreset, ...]:
        """The presets that make sense for ``volume`` (the CT ones on CT)."""
        return CT_PRESETS if volume is not None and is_ct(volume) else ()


@evented
@dataclass(eq=False)
class Tools:
    """What a left drag does and what the brush paints.

    ``tool`` is one of :data:`medview.app.state.TOOLS`, ``edit_target`` "labels" (the
    segmentation overlay) or "scribbles" (the classifier's), ``paint_label`` the label
    number painted, ``brush_mm`` the brush radius. Events: ``events.<field>(new, old)``.
    """

    tool: str = "window"
    edit_target: str = "labels"
    paint_label: int = 1
    brush_mm: float = 3.0


@evented(equality_operators={"scribbles": operator.is_})
@dataclass(eq=False)
class LabelLayers:
    """How label maps are drawn, and the classifier's scribbles drawn over them.

    The label-map overlay itself is a layer (:attr:`medview.app.layers.LayerList.labels`).
    Events: ``events.scribbles`` (a map was set: a new object), ``events.opacity``. Voxels
    painted in place are announced by the state's ``labels_changed``.
    """

    scribbles: LabelMap | None = None
    opacity: float = 0.5


@evented(equality_operators={"volume": operator.is_})
@dataclass(eq=False)
class Fusion:
    """A second series on the grid of the open one, shown in colour over it.

    ``window`` is ``(low, high)`` of its values mapped to the colour map's ends.
    """

    volume: Volume | None = None
    window: tuple[float, float] = (0.0, 1.0)
    colormap: str = "hot"
    opacity: float = 0.5


@evented
@dataclass(eq=False)
class Overlay:
    """How the RGB layer (:attr:`medview.app.layers.LayerList.rgb`, a chain's colour result)
    is blended over the views."""

    opacity: float = 0.5


@evented(equality_operators={"slice": operator.is_})
@dataclass(eq=False)
class Preview:
    """The chain panel's live preview of one slice, and whether it is shown (False while
    the user compares with the original slice)."""

    slice: SlicePreview | None = None
    visible: bool = True
