"""Real volumes and a tiny synthetic CT shared by the tests of medview.core.

Each real volume is loaded once per test module (module scope). A module picks its crop by a
module-level constant of (z, y, x) slices — ``CT_SLICE_CROP``, ``HEAD_CROP``, ``MR_CROP``,
``LIVER_CROP``; without one the fixture is the whole volume.
"""

from __future__ import annotations

import pytest
from step_checks import crop, tiny_volume

import medview
from medview.core.volume import Volume

CT2 = "kits_dupe_positions/CT2.dcm"  # one acquired abdominal CT slice
HEAD_CT = "dcm_qa_ct/In/Philips/S21610/S2010"  # CT head phantom, gantry-tilted: a sheared grid
MR = "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"
CT3 = "dcmqi_seg/data/segmentations/ct-3slice"


def _cropped(request, vol: Volume, name: str) -> Volume:
    slices = getattr(request.module, name, None)
    return vol if slices is None else crop(vol, *slices)


@pytest.fixture(scope="module")
def ct_slice(request, data_dir) -> Volume:
    """Real abdominal CT, one acquired slice (int16 HU, 0.70 mm pixels, 512²), the module's
    CT_SLICE_CROP of it."""
    return _cropped(request, medview.load([data_dir / CT2]), "CT_SLICE_CROP")


@pytest.fixture(scope="module")
def head(request, data_dir) -> Volume:
    """CT head phantom (gantry-tilted stack, 0.48 × 0.48 × 2.5 mm), the module's HEAD_CROP."""
    return _cropped(request, medview.load(data_dir / HEAD_CT), "HEAD_CROP")


@pytest.fixture(scope="module")
def mr(request, data_dir) -> Volume:
    """Real sagittal T1 MR (uint16, 1.02 × 1.02 × 4.8 mm, 35 slices), the module's MR_CROP."""
    return _cropped(request, medview.load(data_dir / MR), "MR_CROP")


@pytest.fixture(scope="module")
def liver(request, data_dir) -> Volume:
    """Real liver CT, 3 slices of 0.81 × 0.81 × 1.0 mm, the module's LIVER_CROP."""
    return _cropped(request, medview.load(data_dir / CT3), "LIVER_CROP")


@pytest.fixture(scope="module")
def ct3(data_dir) -> Volume:
    """Real liver CT with lung bases, 3×512×512 int16 HU (the whole of ``liver``)."""
    return medview.load(data_dir / CT3)


@pytest.fixture(scope="module")
def tiny() -> Volume:
    """5 × 28 × 32 int16 CT-like voxels of 0.7 × 0.8 × 1.0 mm, oblique direction."""
    return tiny_volume()
