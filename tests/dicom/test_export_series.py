"""Derived volume → new DICOM series on real CT and MR: dciodvfy, re-import, references."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import DATA, require

import medview
from medview.core.volume import Volume
from medview.dicom.export._common import ExportError
from medview.dicom.export.series import choose_rescale, write_derived_series

PHILIPS = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"  # tilted CT, 54 slices
LIVER = DATA / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice"
MR_HFDL = DATA / "dcm_qa_decubitus" / "In" / "HFDL"  # sagittal T1, decubitus left


def _load(folder):
    require(folder.is_dir(), f"real series at {folder}")
    return medview.load(folder)


@pytest.fixture(scope="module")
def philips():
    return _load(PHILIPS)


def assert_same_place(back: Volume, vol: Volume) -> None:
    """Every voxel of ``back`` is at the patient position of the same voxel of ``vol``."""
    assert back.shape == vol.shape
    nz, ny, nx = vol.shape
    corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)])
    np.testing.assert_allclose(back.index_to_lps(corners), vol.index_to_lps(corners), atol=1e-3)


def check_series(files, vol: Volume, source: Volume) -> list[pydicom.Dataset]:
    headers = []
    for f in files:
        assert_valid_dicom(f)
        headers.append(pydicom.dcmread(f, stop_before_pixels=True))
    h0 = headers[0]
    assert list(h0.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert h0.StudyInstanceUID == source.metadata["StudyInstanceUID"]
    assert h0.FrameOfReferenceUID == source.metadata["FrameOfReferenceUID"]
    assert h0.PatientID == source.metadata["PatientID"]
    assert str(h0.PatientName) == str(source.metadata["PatientName"])
    assert h0.SeriesInstanceUID != source.metadata["SeriesInstanceUID"]
    assert {h.SeriesInstanceUID for h in headers} == {h0.SeriesInstanceUID}
    sops = {h.SOPInstanceUID for h in headers}
    assert len(sops) == len(files) and not sops & set(source.metadata["source_sop_instance_uids"])
    return headers


def test_float_volume_of_a_tilted_ct_reimports_in_place(philips, tmp_path):
    from medview.core.filters.smoothing import gaussian

    smooth = gaussian(philips, sigma_mm=1.0)
    assert smooth.array.dtype == np.float32 and philips.is_oblique_stack
    files = write_derived_series(smooth, tmp_path / "smooth")
    assert len(files) == philips.shape[0] and all(f.parent == tmp_path / "smooth" for f in files)
    headers = check_series(files, smooth, philips)
    # slice k was derived from source slice k
    uids = philips.metadata["source_sop_instance_uids"]
    assert [h.SourceImageSequence[0].ReferencedSOPInstanceUID for h in headers] == list(uids)
    slope = float(headers[0].RescaleSlope)
    assert 0 < slope < 0.1 and headers[0].RescaleType == "HU"

    back = medview.load(tmp_path / "smooth")
    assert back.is_oblique_stack
    assert_same_place(back, smooth)
    np.testing.assert_allclose(back.array, smooth.array, atol=slope / 2 + 1e-3)


def test_integer_volume_is_stored_exactly(tmp_path):
    liver = _load(LIVER)

    derived = liver.with_array(np.clip(liver.array, -200, 400).astype(np.int16))
    files = write_derived_series(derived, tmp_path / "clipped", series_description="clipped",
                                 series_number=77)
    headers = check_series(files, derived, liver)
    assert (headers[0].SeriesDescription, headers[0].SeriesNumber) == ("clipped", 77)
    assert float(headers[0].RescaleSlope) == 1.0 and float(headers[0].RescaleIntercept) == 0
    back = medview.load(tmp_path / "clipped")
    assert_same_place(back, derived)
    np.testing.assert_array_equal(back.array, derived.array)


def test_sagittal_mr_in_decubitus(tmp_path):
    mr = _load(MR_HFDL)
    derived = mr.with_array(mr.array.astype(np.float32) * 0.37 + 5.5)
    files = write_derived_series(derived, tmp_path / "mr")
    headers = check_series(files, derived, mr)
    assert headers[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert list(headers[0].ImageType) == ["DERIVED", "SECONDARY", "OTHER"]
    # what dciodvfy still says: float MR values need a rescale, which the MR IOD lacks
    warnings = assert_valid_dicom(files[0])
    assert not any("Unrecognized defined term" in w for w in warnings), warnings
    assert headers[0].PatientPosition == pydicom.dcmread(
        mr.metadata["source_files"][0], stop_before_pixels=True).PatientPosition
    back = medview.load(tmp_path / "mr")
    assert_same_place(back, derived)
    np.testing.assert_allclose(back.array, derived.array,
                               atol=float(headers[0].RescaleSlope) / 2 + 1e-3)


def test_a_cropped_volume_references_the_slices_it_came_from(philips, tmp_path):
    part = Volume(philips.array[10:20, 100:300, 50:450].astype(np.float32),
                  philips.spacing, philips.index_to_lps((50, 100, 10)), philips.direction,
                  philips.metadata)
    files = write_derived_series(part, tmp_path / "crop")
    headers = check_series(files, part, philips)
    uids = philips.metadata["source_sop_instance_uids"][10:20]
    assert [h.SourceImageSequence[0].ReferencedSOPInstanceUID for h in headers] == list(uids)
    assert_same_place(medview.load(tmp_path / "crop"), part)


def test_refusals(philips, tmp_path):
    rgb = Volume(np.zeros((2, 4, 4, 3), np.uint8), metadata=philips.metadata)
    with pytest.raises(ExportError, match="RGB"):
        write_derived_series(rgb, tmp_path / "rgb")
    plain = Volume(philips.array[:3], philips.spacing, philips.origin, philips.direction)
    with pytest.raises(ExportError, match="does not come from a DICOM series"):
        write_derived_series(plain, tmp_path / "plain")
    with pytest.raises(ValueError, match="NaN"):
        write_derived_series(philips.with_array(np.full(philips.shape, np.nan, np.float32)),
                             tmp_path / "nan")
    assert not any(tmp_path.iterdir())


def test_never_overwrites_silently_and_a_failure_leaves_nothing(philips, tmp_path, monkeypatch):
    target = tmp_path / "series"
    target.mkdir()
    (target / "old.dcm").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_derived_series(philips, target)
    assert [p.name for p in target.iterdir()] == ["old.dcm"]

    real_write = pydicom.dcmwrite
    calls = []

    def failing_write(filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 10:
            raise OSError("disk full (injected)")
        return real_write(filename, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmwrite", failing_write)
    with pytest.raises(OSError, match="injected"):
        write_derived_series(philips, tmp_path / "new")
    with pytest.raises(OSError, match="injected"):
        calls.clear()
        write_derived_series(philips, target, overwrite=True)
    monkeypatch.undo()
    assert len(calls) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]
    assert [p.name for p in target.iterdir()] == ["old.dcm"]

    files = write_derived_series(philips, target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_choose_rescale_covers_the_range():
    values = np.array([-0.5, 0.0, 1234.567, 3.25], np.float32)
    dtype, slope, intercept = choose_rescale(values)
    stored = np.rint((values - intercept) / slope)
    assert dtype == np.int16 and stored.min() >= -32768 and stored.max() <= 32767
    np.testing.assert_allclose(stored * slope + intercept, values, atol=slope / 2 + 1e-6)
    assert choose_rescale(np.array([0, 60000], np.int32))[0] == np.uint16


def test_series_resampled_at_load_is_written_on_its_uniform_grid(tmp_path):
    ge = _load(DATA / "dcm_qa_ct" / "In" / "GE")  # tilted, 28 acquired → 37 uniform slices
    assert ge.shape[0] == 37 and ge.is_oblique_stack
    files = write_derived_series(ge, tmp_path / "ge")
    headers = check_series(files, ge, ge)
    assert len(headers) == 37
    referenced = {h.SourceImageSequence[0].ReferencedSOPInstanceUID for h in headers}
    assert referenced <= set(ge.metadata["source_sop_instance_uids"]) and len(referenced) > 20
    back = medview.load(tmp_path / "ge")
    assert_same_place(back, ge)
    np.testing.assert_array_equal(back.array, ge.array)
