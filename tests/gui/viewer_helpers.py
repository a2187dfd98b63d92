"""A shown SliceViewer on a fresh ViewerState, for widget tests."""

from __future__ import annotations

from medview.core.volume import Volume
from medview.gui.slice_viewer import SliceViewer
from medview.gui.state import ViewerState


def make_viewer(qtbot, volume: Volume | None, size=(640, 640)) -> SliceViewer:
    """A SliceViewer of ``size`` pixels, exposed on screen, showing ``volume`` if given."""
    state = ViewerState()
    viewer = SliceViewer(state)
    qtbot.addWidget(viewer)
    viewer.resize(*size)
    viewer.show()
    qtbot.waitExposed(viewer)
    if volume is not None:
        state.set_volume(volume)
    return viewer
