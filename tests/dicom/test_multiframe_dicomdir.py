"""Enhanced multi-frame files and DICOMDIRs load like the series they hold."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

import medview


def _enhanced(datasets, cls, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom warns about the source's person names
        enh = cls(datasets, series_instance_uid=generate_uid(), series_number=999,
                  sop_instance_uid=generate_uid(), instance_number=1)
    enh.save_as(path)
    return path


@pytest.mark.parametrize(
    ("folder", "kind"),
    [("dcm_qa_ct/In/Philips/S21610/S2010", "CT"),
     ("dcm_qa_decubitus/In/HFDL/2_t1_fl2d_sag", "MR")],
)
def test_enhanced_multiframe_equals_the_classic_series(data_dir, tmp_path, folder, kind):
    from highdicom.legacy import LegacyConvertedEnhancedCTImage, LegacyConvertedEnhancedMRImage

    src = data_dir / folder
    files = [f for f in sorted(src.iterdir()) if f.name != "DIRFILE"]
    datasets = [pydicom.dcmread(f) for f in files]
    # shuffle the frames: the loader must sort them by position, not by frame number
    rng = np.random.default_rng(0)
    datasets = [datasets[i] for i in rng.permutation(len(datasets))]
    cls = LegacyConvertedEnhancedCTImage if kind == "CT" else LegacyConvertedEnhancedMRImage
    enhanced = _enhanced(datasets, cls, tmp_path / "enhanced.dcm")
    header = pydicom.dcmread(enhanced, stop_before_pixels=True)
    assert "PerFrameFunctionalGroupsSequence" in header
    a = medview.load(enhanced)
    b = medview.load(src)
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)
    assert len(set(a.metadata["source_frames"])) == len(files)


def test_dicomdir_loads_its_series(data_dir, tmp_path):
    from media_helpers import make_dicomdir

    src = data_dir / "dcm_qa_decubitus" / "In" / "HFS" / "3_t1_fl2d_sag"
    files = sorted(src.iterdir())[:12]
    dicomdir = make_dicomdir(files, tmp_path / "media")
    assert dicomdir.exists()
    vol = medview.load(dicomdir)
    ref = medview.load(files)
    np.testing.assert_array_equal(vol.array, ref.array)
    np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-6)
