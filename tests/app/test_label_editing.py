"""Label editing on the viewer state (brush, eraser, fill, undo/redo, segments), without Qt."""

from __future__ import annotations

import numpy as np
import pytest
from step_checks import crop

from medview.app.label_editing import LabelEditor
from medview.app.planes import plane_geometry


@pytest.fixture(scope="module")
def ct_crop(ct_volume):
    """12 slices of 256² around the body's middle: seconds, not minutes, to classify."""
    nz = ct_volume.shape[0]
    return crop(ct_volume, slice(nz // 2 - 6, nz // 2 + 6), slice(128, 384), slice(128, 384))


def _disc_voxels(volume, g, k, centre, radius_mm):
    """Voxels (x, y, z) whose displayed pixel centre is within radius_mm of centre."""
    pw, ph = g.pixel_mm
    out = set()
    for row in range(g.height):
        for col in range(g.width):
            du, dv = (col + 0.5 - centre[0]) * pw, (row + 0.5 - centre[1]) * ph
            if du * du + dv * dv <= radius_mm ** 2:
                out.add(g.pixel_to_index(col, row, k))
    return out


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_brush_paints_the_voxels_of_the_view_and_undo_restores(ct_crop, plane):
    labels = np.zeros(ct_crop.shape, dtype=np.uint8)
    g = plane_geometry(plane, ct_crop.shape, ct_crop.spacing, ct_crop.direction)
    ed = LabelEditor(labels)
    k = g.n_slices // 2
    centre = (g.width / 2 + 0.3, g.height / 2 - 0.2)
    ed.begin_stroke("paint")
    n = ed.paint(g, k, centre, 4.0, 3)
    ed.paint(g, k, centre, 4.0, 3)  # the same dab again changes nothing more
    ed.end_stroke()
    painted = {(int(x), int(y), int(z)) for z, y, x in zip(*np.nonzero(labels), strict=True)}
    assert painted == _disc_voxels(ct_crop, g, k, centre, 4.0)
    assert n == len(painted) > 4
    assert np.all(labels[labels > 0] == 3)
    ed.undo()
    assert not labels.any()
    ed.redo()
    assert {(int(x), int(y), int(z))
            for z, y, x in zip(*np.nonzero(labels), strict=True)} == painted


def test_fill_eraser_and_a_stroke_is_one_undo_step(ct_crop):
    labels = np.zeros(ct_crop.shape, dtype=np.uint8)
    g = plane_geometry("axial", ct_crop.shape, ct_crop.spacing, ct_crop.direction)
    ed = LabelEditor(labels)
    k = 5
    # a closed ring of label 1, then fill its inside with 2
    labels[k, 50:100, 50] = labels[k, 50:100, 99] = 1
    labels[k, 50, 50:100] = labels[k, 99, 50:100] = 1
    assert ed.fill(g, k, (70.5, 70.5), 2) == 48 * 48
    assert np.all(labels[k, 51:99, 51:99] == 2) and labels[k, 0, 0] == 0
    assert labels[k - 1].sum() == 0  # only this slice
    ed.begin_stroke("erase")
    for u in range(55, 95, 2):
        ed.paint(g, k, (u + 0.5, 75.5), 1.0, 0)
    ed.end_stroke()
    erased = (labels[k, 51:99, 51:99] == 0).sum()
    assert erased > 20
    ed.undo()  # the whole stroke at once
    assert np.all(labels[k, 51:99, 51:99] == 2)
    ed.undo()  # the fill
    assert (labels[k] == 2).sum() == 0
    with pytest.raises(ValueError, match="label"):
        ed.paint(g, k, (10, 10), 1.0, 300)
