"""Thick slabs on screen (issue 17): a voxel inside the slab shows where it lies under MIP
(MinIP) and not without; on a gantry-tilted stack it shows at the foot of its perpendicular.

Real CT (KiTS, anisotropic 0.70 × 0.70 × 2.5 mm; the tilted Philips phantom) with small
blocks of bright (or air-dark) voxels written into a copy: one per view, in a plane of the
slab other than the one shown, and outside the other views' slabs. Each view is grabbed
(QWidget.grab) and the widget pixels over the block's voxels (mapped through the view's own
geometry → ViewBox → viewport, :mod:`viewer_helpers`) are read.
"""

from __future__ import annotations

import numpy as np
import pytest
from realparts import require
from viewer_helpers import display_to_widget, grab_rgb, make_viewer, widget_to_display

import medview
from medview.app.state import ViewerState
from medview.core.reformat.plane import ImagePlane
from medview.core.volume import Volume
from medview.gui.view_grid import ViewGrid

CURSOR = (300, 236, 107)
#: per view, a block (x0, x1, y0, y1, z0, z1) inside its 10 mm slab (not on the slice
#: shown) and outside the other two views' slabs (axial z 105–109, coronal y 229–243,
#: sagittal x 293–307)
BLOCKS = {"axial": (270, 280, 215, 225, 109, 110),
          "coronal": (320, 330, 241, 242, 95, 100),
          "sagittal": (304, 305, 160, 170, 115, 120)}
PHILIPS = "dcm_qa_ct/In/Philips/S21610/S2010"


def _with_blocks(volume: Volume, value: int) -> Volume:
    array = volume.array.copy()
    for x0, x1, y0, y1, z0, z1 in BLOCKS.values():
        array[z0:z1, y0:y1, x0:x1] = value
    # without the made-up-slice marks (KiTS is interpolated onto a uniform grid): their
    # tint over the reformats is not what these tests look at
    meta = {k: v for k, v in volume.metadata.items() if k != "made_up_slices"}
    return Volume(array, volume.spacing, volume.origin, volume.direction, meta)


@pytest.fixture
def grid(app, qtbot):
    state = ViewerState()
    grid = ViewGrid(state)
    qtbot.addWidget(grid)
    grid.resize(1000, 1000)
    grid.show()
    qtbot.waitExposed(grid)
    return grid


def _block_pixels(view, block) -> tuple[np.ndarray, np.ndarray]:
    """Widget pixels (rows, columns) over the voxel centres of ``block``'s inner part (one
    voxel in from its edges), projected on ``view``'s plane."""
    x0, x1, y0, y1, z0, z1 = block
    g = view.geometry_
    pts = []
    for x in range(x0, x1):
        for y in range(y0, y1):
            for z in range(z0, z1):
                ijk = np.array([x, y, z], float)
                inner = [(lo < c < hi - 1) or hi - lo == 1 or k == g.normal
                         for k, (c, lo, hi) in enumerate(zip(ijk, (x0, y0, z0), (x1, y1, z1),
                                                             strict=True))]
                if all(inner):
                    pts.append(display_to_widget(view, *g.index_to_display(ijk)))
    xy = np.floor(np.array(pts)).astype(int)
    return xy[:, 1], xy[:, 0]


def _grey(view) -> np.ndarray:
    return grab_rgb(view)[..., 0].astype(int)


@pytest.mark.parametrize(("mode", "value", "window", "shown", "plain"), [
    ("mip", 3000, (500, 1000), lambda g: g >= 250, lambda g: g <= 100),
    ("minip", -1000, (40, 400), lambda g: g <= 5, lambda g: g >= 100),
])
def test_a_voxel_in_the_slab_shows_on_every_view(grid, qtbot, ct_volume, mode, value, window,
                                                 shown, plain):
    state = grid.state
    state.set_volume(_with_blocks(ct_volume, value))
    grid.set_layout("2x2")
    state.set_cursor(*CURSOR)
    state.set_window(*window)
    for view in grid.views.values():
        view.set_crosshair_visible(False)
    qtbot.waitUntil(lambda: all(v.isVisible() and v.width() > 400 for v in grid.views.values()))
    for name, view in grid.views.items():
        rows, cols = _block_pixels(view, BLOCKS[name])
        assert len(rows) >= 8, name
        state.slab.set_mode("off")
        before = _grey(view)[rows, cols]
        assert np.all(plain(before)), (name, before.min(), before.max())
        state.slab.set_mode(mode)
        state.slab.set_thickness(10.0)
        after = _grey(view)[rows, cols]
        assert np.all(shown(after)), (name, mode, after.min(), after.max())
        # and the other views' blocks, outside this view's slab, do not show
        for other, block in BLOCKS.items():
            if other != name:
                r, c = _block_pixels(view, block)
                inside = (r >= 0) & (r < view.height()) & (c >= 0) & (c < view.width())
                assert not np.all(shown(_grey(view)[r[inside], c[inside]])), (name, other)
        label = {"mip": "MIP 10 mm", "minip": "MinIP 10 mm"}[mode]
        assert label in view.overlays["bottom_left"].text().split("\n")


def test_thinner_than_the_distance_leaves_the_voxel_out(grid, qtbot, ct_volume):
    """The axial block is 5 mm from the slice: a 9 mm slab (±4.5 mm) leaves it out."""
    state = grid.state
    state.set_volume(_with_blocks(ct_volume, 3000))
    state.set_cursor(*CURSOR)
    state.set_window(500, 1000)
    view = grid.views["axial"]
    view.set_crosshair_visible(False)
    rows, cols = _block_pixels(view, BLOCKS["axial"])
    state.slab.set_mode("mip")
    state.slab.set_thickness(9.0)
    assert np.all(_grey(view)[rows, cols] <= 100)
    state.slab.set_thickness(10.0)
    assert np.all(_grey(view)[rows, cols] >= 250)


def test_on_a_tilted_stack_the_voxel_shows_at_its_perpendicular_foot(app, qtbot, data_dir):
    """Philips phantom, 18.5° tilt: a block two planes (4.7 mm along the normal) from the
    slice shown lands where its perpendicular meets the plane, not where the sheared voxel
    axis does (3.3 voxels apart)."""
    require((data_dir / PHILIPS).is_dir(), f"the Philips tilted CT at {data_dir / PHILIPS}")
    volume = medview.load(data_dir / PHILIPS)
    k = 27
    array = volume.array.copy()
    array[k + 2, 295:305, 250:260] = 3000
    tilted = Volume(array, volume.spacing, volume.origin, volume.direction,
                    dict(volume.metadata))
    viewer = make_viewer(qtbot, tilted)
    state = viewer.state
    state.set_cursor(256, 256, k)
    state.set_window(500, 1000)
    state.set_zoom(3.0)  # 3 screen pixels a voxel
    viewer.view_box.setRange(xRange=(230 * 0.4824, 280 * 0.4824),
                             yRange=(275 * 0.4824, 325 * 0.4824), padding=0)
    viewer.set_crosshair_visible(False)
    state.slab.set_mode("mip")
    state.slab.set_thickness(12.0)
    grey = _grey(viewer)
    rows, cols = np.nonzero(grey >= 250)
    assert len(rows) > 100
    u, v = widget_to_display(viewer, cols + 0.5, rows + 0.5)
    centroid = np.array([u.mean(), v.mean()])
    g = viewer.geometry_
    plane = ImagePlane.from_volume_slice(tilted, axis=2, index=k, horizontal=g.horizontal,
                                         vertical=g.vertical)
    foot = np.array(plane.lps_to_display(tilted.index_to_lps([254.5, 299.5, k + 2.0])))
    naive = np.array([255.0, 300.0])  # display point of the block's centre, z dropped
    assert np.linalg.norm(naive - foot) > 2.5  # the test tells the two apart
    assert np.linalg.norm(centroid - foot) < 0.75, (centroid, foot, naive)
    state.slab.set_mode("off")
    assert (_grey(viewer) >= 250).sum() == 0
