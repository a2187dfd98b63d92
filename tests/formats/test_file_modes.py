"""Exported files get the user's normal permissions (umask), not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from realparts import DATA, require

import medview
from medview.atomic import write_bytes_atomic, write_text_atomic
from medview.core.labelmap import LabelMap
from medview.fileperms import current_umask, give_user_mode
from medview.formats.volume_io import write_volume

LIVER = DATA / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice"


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask
    assert os.umask(umask) == umask  # still what the fixture set


def test_text_bytes_and_volumes_get_the_umask_mode(umask, tmp_path):
    want = 0o666 & ~umask
    vol = medview.Volume(np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 2.0))
    written = [write_text_atomic(tmp_path / "a.csv", "x\n"),
               write_bytes_atomic(tmp_path / "b.bin", b"x"),
               write_volume(vol, tmp_path / "c.nii.gz"), write_volume(vol, tmp_path / "d.nrrd"),
               write_volume(vol, tmp_path / "e.mha")]
    assert {p.name: mode(p) for p in written} == {p.name: want for p in written}
    # nothing left behind beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_dicom_seg_and_derived_series_get_the_umask_mode(umask, tmp_path):
    from medview.dicom.export.dispatch import export_dicom

    require(LIVER.is_dir(), f"real CT at {LIVER}")
    ct = medview.load(LIVER)
    arr = np.zeros(ct.shape, np.uint8)
    arr[1, 200:260, 200:260] = 1
    (seg,) = export_dicom(LabelMap.like(ct, arr), tmp_path / "liver.seg.dcm", source=ct)
    assert mode(seg) == 0o666 & ~umask
    files = export_dicom(ct, tmp_path / "derived", source=ct, kind="series")
    assert mode(tmp_path / "derived") == 0o777 & ~umask
    assert files and {mode(f) for f in files} == {0o666 & ~umask}


def test_give_user_mode_widens_a_mkstemp_file(umask, tmp_path):
    import tempfile

    fd, name = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    assert mode(name) == 0o600
    give_user_mode(name)
    assert mode(name) == 0o666 & ~umask
