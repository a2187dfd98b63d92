"""The viewer's plain-Python state and windowing: no Qt needed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from medview.app.state import DRAG_PIXELS_PER_DOUBLING, ViewerState
from medview.app.windowing import (
    CT_PRESETS,
    auto_window,
    default_window,
    initial_windows,
    window_from_header,
)
from medview.core.volume import Volume


def _recorder(event) -> list:
    seen: list = []
    event.connect(lambda *args: seen.append(args))
    return seen


# -- windowing -----------------------------------------------------------------------------
def test_ct_presets_are_the_design_values():
    table = {p.key: (p.name, p.width, p.center) for p in CT_PRESETS}
    assert table == {
        1: ("Brain", 80, 40), 2: ("Subdural", 200, 75), 3: ("Stroke", 40, 40),
        4: ("Lung", 1500, -600), 5: ("Mediastinum", 350, 50), 6: ("Abdomen", 400, 50),
        7: ("Liver", 150, 30), 8: ("Bone", 1800, 400),
    }


def test_auto_window_spans_1_to_99_percentiles():
    values = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    center, width = auto_window(values)
    lo, hi = np.percentile(values, (1, 99))
    assert center == pytest.approx((lo + hi) / 2)
    assert width == pytest.approx(hi - lo)


def test_auto_window_of_a_constant_image_is_usable():
    center, width = auto_window(np.full((3, 4, 4), 7, np.uint16))
    assert (center, width) == (7.0, 1.0)
    with pytest.raises(ValueError, match="low, high"):
        auto_window(np.zeros(3), low=50, high=10)


def test_default_window_mr_is_automatic_ct_from_header(demo_volume, ct_volume):
    assert default_window(demo_volume) == pytest.approx(auto_window(demo_volume.array))
    assert window_from_header(ct_volume) == (40.0, 400.0)
    assert default_window(ct_volume) == (40.0, 400.0)
    no_header = ct_volume.with_array(ct_volume.array, WindowCenter=None, WindowWidth=None)
    assert default_window(no_header) == (50.0, 400.0)  # abdomen


# -- ViewerState ---------------------------------------------------------------------------
@pytest.fixture
def mr_state(demo_volume) -> ViewerState:
    state = ViewerState()
    state.set_volume(demo_volume)
    return state


def test_set_volume_starts_in_the_middle(demo_volume):
    state = ViewerState()
    seen = _recorder(state.volume_changed)
    state.set_volume(demo_volume)
    assert seen == [(demo_volume,)]
    assert state.n_slices == 35
    assert state.slice_index == 17
    assert np.array_equal(state.slice_image(), demo_volume.array[17])
    assert state.zoom == 1.0
    with pytest.raises(TypeError, match="volume"):
        state.set_volume(np.zeros((2, 2, 2)))


def test_slice_steps_clamp_and_emit_only_on_change(mr_state):
    seen = _recorder(mr_state.slice_changed)
    mr_state.step_slice(3)
    mr_state.step_slice(-1)
    mr_state.last_slice()
    mr_state.step_slice(5)  # already at the end: nothing
    mr_state.first_slice()
    mr_state.set_slice(-10)
    assert seen == [(20,), (19,), (34,), (0,)]


def test_window_drag_right_widens_and_up_lowers_the_level(mr_state):
    c0, w0 = mr_state.window
    drag = mr_state.start_window_drag()
    drag.move(DRAG_PIXELS_PER_DOUBLING, 0)
    assert mr_state.window == pytest.approx((c0, 2 * w0))
    drag.move(-DRAG_PIXELS_PER_DOUBLING, 0)
    assert mr_state.window == pytest.approx((c0, w0 / 2))
    drag.move(0, -50)  # up on screen
    assert mr_state.window_center < c0
    assert mr_state.window_width == pytest.approx(w0)
    drag.move(0, 50)  # down
    assert mr_state.window_center > c0


def test_window_width_never_reaches_zero(mr_state):
    drag = mr_state.start_window_drag()
    drag.move(-1e5, 0)
    assert mr_state.window_width >= 1.0
    with pytest.raises(ValueError, match="finite"):
        mr_state.set_window(float("nan"), 10)


def test_presets_on_ct_and_automatic_on_mr(ct_volume, mr_state):
    state = ViewerState()
    state.set_volume(ct_volume)
    assert state.apply_preset(4).name == "Lung"
    assert state.window == (-600.0, 1500.0)
    assert state.window_levels == (-1350.0, 150.0)
    state.apply_preset(8)
    assert state.window == (400.0, 1800.0)

    mr_state.set_window(0, 5)
    assert mr_state.apply_preset(4) is None  # no HU scale on MR: automatic window
    assert mr_state.window == pytest.approx(auto_window(mr_state.volume.array))


def test_reset_restores_window_and_zoom(ct_volume):
    state = ViewerState()
    state.set_volume(ct_volume)
    resets = _recorder(state.planes[state.native_plane].reset)
    state.apply_preset(1)
    state.set_zoom(3.0)
    state.step_slice(2)
    state.reset()
    assert state.window == (40.0, 400.0)
    assert state.zoom == 1.0
    assert state.slice_index == ct_volume.shape[0] // 2 + 2  # reset keeps the slice
    assert resets == [()]


def test_sample_gives_value_and_lps_position(ct_volume):
    state = ViewerState()
    state.set_volume(ct_volume)
    state.set_slice(3)
    sample = state.sample(200, 300)
    assert sample.value == ct_volume.array[3, 300, 200]
    assert sample.units == "HU"
    assert sample.lps == pytest.approx(tuple(ct_volume.index_to_lps((200, 300, 3))))
    assert state.sample(-1, 0) is None
    assert state.sample(0, 512) is None


def test_slice_position_follows_the_slice_normal(demo_volume, mr_state):
    d = demo_volume.direction
    normal = np.cross(d[:, 0], d[:, 1])
    mr_state.set_slice(0)
    p0 = mr_state.slice_position_mm()
    mr_state.set_slice(1)
    assert mr_state.slice_position_mm() - p0 == pytest.approx(
        demo_volume.spacing[2] * float(normal @ d[:, 2]))


def test_state_modules_import_no_qt():
    code = (
        "import sys\n"
        "import medview.app.state, medview.app.windowing, medview.app.models\n"
        "import medview.app.library, medview.app.layers, medview.app.chain_model\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'medview.gui'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_windows_computed_by_the_loader_are_used(demo_volume, ct_volume):
    default, auto = initial_windows(ct_volume)
    assert default == (40.0, 400.0)
    assert auto == pytest.approx(auto_window(ct_volume.array))
    state = ViewerState()
    state.set_volume(ct_volume, window=default, auto=(1.0, 2.0))
    assert state.window == (40.0, 400.0)
    state.auto_window()
    assert state.window == (1.0, 2.0)  # not computed again
    default, auto = initial_windows(demo_volume)
    assert default == auto == pytest.approx(auto_window(demo_volume.array))


def test_fusion_and_labels_must_lie_on_the_series_grid(demo_volume):
    from medview.core.labelmap import LabelMap

    state = ViewerState()
    state.set_volume(demo_volume)
    shifted = Volume(demo_volume.array.astype(np.float32), demo_volume.spacing,
                     tuple(o + 5.0 for o in demo_volume.origin), demo_volume.direction)
    with pytest.raises(ValueError, match="not on the series' grid"):
        state.set_fusion(shifted)
    labels = LabelMap(np.zeros(demo_volume.shape, np.uint8), shifted.spacing, shifted.origin,
                      shifted.direction)
    with pytest.raises(ValueError, match="not on the series' grid"):
        state.set_labels(labels)
    assert state.fusion is None and state.labels is None
    state.set_fusion(demo_volume.with_array(demo_volume.array.astype(np.float32)))
    assert state.fusion is not None
