"""Every event of the viewer's models: once on a real change, with ``(new, old)``, never on a
set to the value already there; and the state's operations reach them the same way."""

from __future__ import annotations

import numpy as np
import pytest

from medview.app.layers import LayerList
from medview.app.measurements import Measurement
from medview.app.models import (
    Camera,
    Display,
    Fusion,
    LabelLayers,
    Overlay,
    PlaneCamera,
    Preview,
    SlicePreview,
    Tools,
)
from medview.app.state import ViewerState
from medview.core.labelmap import LabelMap


def _recorder(signal) -> list:
    seen: list = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def _preview(z=0):
    return SlicePreview(z, "image", np.zeros((4, 4), np.float32))


#: (model, field, a new value) for every evented field of every model
FIELDS = [
    (PlaneCamera, "zoom", 2.5),
    (Camera, "cursor", (1, 2, 3)),
    (Display, "window", (40.0, 400.0)),
    (Display, "inverted", True),
    (Display, "colormap", "hot"),
    (Tools, "tool", "distance"),
    (Tools, "edit_target", "scribbles"),
    (Tools, "paint_label", 3),
    (Tools, "brush_mm", 5.0),
    (LabelLayers, "scribbles", "a map"),
    (LabelLayers, "opacity", 0.25),
    (Fusion, "volume", "a volume"),
    (Fusion, "window", (0.0, 10.0)),
    (Fusion, "colormap", "viridis"),
    (Fusion, "opacity", 0.75),
    (Overlay, "opacity", 0.1),
    (Preview, "slice", _preview()),
    (Preview, "visible", False),
]


@pytest.mark.parametrize(("model", "name", "new"), FIELDS,
                         ids=[f"{m.__name__}.{n}" for m, n, _ in FIELDS])
def test_each_field_emits_once_on_a_real_change_with_new_and_old(model, name, new):
    obj = model()
    old = getattr(obj, name)
    seen = _recorder(getattr(obj.events, name))
    anything = _recorder(obj.events.all)
    setattr(obj, name, old)  # no-op
    assert seen == [] and anything == []
    setattr(obj, name, new)
    setattr(obj, name, new)  # no-op again
    assert len(seen) == 1
    assert seen[0][0] is new or seen[0][0] == new
    assert seen[0][1] is old or seen[0][1] == old
    assert len(anything) == 1 and anything[0][0].signal.name == name


def test_fields_holding_objects_compare_by_identity():
    # two previews with equal pixels are two pictures; comparing pixels would cost a redraw
    preview = Preview()
    seen = _recorder(preview.events.slice)
    first, second = _preview(), _preview()
    preview.slice = first
    preview.slice = second
    preview.slice = second
    assert [args[0] for args in seen] == [first, second]


def test_a_plane_reset_is_a_command_with_no_payload():
    camera = PlaneCamera("coronal")
    seen = _recorder(camera.reset)
    camera.reset.emit()
    assert seen == [()]


# -- the layer list: the one record of what is shown ----------------------------------------
def test_layer_list_events(demo_volume):
    layers = LayerList()
    changed = _recorder(layers.layers_changed)
    shown = {name: _recorder(getattr(layers.events, name)) for name in ("volume", "labels",
                                                                           "rgb")}
    layers.set_series(demo_volume)
    assert changed == [()] and len(shown["volume"]) == 1
    assert shown["volume"][0] == (layers.series, None)
    assert shown["labels"] == shown["rgb"] == []  # None before, None after
    lm = LabelMap.like(demo_volume, np.zeros(demo_volume.shape, np.uint8))
    rgb = demo_volume.with_array(np.zeros((*demo_volume.shape, 3), np.uint8),
                                 PhotometricInterpretation="RGB")
    derived = demo_volume.with_array(demo_volume.array * 2)
    new = layers.add_results({"mask": lm, "blend": rgb, "double": derived})
    assert changed == [(), ()]
    mask, blend, double = new
    series = layers.series
    for _ in range(2):  # the second time: already shown, nothing
        layers.show(mask)
        layers.show(blend)
        layers.show(double)
    assert shown["labels"] == [(mask, None)] and shown["rgb"] == [(blend, None)]
    assert shown["volume"][1:] == [(double, series)]
    layers.hide(mask)
    layers.hide(mask)
    assert shown["labels"][-1] == (None, mask) and len(shown["labels"]) == 2
    layers.remove(double)  # the shown volume goes: back to the series
    assert shown["volume"][-1] == (layers.series, double)
    assert changed == [(), (), ()]
    layers.show_value("labels", lm, "Label map")  # the listed layer holding it
    assert layers.labels is mask
    other = LabelMap.like(demo_volume, np.ones(demo_volume.shape, np.uint8))
    layers.show_value("labels", other, "Label map")  # not listed: shown all the same
    assert layers.labels.value is other and layers.labels not in layers.layers
    assert len(shown["labels"]) == 4


# -- the state's operations reach the models -----------------------------------------------
@pytest.fixture
def state(demo_volume) -> ViewerState:
    state = ViewerState()
    state.set_volume(demo_volume)
    return state


def test_opening_a_volume_is_one_event_not_one_per_model(demo_volume):
    state = ViewerState()
    axial_zoom = _recorder(state.planes["axial"].events.zoom)
    state.set_zoom(2.0)  # no volume yet: the zoom of the axial view
    assert axial_zoom == [(2.0, 1.0)]
    quiet = [_recorder(state.camera.events.cursor), _recorder(state.display.events.window),
             *(_recorder(p.events.zoom) for p in state.planes.values()),
             _recorder(state.slice_changed), _recorder(state.work_changed)]
    opened = _recorder(state.volume_changed)
    state.set_volume(demo_volume)
    assert opened == [(demo_volume,)]
    assert all(q == [] for q in quiet)  # cursor, window and zoom came with volume_changed
    assert state.cursor == (demo_volume.shape[2] // 2, demo_volume.shape[1] // 2,
                            demo_volume.shape[0] // 2)
    assert all(p.zoom == 1.0 for p in state.planes.values())
    assert state.window != (0.0, 1.0) and axial_zoom == [(2.0, 1.0)]


def test_window_invert_colormap_through_the_state(state):
    window = _recorder(state.display.events.window)
    inverted = _recorder(state.display.events.inverted)
    colormap = _recorder(state.display.events.colormap)
    old = state.window
    state.set_window(100.0, 50.0)
    state.set_window(100.0, 50.0)
    state.set_window(100.0, 0.0)  # raised to the smallest width: a change of width only
    assert window == [((100.0, 50.0), old), ((100.0, 1.0), (100.0, 50.0))]
    state.toggle_invert()
    state.set_inverted(True)
    assert inverted == [(True, False)]
    state.set_colormap("inferno")
    state.set_colormap("inferno")
    assert colormap == [("inferno", "grey")]
    with pytest.raises(ValueError, match="colormap"):
        state.set_colormap("jet")
    assert colormap == [("inferno", "grey")]


def test_cursor_slice_and_zoom_through_the_state(state):
    cursor = _recorder(state.camera.events.cursor)
    slices = _recorder(state.slice_changed)
    x, y, z = old = state.cursor
    state.set_cursor(x + 1, y, z)  # same slice: the cursor moves, the slice does not
    state.set_cursor(x + 1, y, z)
    state.step_slice(1)
    assert cursor == [((x + 1, y, z), old), ((x + 1, y, z + 1), (x + 1, y, z))]
    assert slices == [(z + 1,)]
    plane = state.native_plane
    zoom = _recorder(state.planes[plane].events.zoom)
    reset = _recorder(state.planes[plane].reset)
    state.set_zoom(3.0)
    state.set_zoom(3.0)
    state.reset_view(plane)
    assert zoom == [(3.0, 1.0), (1.0, 3.0)] and reset == [()]


def test_tools_through_the_state(state):
    seen = {name: _recorder(getattr(state.tools.events, name))
            for name in ("tool", "edit_target", "paint_label", "brush_mm")}
    for _ in range(2):
        state.set_tool("brush")
        state.set_edit_target("scribbles")
        state.set_paint_label(2)
        state.set_brush_mm(7.5)
    assert seen == {"tool": [("brush", "window")], "edit_target": [("scribbles", "labels")],
                    "paint_label": [(2, 1)], "brush_mm": [(7.5, 3.0)]}
    with pytest.raises(ValueError, match="tool"):
        state.set_tool("scalpel")
    with pytest.raises(ValueError, match="from 1"):
        state.set_paint_label(0)
    assert seen["tool"] == [("brush", "window")] and seen["paint_label"] == [(2, 1)]


def test_label_map_through_the_state(state, demo_volume):
    shown = _recorder(state.layers.events.labels)
    edits, stack, work = (_recorder(state.labels_changed), _recorder(state.edit_changed),
                          _recorder(state.work_changed))
    lm = LabelMap.like(demo_volume, np.zeros(demo_volume.shape, np.uint8))
    state.set_labels(lm)
    state.set_labels(lm)  # already shown
    assert len(shown) == 1 and shown[0][0].value is lm and shown[0][1] is None
    assert stack == [()] and work == [("labels",)] and edits == []
    g = state.geometry("axial")
    state.begin_edit("brush")
    assert state.paint("axial", (g.width / 2, g.height / 2)) > 0
    state.end_edit()
    assert edits == [()] and stack == [(), ()] and work == [("labels",), ("labels",)]
    opacity = _recorder(state.label_layers.events.opacity)
    state.set_label_opacity(0.3)
    state.set_label_opacity(0.3)
    assert opacity == [(0.3, 0.5)] and work[-1] == ("labels",) and len(work) == 2
    scribbles = _recorder(state.label_layers.events.scribbles)
    state.set_edit_target("scribbles")
    made = state.new_label_map()
    assert scribbles == [(made, None)] and work[-1] == ("scribbles",)


def test_fusion_overlay_and_preview_through_the_state(state, demo_volume):
    fused = demo_volume.with_array(demo_volume.array.astype(np.float32))
    volume = _recorder(state.fusion_model.events.volume)
    window = _recorder(state.fusion_model.events.window)
    work = _recorder(state.work_changed)
    state.set_fusion(fused, window=(0.0, 100.0))
    assert volume == [(fused, None)] and window == [((0.0, 100.0), (0.0, 1.0))]
    assert work == [("fusion",)]
    for setter, event, value, old in (
            (state.set_fusion_colormap, state.fusion_model.events.colormap, "viridis", "hot"),
            (state.set_fusion_opacity, state.fusion_model.events.opacity, 0.25, 0.5),
            (state.set_overlay_opacity, state.overlay_model.events.opacity, 0.75, 0.5),
            (state.set_preview_visible, state.preview_model.events.visible, False, True)):
        seen = _recorder(event)
        setter(value)
        setter(value)
        assert seen == [(value, old)]
    rgb = demo_volume.with_array(np.zeros((*demo_volume.shape, 3), np.uint8),
                                 PhotometricInterpretation="RGB")
    shown_rgb = _recorder(state.layers.events.rgb)
    state.set_overlay(rgb)
    state.set_overlay(rgb)
    assert len(shown_rgb) == 1 and state.overlay is rgb
    preview = SlicePreview(state.slice_index, "image",
                           np.zeros(demo_volume.shape[1:3], np.float32))
    slices = _recorder(state.preview_model.events.slice)
    state.set_preview(preview)
    state.set_preview(preview)
    assert slices == [(preview, None)]


def test_measurements_and_data_events_through_the_state(state):
    changed, work = _recorder(state.measurements_changed), _recorder(state.work_changed)
    g = state.geometry("axial")
    m = state.add_measurement(Measurement("distance", "axial", state.plane_slice("axial"),
                                          (1, 1), (g.width / 2, g.height / 2)))
    state.remove_measurement(m)
    state.remove_measurement(m)  # gone already: nothing
    assert changed == [(), ()] and work == [("measurements",), ("measurements",)]
    data = _recorder(state.data_changed)
    derived = state.volume.with_array(state.volume.array * 2)
    state.replace_volume(derived, window=(10.0, 20.0))
    assert data == [()] and state.volume is derived and state.window == (10.0, 20.0)
