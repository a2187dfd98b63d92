"""Slices medview made up at load are listed in ``metadata["made_up_slices"]`` and said in
every export's description."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from realparts import DATA, require

import medview
from medview.core.labelmap import LabelMap, default_segments
from medview.core.made_up import describe, made_up_note, made_up_slices
from medview.dicom.export.dispatch import export_dicom
from medview.dicom.export.series import write_derived_series
from medview.formats.volume_io import write_volume
from phantoms import write_ct_series

GE = DATA / "dcm_qa_ct" / "In" / "GE"


@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    """A synthetic CT of 8 slices 2 mm apart whose 4th file (at 6 mm) is missing."""
    folder = tmp_path_factory.mktemp("gapped")
    files = write_ct_series(folder, shape=(8, 24, 24), spacing_xyz=(1.0, 1.0, 2.0), seed=11)
    files[3].unlink()
    return medview.load(folder)


def test_a_missing_slice_is_listed_as_interpolated_between_its_neighbours(gapped):
    assert gapped.shape[0] == 8
    assert made_up_slices(gapped.metadata) == (
        (3, "interpolated between acquired slices at 4.0 and 8.0 mm"),)
    # and it is the mean of its neighbours (the one made up), the others are not
    arr = gapped.array.astype(np.int32)
    np.testing.assert_array_equal(arr[3], np.rint((arr[2] + arr[4]) / 2.0))


def test_real_uneven_ct_lists_exactly_the_slices_no_file_lies_on():
    require(GE.is_dir(), f"GE CT with uneven spacing at {GE}")
    ge = medview.load(GE)  # 28 acquired slices, 1.1–7.4 mm apart → 37 on a 4.22 mm grid
    entries = made_up_slices(ge.metadata)
    listed = {z for z, _ in entries}
    assert 0 < len(listed) < ge.shape[0]
    assert all(reason.startswith("interpolated between acquired slices at ")
               for _, reason in entries)
    # every slice not listed is an acquired image, pixel for pixel; every listed one is not
    acquired = {}
    for f in ge.metadata["source_files"]:
        ds = pydicom.dcmread(f)
        k = ge.lps_to_index(np.asarray(ds.ImagePositionPatient, float))[2]
        if abs(k - round(float(k))) < 1e-3:
            acquired[round(float(k))] = ds.pixel_array * float(ds.RescaleSlope) + float(
                ds.RescaleIntercept)
    assert set(range(ge.shape[0])) - listed == set(acquired)
    for z, values in acquired.items():
        np.testing.assert_array_equal(ge.array[z], values)
    assert made_up_note(ge.metadata, ge.shape[0]) == (
        f"{len(listed)} of {ge.shape[0]} slices interpolated")


def test_notes_and_descriptions_fit_dicom_fields():
    meta = {"made_up_slices": ((4, "unreadable file IM5.dcm: truncated"),
                               (1, "interpolated between acquired slices at 2.0 and 6.0 mm"))}
    assert made_up_slices(meta)[0][0] == 1  # sorted by z
    assert made_up_note(meta, 9) == ("1 of 9 slices interpolated; 1 of 9 slices stand-ins for "
                                     "unreadable files")
    long = describe("x" * 80, meta, 9)
    assert len(long) == 64 and long.endswith(" [1/9 interp., 1/9 stand-in]")
    assert describe("Head", {}, 9) == "Head"


def test_nifti_and_seg_of_an_interpolated_series_say_so(gapped, tmp_path):
    path = write_volume(gapped, tmp_path / "ct.nii.gz")
    descrip = nib.load(str(path)).header["descrip"].tobytes().split(b"\0")[0].decode()
    assert descrip.endswith("[1/8 interp.]")
    labels = LabelMap.like(gapped, (gapped.array > 0).astype(np.uint8), default_segments([1]))
    assert labels.metadata["made_up_slices"] == gapped.metadata["made_up_slices"]
    (seg,) = export_dicom(labels, tmp_path / "seg.dcm", source=gapped)
    assert pydicom.dcmread(seg).SeriesDescription == "medview segmentation [1/8 interp.]"


def test_a_derived_series_marks_its_stand_in_slice(tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(5, 16, 16), spacing_xyz=(1.0, 1.0, 2.0), seed=12)
    vol = medview.load(folder)
    marked = vol.with_array(vol.array,
                            made_up_slices=((2, "unreadable file IM0003.dcm: truncated"),))
    files = write_derived_series(marked, tmp_path / "out", source=vol)
    datasets = [pydicom.dcmread(f) for f in files]
    assert datasets[0].SeriesDescription.endswith("[1/5 stand-in]")
    assert "1 of 5 slices stand-ins for unreadable files" in datasets[0].DerivationDescription
    comments = [str(ds.get("ImageComments", "")) for ds in datasets]
    assert comments[2] == "made up by medview: unreadable file IM0003.dcm: truncated"
    assert [bool(c) for c in comments] == [False, False, True, False, False]
