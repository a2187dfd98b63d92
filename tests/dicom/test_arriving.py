"""ArrivingSeries: a series laid out from the positions a PACS lists, filled file by file in
any order, equals the local load slice by slice and on the same grid."""

from __future__ import annotations

import random

import numpy as np
import pydicom
from realparts import DATA

import medview
from medview.dicom.series.arriving import ArrivingSeries

HFS = DATA / "dcm_qa_decubitus/In/HFS"
KITS = DATA / "kits_dupe_positions"


def _listed(files):
    out = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        out[str(ds.SOPInstanceUID)] = (tuple(map(float, ds.ImagePositionPatient)),
                                       tuple(map(float, ds.ImageOrientationPatient)))
    return out


def test_files_in_any_order_land_on_their_slices_and_end_as_the_local_load():
    files = sorted(HFS.rglob("*.dcm"))
    local = medview.load(HFS)
    series = ArrivingSeries.plan(str(local.metadata["SeriesInstanceUID"]), _listed(files))
    assert series is not None and series.volume is None and series.n_slices == 35
    order = files[:]
    random.Random(14).shuffle(order)
    for n, f in enumerate(order, 1):
        k = series.add(f)
        assert k is not None and series.loaded[k] and series.n_loaded == n
        vol = series.volume
        # every slice in holds exactly the local load's slice at that position
        assert np.array_equal(vol.array[k], local.array[k])
        if n == 5:
            assert vol.same_grid(local)  # the grid is right from the first file on
            assert not vol.array[~series.loaded].any()  # the others are still flat
    assert series.failures == []
    assert series.volume.same_grid(local)
    assert np.array_equal(series.volume.array, local.array)


def test_listed_positions_that_are_not_a_plain_stack_wait_for_the_files():
    # KiTS: two slices share a position and others are missing (the local load resamples)
    assert ArrivingSeries.plan("x", _listed(sorted(KITS.glob("*.dcm")))) is None
    files = sorted(HFS.rglob("*.dcm"))
    listed = _listed(files)
    sop = next(iter(listed))
    assert ArrivingSeries.plan("x", {**listed, sop: (None, listed[sop][1])}) is None
    assert ArrivingSeries.plan("x", dict(list(listed.items())[:1])) is None


def test_a_file_off_the_listed_grid_is_refused_not_misplaced(tmp_path):
    files = sorted(HFS.rglob("*.dcm"))
    series = ArrivingSeries.plan("x", _listed(files))
    ds = pydicom.dcmread(files[0])
    ds.ImagePositionPatient = [float(v) + 0.5 * (i == 0) for i, v in
                               enumerate(ds.ImagePositionPatient)]  # half a mm off, along x
    moved = tmp_path / "moved.dcm"
    ds.save_as(moved)
    assert series.add(moved) is None and "not on the listed grid" in series.failures[0][1]
    assert series.n_loaded == 0
