"""medview.load on real data against dcm2niix, and on bad input, case by case."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from geometry_check import assert_matches_nifti, assert_slices_in_place
from realparts import require

import medview
from medview.dicom.errors import AmbiguousSourceError, SeriesError
from phantoms import write_ct_series


def dcm2niix_exe() -> str:
    exe = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
    require(Path(exe).exists(), "dcm2niix (the test extra's dcm2niix wheel)")
    return exe


def run_dcm2niix(src: Path, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([dcm2niix_exe(), "-z", "n", "-b", "n", "-o", str(out), "-f", name, str(src)],
                   check=True, capture_output=True, timeout=120)
    return out / f"{name}.nii"


# -------------------------------------------------------------------------------------------
# real data against the reference converter
# -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", ["HFS/3_t1_fl2d_sag", "HFDL/2_t1_fl2d_sag"])
def test_decubitus_matches_dcm2niix(data_dir, tmp_path, position):
    src = data_dir / "dcm_qa_decubitus" / "In" / position
    vol = medview.load(src)
    assert vol.shape == (35, 256, 256)
    assert vol.warnings == ()
    assert_matches_nifti(vol, run_dcm2niix(src, tmp_path, "ref"))


@pytest.mark.parametrize("n", range(1, 10))
def test_transfer_syntax_mosaics_match_reference(data_dir, n):
    """Nine transfer syntaxes of one Siemens mosaic: un-tiled, each equals dcm2niix's volume."""
    vol = medview.load(data_dir / "dcm_qa_ts" / "In" / f"{n}.dcm")
    assert vol.shape == (35, 64, 64)
    assert_matches_nifti(vol, data_dir / "dcm_qa_ts" / "Ref" / f"{n}.nii")


def test_transfer_syntaxes_decode_identically(data_dir):
    arrays = [medview.load(data_dir / "dcm_qa_ts" / "In" / f"{n}.dcm").array for n in range(1, 10)]
    for n, arr in enumerate(arrays[1:], start=2):
        np.testing.assert_array_equal(arr, arrays[0], err_msg=f"{n}.dcm differs from 1.dcm")


def _twelve_bit_pairs(data_dir):
    import json

    pairs = []
    for ref in sorted((data_dir / "dcm_qa_12bit" / "Ref").glob("*.json")):
        series = json.loads(ref.read_text()).get("SeriesNumber")
        for f in (data_dir / "dcm_qa_12bit" / "In").glob("*.dcm"):
            if int(pydicom.dcmread(f, stop_before_pixels=True).SeriesNumber) == series:
                pairs.append((f, ref.with_suffix(".nii")))
    return pairs


def test_twelve_bit_values_match_reference(data_dir):
    pairs = _twelve_bit_pairs(data_dir)
    assert len(pairs) == 3
    for dcm, nii in pairs:
        vol = medview.load(dcm)
        assert_matches_nifti(vol, nii)


def test_every_shared_file_loads_or_is_rejected_with_a_reason(data_dir):
    from medview.dicom.series.loading import find_series

    plans, errors = find_series(data_dir)
    assert len(plans) >= 15
    for path, reason in errors:
        assert Path(path).exists() and len(reason) > 10
    assert any("DIRFILE" in p for p, _ in errors)
    for plan in plans:
        assert plan.stack.shape[0] >= 1


# -------------------------------------------------------------------------------------------
# geometry without a reference: each pixel at its own header's position
# -------------------------------------------------------------------------------------------
def test_philips_gantry_tilt_keeps_every_pixel_in_place(data_dir):
    folder = data_dir / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010"
    vol = medview.load(folder)
    assert vol.shape == (54, 512, 512)
    assert vol.is_oblique_stack
    assert any("gantry tilt of 18.50°" in w for w in vol.warnings)
    files = [f for f in sorted(folder.iterdir()) if f.name != "DIRFILE"]
    assert assert_slices_in_place(vol, [pydicom.dcmread(f) for f in files[::9]]) == 6


def test_ge_tilted_variable_spacing_keeps_acquired_slices_on_the_grid(data_dir):
    folder = data_dir / "dcm_qa_ct" / "In" / "GE"
    vol = medview.load(folder)
    assert any("gantry tilt" in w for w in vol.warnings)
    assert any("slice spacing varies" in w and "resampled" in w for w in vol.warnings)
    # instance numbers are not in spatial order: the first slice in space comes first
    acquired = vol.metadata["acquired_positions_mm"]
    assert len(acquired) == 28 and list(acquired) == sorted(acquired)
    # slices at the start of the stack fall on grid planes: exact values there
    datasets = sorted((pydicom.dcmread(f) for f in folder.iterdir()),
                      key=lambda d: float(np.dot([float(v) for v in d.ImagePositionPatient],
                                                 np.cross(*np.reshape(
                                                     [float(v) for v in
                                                      d.ImageOrientationPatient], (2, 3))))))
    assert assert_slices_in_place(vol, datasets[:3]) == 3


def test_tilted_nifti_export_is_resampled_orthogonally(data_dir, tmp_path):
    import nibabel as nib

    from medview.formats.volume_io import write_volume

    vol = medview.load(data_dir / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S2010")
    out = write_volume(vol, tmp_path / "tilt.nii.gz")
    img = nib.load(out)
    m = img.affine[:3, :3] / np.linalg.norm(img.affine[:3, :3], axis=0)
    np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-5)
    # the centre of the stack keeps its value at the same world point
    centre_idx = np.array([255, 255, 27])
    world = vol.index_to_lps(centre_idx)
    ras = np.array([-world[0], -world[1], world[2], 1.0])
    ijk = np.linalg.solve(img.affine, ras)[:3]
    value = np.asanyarray(img.dataobj)[tuple(np.round(ijk).astype(int))]
    assert abs(float(value) - float(vol.array[27, 255, 255])) < 60


# -------------------------------------------------------------------------------------------
# real-world problems
# -------------------------------------------------------------------------------------------
def test_duplicate_positions_keep_one_slice_per_position(data_dir):
    vol = medview.load(data_dir / "kits_dupe_positions")
    dup = [w for w in vol.warnings if "repeat the position" in w]
    assert dup and "(10 of 11 slices)" in dup[0] and ".dcm" in dup[0]
    assert len(vol.metadata["acquired_positions_mm"]) == 10
    assert vol.metadata["Units"] == "HU"
    assert vol.array.dtype == np.int16  # 16 bits stored, values fit: not widened to int32
    assert -1100 < float(np.median(vol.array)) < 200
    assert any("CITATION.txt" in w and "not a DICOM file" in w for w in vol.warnings)


def test_folder_with_several_series_needs_a_name(data_dir):
    folder = data_dir / "dcm_qa_ct" / "In" / "Philips" / "S21610"
    with pytest.raises(AmbiguousSourceError) as err:
        medview.load(folder)
    assert len(err.value.choices) == 3
    assert "holds 3 series" in str(err.value)
    volume_uid = next(c["series_uid"] for c in err.value.choices if c["instances"] == 54)
    vol = medview.load(folder, series=volume_uid)
    assert vol.shape == (54, 512, 512)
    by_number = medview.load(folder, series=201)
    assert by_number.metadata["SeriesInstanceUID"] == volume_uid
    with pytest.raises(SeriesError, match="matches no series"):
        medview.load(folder, series="1.2.3.4.5.6")


def test_secondary_capture_rgb_loads_as_colour(data_dir):
    folder = data_dir / "dcm_qa_ct" / "In" / "Philips" / "S21610" / "S4010"
    vol = medview.load(folder)
    assert vol.is_rgb and vol.array.dtype == np.uint8 and vol.array.shape[-1] == 3
    assert any("no patient geometry" in w for w in vol.warnings)
    ds = pydicom.dcmread(vol.metadata["source_files"][0])
    np.testing.assert_array_equal(vol.array[0], ds.pixel_array)


# -------------------------------------------------------------------------------------------
# bad input, made from a small synthetic CT
# -------------------------------------------------------------------------------------------
@pytest.fixture
def ct_folder(tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(8, 32, 32), spacing_xyz=(0.8, 0.8, 2.0), seed=3)
    return folder


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dcm"))


def test_synthetic_series_loads_exactly(ct_folder):
    vol = medview.load(ct_folder)
    assert vol.shape == (8, 32, 32) and vol.warnings == ()
    assert vol.array.dtype == np.int16
    np.testing.assert_allclose(vol.spacing, (0.8, 0.8, 2.0))
    assert assert_slices_in_place(vol, [pydicom.dcmread(f) for f in _files(ct_folder)]) == 8


def test_broken_files_are_reported_and_the_rest_loads(ct_folder):
    files = _files(ct_folder)
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[: len(data) // 2])  # truncated pixel data
    (ct_folder / "notes.txt").write_text("not dicom")
    vol = medview.load(ct_folder)
    assert vol.shape[0] == 7
    text = " ".join(vol.warnings)
    assert files[-1].name in text and "notes.txt" in text


def test_file_without_pixel_data_is_ignored_with_a_reason(ct_folder):
    ds = pydicom.dcmread(_files(ct_folder)[0])
    del ds.PixelData
    ds.save_as(ct_folder / "nopixels.dcm")
    vol = medview.load(ct_folder)
    assert vol.shape[0] == 8
    assert any("nopixels.dcm" in w for w in vol.warnings)


def test_missing_slice_is_filled_and_reported(ct_folder):
    files = _files(ct_folder)
    expected = medview.load(ct_folder)
    files[3].unlink()
    vol = medview.load(ct_folder)
    assert vol.shape == (8, 32, 32)
    assert any("1 slice(s) missing" in w for w in vol.warnings)
    np.testing.assert_array_equal(vol.array[2], expected.array[2])
    np.testing.assert_array_equal(vol.array[4], expected.array[4])
    mean = (expected.array[2].astype(float) + expected.array[4]) / 2
    assert np.abs(vol.array[3] - np.rint(mean)).max() <= 1


def test_mixed_orientations_become_separate_stacks(ct_folder):
    for k, f in enumerate(_files(ct_folder)[:3]):
        ds = pydicom.dcmread(f)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
        ds.ImagePositionPatient = [-10.0, 2.0 * k, 30.0]
        ds.save_as(f)
    vol = medview.load(ct_folder)
    assert vol.shape[0] == 5
    assert any("2 stacks" in w for w in vol.warnings)
    assert vol.metadata["stack"] == "axial 32×32"
    other = medview.load(ct_folder, stack=1)
    assert other.shape[0] == 3 and other.metadata["stack"] == "coronal 32×32"
    np.testing.assert_allclose(other.direction[:, 1], [0, 0, -1])


def test_rescale_varying_per_slice(ct_folder):
    files = _files(ct_folder)
    ref = medview.load(ct_folder)
    ds = pydicom.dcmread(files[2])
    stored = ds.pixel_array.astype(float)
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-10"
    ds.save_as(files[2])
    vol = medview.load(ct_folder)
    assert vol.array.dtype == np.float32
    assert any("rescale slope/intercept vary" in w for w in vol.warnings)
    np.testing.assert_allclose(vol.array[2], stored * 0.5 - 10)
    np.testing.assert_allclose(vol.array[5], ref.array[5])


def test_multi_echo_series_splits_by_echo(tmp_path):
    folder = tmp_path / "echo"
    files = write_ct_series(folder, shape=(6, 16, 16), seed=5)
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.EchoNumbers = 1 + k % 2
        pos = [float(v) for v in ds.ImagePositionPatient]
        pos[2] = float(k // 2) * 3.0  # two echoes at each of three positions
        ds.ImagePositionPatient = pos
        ds.save_as(f)
    vol = medview.load(folder)
    assert vol.shape[0] == 3
    assert any("2 stacks" in w and "echo 2" in w for w in vol.warnings)
    assert vol.metadata["stack"] == "echo 1"


def test_repeated_acquisitions_split_into_phases(tmp_path):
    folder = tmp_path / "phases"
    files = write_ct_series(folder, shape=(6, 16, 16), seed=6)
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.AcquisitionNumber = 1 + k // 3
        pos = [float(v) for v in ds.ImagePositionPatient]
        pos[2] = float(k % 3) * 3.0
        ds.ImagePositionPatient = pos
        ds.save_as(f)
    vol = medview.load(folder)
    assert vol.shape[0] == 3
    assert any("split into 2 stacks" in w for w in vol.warnings)


def test_monochrome1_is_inverted_to_bright_high(ct_folder):
    files = _files(ct_folder)
    ref = medview.load(ct_folder)
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(f)
    vol = medview.load(ct_folder)
    # 12 stored bits, intercept −1024: v' = (0 + 4095) + 2·(−1024) − v
    np.testing.assert_array_equal(vol.array.astype(int), 2047 - ref.array.astype(int))


def test_unknown_uid_and_missing_folder_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        medview.load(tmp_path / "nope")
    with pytest.raises(SeriesError, match="not in the catalog"):
        medview.load("1.2.826.0.1.3680043.2.1143.999")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("hello")
    with pytest.raises(SeriesError, match="no readable DICOM"):
        medview.load(tmp_path / "junk")
