"""Backup verification decodes the checked way: a file or an archive's answer that crashes a
decoder, or lies about its size, fails verification with a reason instead of killing medview."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from medview.dicom.pixels import _sandbox
from medview.pacs._backup_check import fingerprint, fingerprint_file

SERIES = "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"


@pytest.fixture
def slice_file(data_dir):
    return sorted((data_dir / SERIES).iterdir())[7]


@pytest.fixture(autouse=True)
def _no_decoder_process_left():
    yield
    _sandbox.shutdown()


def test_the_same_pixels_give_the_same_fingerprint_from_a_file_or_a_dataset(slice_file,
                                                                             tmp_path):
    local = fingerprint_file(slice_file)
    ds = pydicom.dcmread(slice_file)
    # what an archive may send back: other bytes, the same values
    ds.compress(RLELossless, generate_instance_uid=False)
    assert fingerprint(ds) == local
    changed = pydicom.dcmread(slice_file)
    arr = changed.pixel_array.copy()
    arr[10, 10] += 1
    changed.PixelData = arr.tobytes()
    assert fingerprint(changed).pixels != local.pixels
    assert fingerprint(changed).identity == local.identity


def test_a_decoder_that_aborts_fails_verification_with_the_reason(slice_file, tmp_path):
    ds = pydicom.dcmread(slice_file)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.PhotometricInterpretation = "YBR_FULL_422"  # in-process plugins refuse; GDCM aborts
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    with pytest.raises(ValueError, match=r"cannot decode the pixel data.*SIGABRT"):
        fingerprint_file(bad)
    with pytest.raises(ValueError, match=r"cannot decode the pixel data.*SIGABRT"):
        fingerprint(pydicom.dcmread(bad))    # as if read back from the archive
    assert fingerprint_file(slice_file).pixels   # and the next instance verifies


def test_an_answer_that_lies_about_its_size_is_refused_before_allocating(slice_file):
    ds = pydicom.dcmread(slice_file)
    ds.Rows = 60000
    ds.Columns = 60000   # 7.2 GB declared, 128 KB sent
    with pytest.raises(ValueError, match="cannot decode the pixel data"):
        fingerprint(ds)
    np.testing.assert_array_equal(pydicom.dcmread(slice_file).pixel_array.shape, (256, 256))
