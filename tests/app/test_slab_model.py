"""The slab model of the views (issue 17): what the reader sets, and the images the views get.

Real CT (KiTS, 0.70 × 0.70 × 2.5 mm: anisotropic) and the gantry-tilted Philips phantom; the
views' images are compared with NumPy on the planes the slab takes and with
:func:`medview.core.reformat.slab.project_slab` turned like the view.
"""

from __future__ import annotations

import numpy as np
import pytest

import medview
from medview.app.planes import PLANES
from medview.app.slab_model import SLAB_MODES, THICKNESS_STEPS_MM
from medview.app.state import ViewerState
from medview.core.reformat.slab import project_slab

PHILIPS = "dcm_qa_ct/In/Philips/S21610/S2010"


@pytest.fixture
def state(ct_volume) -> ViewerState:
    s = ViewerState()
    s.set_volume(ct_volume)
    s.set_cursor(300, 236, 107)
    return s


def test_mode_and_thickness_are_evented_and_checked(state):
    seen = []
    state.slab.model.events.mode.connect(lambda new, old: seen.append(("mode", new)))
    state.slab.model.events.thickness_mm.connect(lambda new, old: seen.append(("t", new)))
    state.slab.set_mode("mip")
    state.slab.set_mode("mip")  # no change, no event
    state.slab.set_thickness(20)
    assert seen == [("mode", "mip"), ("t", 20.0)]
    with pytest.raises(ValueError, match="mode"):
        state.slab.set_mode("max")
    with pytest.raises(ValueError, match="thickness_mm"):
        state.slab.set_thickness(0.0)
    with pytest.raises(ValueError, match="thickness_mm"):
        state.slab.set_thickness(float("nan"))
    assert state.slab.model.thickness_mm == 20.0


def test_the_keyboard_cycles_modes_and_steps_thickness(state):
    modes = [state.slab.cycle_mode() for _ in SLAB_MODES]
    assert modes == [*SLAB_MODES[1:], "off"]
    state.slab.set_thickness(10.0)
    assert state.slab.step_thickness(1) == 15.0
    assert state.slab.step_thickness(-2) == 5.0
    state.slab.set_thickness(7.0)  # between steps: to the next one either way
    assert state.slab.step_thickness(1) == 10.0
    state.slab.set_thickness(THICKNESS_STEPS_MM[-1])
    assert state.slab.step_thickness(1) == THICKNESS_STEPS_MM[-1]


@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
def test_each_view_gets_numpy_on_the_slab_planes(state, ct_volume, mode):
    """10 mm on 2.5 mm axial planes takes 5 planes; on 0.70 mm planes 15 (±7)."""
    state.slab.set_mode(mode)
    state.slab.set_thickness(10.0)
    reduce = {"mip": np.max, "minip": np.min, "average": np.mean}[mode]
    for plane in PLANES:
        g = state.geometry(plane)
        planes = state.slab.planes_taken(plane)
        k = state.plane_slice(plane)
        half = 2 if g.normal == 2 else 7
        assert planes == tuple(range(k - half, k + half + 1)), plane
        stack = np.stack([g.image(ct_volume.array, j) for j in planes])
        want = reduce(stack.astype(np.float64), axis=0)
        got = state.slab.plane_image(plane)
        assert got.shape == (g.height, g.width)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 if mode == "average" else 0)
    assert state.slab.overlay_text() == {"mip": "MIP 10 mm", "minip": "MinIP 10 mm",
                                         "average": "Avg 10 mm"}[mode]


def test_off_gives_the_slice_and_no_text(state, ct_volume):
    state.slab.set_mode("off")
    for plane in PLANES:
        assert np.shares_memory(state.slab.plane_image(plane), ct_volume.array)
        np.testing.assert_array_equal(state.slab.plane_image(plane), state.plane_image(plane))
    assert state.slab.overlay_text() == ""


def test_tilted_stack_views_project_along_the_true_normal(data_dir):
    from realparts import require

    require((data_dir / PHILIPS).is_dir(), f"the Philips tilted CT at {data_dir / PHILIPS}")
    volume = medview.load(data_dir / PHILIPS)
    state = ViewerState()
    state.set_volume(volume)
    state.slab.set_mode("mip")
    state.slab.set_thickness(12.0)
    for plane in PLANES:
        g = state.geometry(plane)
        want = project_slab(volume, axis=g.normal, index=state.plane_slice(plane),
                            thickness_mm=12.0, mode="mip")
        got = state.slab.plane_image(plane)
        np.testing.assert_array_equal(got, g.image(np.expand_dims(want, 2 - g.normal), 0))
    # the axial slab of the tilted stack: 2.37 mm between planes along the true normal,
    # not the 2.5 mm of the sheared z step; 12 mm takes ⌊6 / 2.37⌋ = 2 planes each side
    plan = state.slab.projector().plan(axis=2, index=27, thickness_mm=12.0)
    assert plan.offsets == (-2, -1, 0, 1, 2)
    assert abs(plan.plane_spacing_mm - 2.5 * np.cos(np.radians(18.5))) < 0.01
    assert np.any(plan.shifts != 0)  # shifted sideways: the planes are sheared


def test_new_voxels_are_projected_again(state, ct_volume):
    """A projector result is not kept across a change of the voxels (data_changed)."""
    state.slab.set_mode("mip")
    before = state.slab.plane_image("axial").copy()
    z = state.plane_slice("axial")
    ct_volume.array[z + 1, 10:20, 10:20] += 3000
    try:
        state.notify_data_changed()
        after = state.slab.plane_image("axial")
        np.testing.assert_array_equal(after[10:20, 10:20], ct_volume.array[z + 1, 10:20, 10:20])
        assert np.all(after[10:20, 10:20] > before[10:20, 10:20])
    finally:
        ct_volume.array[z + 1, 10:20, 10:20] -= 3000
