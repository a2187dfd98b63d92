"""An enhanced multi-frame without per-frame functional groups keeps its shared geometry.

Payload: pydicom's real enhanced CT (eCT_Supplemental.dcm, 2 frames of 512×512, pixel spacing
0.388672 mm, slice thickness 10 mm and rescale intercept −1024 in the *shared* groups) with its
Per-frame Functional Groups Sequence removed and the first frame's plane position moved into
the shared groups. Before the fix it loaded on a 1×1 mm grid with stored values. The reference
is the header itself: SimpleITK 2.5 (GDCM) also reads this file as 1×1 mm.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from realparts import require

import medview
from medview.dicom.catalog.db import Catalog


@pytest.fixture
def shared_only(tmp_path):
    from pydicom.data import get_testdata_file

    src = get_testdata_file("eCT_Supplemental.dcm", download=False)
    require(src is not None, "pydicom-data (eCT_Supplemental.dcm)")
    ds = pydicom.dcmread(src)
    first = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient
    del ds.PerFrameFunctionalGroupsSequence
    pos = Dataset()
    pos.ImagePositionPatient = first
    ds.SharedFunctionalGroupsSequence[0].PlanePositionSequence = [pos]
    assert "PixelSpacing" not in ds and "RescaleIntercept" not in ds  # only in shared groups
    out = tmp_path / "enhanced_ct_shared.dcm"
    ds.save_as(out)
    return out, ds


def _check(vol, ds):
    shared = ds.SharedFunctionalGroupsSequence[0]
    row_mm, col_mm = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    thickness = float(shared.PixelMeasuresSequence[0].SliceThickness)
    assert vol.spacing == pytest.approx((col_mm, row_mm, thickness))
    assert (row_mm, col_mm) == pytest.approx((0.388672, 0.388672))  # not 1×1 mm
    iop = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    np.testing.assert_allclose(vol.direction[:, 0], iop[:3], atol=1e-6)
    np.testing.assert_allclose(vol.direction[:, 1], iop[3:], atol=1e-6)
    ipp = [float(v) for v in shared.PlanePositionSequence[0].ImagePositionPatient]
    # the frame at the shared position is one end of the stack
    ends = [np.asarray(vol.origin), np.asarray(vol.origin) + vol.direction[:, 2] * thickness]
    assert min(np.abs(e - ipp).max() for e in ends) < 1e-4
    # HU: the shared Pixel Value Transformation applies (intercept −1024)
    pvt = shared.PixelValueTransformationSequence[0]
    stored = ds.pixel_array.astype(np.float64)
    hu = stored * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
    got = np.asarray(vol.array, dtype=np.float64)
    assert sorted(got.reshape(2, -1).sum(axis=1)) == pytest.approx(
        sorted(hu.reshape(2, -1).sum(axis=1)))


def test_shared_groups_give_spacing_orientation_position_and_rescale(shared_only):
    path, ds = shared_only
    _check(medview.load(path), ds)


def test_shared_groups_survive_the_catalog(shared_only, tmp_path):
    path, ds = shared_only
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([path.parent])
        _check(medview.load(ds.SeriesInstanceUID, catalog=cat), ds)

