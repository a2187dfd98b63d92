"""`medview run --dicom-out` and `medview export` on a real CT, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from dicom_validate import assert_valid_dicom
from realparts import DATA, require

import medview

PHILIPS = DATA / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"  # tilted CT, 54 slices


def medview_cli(*args):
    return subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=600)


@pytest.fixture(scope="module")
def ct():
    require(PHILIPS.is_dir(), f"real CT at {PHILIPS}")
    return medview.load(PHILIPS)


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "bone.json"
    path.write_text(json.dumps({
        "inputs": {"image": "volume"},
        "steps": [
            {"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}, "output": "smooth"},
            {"step": "segment.threshold", "params": {"low": 300.0, "high": 3000.0},
             "output": "bone"},
        ]}))
    return path


def seg_pixels(path, source):
    import highdicom as hd

    return hd.seg.segread(path).get_pixels_by_source_instance(
        source_sop_instance_uids=source.metadata["source_sop_instance_uids"],
        combine_segments=True)


def test_run_writes_a_seg_and_a_derived_series_beside_the_nifti(ct, chain, tmp_path):
    out, dcm = tmp_path / "out", tmp_path / "dcm"
    proc = medview_cli("run", chain, PHILIPS, "-o", out, "--dicom-out", dcm)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in dcm.iterdir()) == ["bone.seg.dcm", "smooth"]
    assert_valid_dicom(dcm / "bone.seg.dcm")
    series = sorted((dcm / "smooth").iterdir())
    assert len(series) == ct.shape[0]
    for f in series:
        assert_valid_dicom(f)

    from medview.core.filters.smoothing import gaussian
    from medview.core.segmentation.thresholds import threshold_manual

    smooth = gaussian(ct, sigma_mm=1.0)
    expected = threshold_manual(smooth, low=300.0, high=3000.0).array
    assert expected.any()
    assert (out / "bone.nii.gz").is_file() and (out / "smooth.nii.gz").is_file()
    np.testing.assert_array_equal(seg_pixels(dcm / "bone.seg.dcm", ct), expected)
    back = medview.load(dcm / "smooth")
    np.testing.assert_allclose(back.affine, smooth.affine, atol=1e-3)
    slope = float(pydicom.dcmread(series[0], stop_before_pixels=True).RescaleSlope)
    np.testing.assert_allclose(back.array, smooth.array, atol=slope / 2 + 1e-3)


def test_run_refuses_dicom_outputs_without_a_dicom_input(ct, chain, tmp_path):
    from medview.formats.volume_io import write_volume

    nrrd = write_volume(ct, tmp_path / "ct.nrrd")
    proc = medview_cli("run", chain, nrrd, "-o", tmp_path / "out", "--dicom-out",
                       tmp_path / "dcm")
    assert proc.returncode == 1
    assert "no input was loaded from DICOM" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bone.json", "ct.nrrd"]


def test_export_a_label_file_onto_its_source_series(ct, tmp_path):
    from medview.core.labelmap import LabelMap
    from medview.formats.results import write_results
    from medview.formats.volume_io import write_volume

    lab = ((ct.array > 20) & (ct.array < 60)).astype(np.uint8)
    lab[ct.array > 300] = 2
    labels = LabelMap.like(ct, lab)
    write_results({"labels": labels}, "labels", tmp_path / "labels.nrrd")
    segs = json.loads((tmp_path / "labels.segments.json").read_text())
    segs[0]["name"] = "Brain"
    (tmp_path / "labels.segments.json").write_text(json.dumps(segs))
    proc = medview_cli("export", tmp_path / "labels.nrrd", "--source", PHILIPS,
                       "-o", tmp_path / "labels.dcm")
    assert proc.returncode == 0, proc.stderr
    assert_valid_dicom(tmp_path / "labels.dcm")
    np.testing.assert_array_equal(seg_pixels(tmp_path / "labels.dcm", ct), labels.array)
    import highdicom as hd

    seg = hd.seg.segread(tmp_path / "labels.dcm")
    assert seg.SegmentationType == "BINARY"  # the default for a few segments: every reader
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Brain", "Segment 2"]
    # the label map encoding, asked for (the default above 16 segments)
    proc = medview_cli("export", tmp_path / "labels.nrrd", "--source", PHILIPS,
                       "-o", tmp_path / "labelmap.dcm", "--seg-encoding", "labelmap")
    assert proc.returncode == 0, proc.stderr
    assert_valid_dicom(tmp_path / "labelmap.dcm")
    labelmap = hd.seg.segread(tmp_path / "labelmap.dcm")
    assert labelmap.SegmentationType == "LABELMAP"
    names = [s.SegmentLabel for s in labelmap.SegmentSequence if s.SegmentNumber > 0]
    assert names == ["Brain", "Segment 2"]
    np.testing.assert_array_equal(seg_pixels(tmp_path / "labelmap.dcm", ct), labels.array)

    # NIfTI resamples a tilted stack onto an orthogonal grid: not the source slices
    write_volume(labels, tmp_path / "labels.nii.gz")
    proc = medview_cli("export", tmp_path / "labels.nii.gz", "--source", PHILIPS,
                       "-o", tmp_path / "nii.dcm")
    assert proc.returncode == 1 and "--resample" in proc.stderr
    assert not (tmp_path / "nii.dcm").exists()
    proc = medview_cli("export", tmp_path / "labels.nii.gz", "--source", PHILIPS,
                       "-o", tmp_path / "nii.dcm", "--resample")
    assert proc.returncode == 0, proc.stderr
    assert_valid_dicom(tmp_path / "nii.dcm")
    back = seg_pixels(tmp_path / "nii.dcm", ct)
    # nearest neighbour back onto the acquired slices: nearly every voxel agrees
    assert np.mean(back == labels.array) > 0.98

    proc = medview_cli("export", tmp_path / "labels.nrrd", "--source", PHILIPS,
                       "-o", tmp_path / "labels.dcm")
    assert proc.returncode == 1 and "exists" in proc.stderr


def test_dicom_outputs_are_all_or_nothing(tmp_path):
    from medview.core.labelmap import LabelMap
    from medview.core.volume import Volume
    from medview.dicom.export._common import ExportError
    from medview.dicom.export.dispatch import write_dicom_outputs

    liver = medview.load(DATA / "dcmqi_seg" / "data" / "segmentations" / "ct-3slice")
    good = liver.with_array(liver.array.astype(np.float32) / 2)
    lab = (liver.array[:, :256] > 100).astype(np.uint8)
    cropped = LabelMap(lab, liver.spacing, liver.origin, liver.direction, liver.metadata)
    out = tmp_path / "dicom"
    expected = re.escape(f"{out}/cropped.seg.dcm: the label map's grid (3, 256, 512) is not")
    with pytest.raises(ExportError, match=expected) as info:
        write_dicom_outputs({"half": good, "cropped": cropped}, out, sources=[liver])
    assert ".tmp" not in str(info.value)
    assert not any(tmp_path.iterdir())
    plain = Volume(liver.array)
    with pytest.raises(ExportError, match="no input was loaded from DICOM"):
        write_dicom_outputs({"half": good}, out, sources=[plain])
    written = write_dicom_outputs({"half": good}, out, sources=[plain, liver])
    assert [p.parent.name for p in written] == ["half"] * 3
    for p in written:
        assert_valid_dicom(p)
