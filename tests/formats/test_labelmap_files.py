"""Label maps of a real tilted CT → NRRD (sheared grid kept) and NIfTI (orthogonal grid)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from realparts import DATA, require

import medview
from medview.core.labelmap import LabelMap, Segment
from medview.core.registration.resample import resample_to_grid
from medview.formats.results import write_results
from medview.formats.volume_io import read_volume

PHILIPS = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"


@pytest.fixture(scope="module")
def labels():
    require(PHILIPS.is_dir(), f"real CT at {PHILIPS}")
    ct = medview.load(PHILIPS)
    lab = ((ct.array > 20) & (ct.array < 60)).astype(np.uint8)
    lab[ct.array > 300] = 2
    return LabelMap.like(ct, lab, segments=(Segment(1, "Brain"), Segment(2, "Bone")))


def test_nrrd_keeps_the_source_grid_exactly(labels, tmp_path):
    assert labels.is_oblique_stack
    written = write_results({"labels": labels}, "labels", tmp_path / "labels.nrrd")
    back = read_volume(tmp_path / "labels.nrrd")
    assert back.same_grid(labels, atol=1e-4)
    np.testing.assert_array_equal(back.array, labels.array)
    segs = json.loads((tmp_path / "labels.segments.json").read_text())
    assert [s["name"] for s in segs] == ["Brain", "Bone"] and len(written) == 2


def test_nifti_of_a_tilted_label_map_keeps_labels_whole(labels, tmp_path):
    write_results({"labels": labels}, "labels", tmp_path / "labels.nii.gz")
    back = read_volume(tmp_path / "labels.nii.gz")
    assert not back.is_oblique_stack and back.shape != labels.shape
    # nearest neighbour: only the labels that exist, never a blend of 0 and 2 that reads "1"
    assert set(np.unique(back.array)) == {0, 1, 2}
    # every voxel lands where it was: back onto the acquired slices, nearly all agree
    lm = LabelMap(back.array.astype(np.uint8), back.spacing, back.origin, back.direction)
    on_source = resample_to_grid(labels, lm)
    inside = on_source.array > 0
    assert np.mean(on_source.array[labels.array > 0] == labels.array[labels.array > 0]) > 0.97
    assert np.mean(on_source.array[inside] == labels.array[inside]) > 0.97
