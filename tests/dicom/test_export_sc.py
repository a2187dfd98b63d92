"""Fused RGB volume → Multi-frame True Color Secondary Capture: dciodvfy, re-read, references."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import DATA, require

import medview
from medview.core.volume import Volume
from medview.dicom.export._common import ExportError
from medview.dicom.export.secondary_capture import MULTIFRAME_TRUE_COLOR_SC, write_rgb_capture

PHILIPS = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"


@pytest.fixture(scope="module")
def fused():
    from medview.core.filters.smoothing import gaussian
    from medview.core.fusion.blend import blend_colour

    require(PHILIPS.is_dir(), f"real CT at {PHILIPS}")
    ct = medview.load(PHILIPS)
    part = Volume(ct.array[20:30], ct.spacing, ct.index_to_lps((0, 0, 20)), ct.direction,
                  {**ct.metadata,
                   **{k: ct.metadata[k][20:30] for k in ("source_files", "source_frames",
                                                        "source_sop_instance_uids")}})
    return part, blend_colour(part, gaussian(part, sigma_mm=3.0), colormap="hot", opacity=0.4)


def test_fused_volume_is_valid_and_rereads_equal(fused, tmp_path):
    ct, rgb = fused
    assert rgb.is_rgb and len(np.unique(rgb.array.reshape(-1, 3), axis=0)) > 100
    path = write_rgb_capture(rgb, tmp_path / "fused.dcm", source=ct)
    assert_valid_dicom(path)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == MULTIFRAME_TRUE_COLOR_SC and ds.NumberOfFrames == 10
    np.testing.assert_array_equal(ds.pixel_array, rgb.array)
    assert ds.StudyInstanceUID == ct.metadata["StudyInstanceUID"]
    assert ds.PatientID == ct.metadata["PatientID"]
    assert ds.SeriesInstanceUID != ct.metadata["SeriesInstanceUID"]
    assert [i.ReferencedSOPInstanceUID for i in ds.SourceImageSequence] == list(
        ct.metadata["source_sop_instance_uids"])
    # the frame positions along the slice normal step by the slice spacing (projected)
    step = np.diff(np.asarray(ds.SliceLocationVector, float))
    d = ct.direction
    np.testing.assert_allclose(step, ct.spacing[2] * (np.cross(d[:, 0], d[:, 1]) @ d[:, 2]),
                               atol=1e-3)
    back = medview.load(path)
    np.testing.assert_array_equal(back.array, rgb.array)


def test_refuses_gray_volumes_and_overwrites_only_when_asked(fused, tmp_path, monkeypatch):
    ct, rgb = fused
    with pytest.raises(ExportError, match="RGB uint8"):
        write_rgb_capture(ct, tmp_path / "gray.dcm")
    target = tmp_path / "fused.dcm"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_rgb_capture(rgb, target)
    assert target.read_bytes() == b"old"

    def broken(filename, *args, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("injected failure")

    monkeypatch.setattr(pydicom, "dcmwrite", broken)
    with pytest.raises(OSError, match="injected"):
        write_rgb_capture(rgb, target, overwrite=True)
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [
        "fused.dcm"]
    write_rgb_capture(rgb, target, overwrite=True)
    np.testing.assert_array_equal(pydicom.dcmread(target).pixel_array, rgb.array)
