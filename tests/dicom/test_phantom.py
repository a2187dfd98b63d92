"""The synthetic CT/PET phantom: pixels, geometry and headers as asked, deterministic, valid."""

from __future__ import annotations

import math
import subprocess
import time

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from realparts import require_tool

import phantoms as ph

SHAPE = (40, 128, 128)
SPACING = (2.8, 2.8, 7.5)
OBLIQUE = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)  # a rotated coronal-like stack


def _normal(orientation) -> np.ndarray:
    o = np.asarray(orientation, float)
    return np.cross(o[:3], o[3:])


def _read_pydicom(paths):
    """HU volume (in the order of ``paths``) and the headers, read back with pydicom."""
    dss = [pydicom.dcmread(p) for p in paths]
    vol = np.stack([
        ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        for ds in dss
    ])
    return vol, dss


def _read_sitk(folder, pixel_type=sitk.sitkUnknown):
    reader = sitk.ImageSeriesReader()
    uids = reader.GetGDCMSeriesIDs(str(folder))
    assert len(uids) == 1
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), uids[0]))
    reader.SetOutputPixelType(pixel_type)
    return reader.Execute()


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return ph.ct_phantom_volume(SHAPE, SPACING, seed=3)


# -- the volume ---------------------------------------------------------------------------------
def test_volume_is_int16_hu_with_air_body_lungs_and_bone(volume):
    assert volume.shape == SHAPE and volume.dtype == np.int16
    assert volume.min() >= -1024 and volume.max() <= 3071
    air = volume[:, :8, :8]
    assert abs(air.mean() + 1000) < 5 and 10 <= air.std() <= 20
    assert (volume > 350).sum() > 1000  # spine and ribs
    chest = volume[round(0.7 * (SHAPE[0] - 1))]
    assert ((chest > -900) & (chest < -800)).mean() > 0.1  # lungs
    assert ((volume[2] > -900) & (volume[2] < -800)).mean() < 0.001  # no lungs in the abdomen


def test_volume_is_deterministic_for_a_seed(volume):
    assert np.array_equal(volume, ph.ct_phantom_volume(SHAPE, SPACING, seed=3))
    assert not np.array_equal(volume, ph.ct_phantom_volume(SHAPE, SPACING, seed=4))


@pytest.mark.parametrize("shape, spacing", [(SHAPE, SPACING), ((300, 512, 512), (0.7, 0.7, 1.0))])
def test_lesions_are_where_they_are_said_to_be(shape, spacing):
    lesions = ph.phantom_lesions(shape, spacing)
    assert len(lesions) >= 4
    clean = ph.ct_phantom_volume(shape, spacing, noise_hu=0)
    for les in lesions:
        z, y, x = les.center_zyx
        assert clean[z, y, x] == les.hu, les.name
        assert np.allclose(les.center_mm, (x * spacing[0], y * spacing[1], z * spacing[2]))
        # the sphere ends at its radius: a voxel 1.5 radii away along x is something else
        step = math.ceil(1.5 * les.radius_mm / spacing[0])
        assert clean[z, y, x + step] != les.hu or clean[z, y, x - step] != les.hu, les.name
    noisy = ph.ct_phantom_volume(shape, spacing, seed=1)
    for les in lesions:
        z, y, x = les.center_zyx
        assert abs(noisy[z, y - 1:y + 2, x - 1:x + 2].mean() - les.hu) < 20, les.name


def test_full_size_volume_builds_fast(capsys):
    t0 = time.perf_counter()
    vol = ph.ct_phantom_volume()
    seconds = time.perf_counter() - t0
    assert vol.shape == (300, 512, 512)
    with capsys.disabled():
        print(f"\n  ct_phantom_volume 300×512×512: {seconds:.2f} s")


# -- the CT series --------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {},
    {"orientation": OBLIQUE, "origin_lps": (12.5, -40.0, 210.25), "shuffle_instance_numbers": True},
    {"stored": "int16", "rescale_intercept": 0, "transfer_syntax": "1.2.840.10008.1.2"},
    {"stored": "uint16", "transfer_syntax": "1.2.840.10008.1.2.2"},
    {"transfer_syntax": "1.2.840.10008.1.2.5"},
], ids=["default", "oblique-shuffled", "int16-implicit", "uint16-bigendian", "rle"])
def test_series_reads_back_exactly_with_pydicom_and_simpleitk(tmp_path, volume, kwargs):
    paths = ph.write_ct_series(tmp_path, volume, spacing_xyz=SPACING, seed=3, **kwargs)
    orientation = kwargs.get("orientation", (1, 0, 0, 0, 1, 0))
    origin = np.asarray(kwargs.get("origin_lps") or ph.default_origin_lps(SHAPE, SPACING,
                                                                          orientation))
    normal = _normal(orientation)
    assert len(paths) == SHAPE[0] and all(p.is_file() for p in paths)

    hu, dss = _read_pydicom(paths)
    assert np.array_equal(hu, volume)
    for k, ds in enumerate(dss):
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == kwargs.get("transfer_syntax",
                                                            pydicom.uid.ExplicitVRLittleEndian)
        assert np.allclose(ds.ImagePositionPatient, origin + k * SPACING[2] * normal, atol=1e-5)
        assert np.allclose(ds.ImageOrientationPatient, orientation)
        assert np.allclose(ds.PixelSpacing, (SPACING[1], SPACING[0]))
        assert math.isclose(ds.SliceLocation, float(np.dot(ds.ImagePositionPatient, normal)),
                            abs_tol=1e-5)
        assert paths[k].name == f"IM{ds.InstanceNumber:04d}.dcm"
    numbers = [ds.InstanceNumber for ds in dss]
    assert sorted(numbers) == list(range(1, SHAPE[0] + 1))
    assert (numbers != sorted(numbers)) == bool(kwargs.get("shuffle_instance_numbers"))
    assert len({ds.SOPInstanceUID for ds in dss}) == SHAPE[0]
    assert len({(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID)
                for ds in dss}) == 1

    img = _read_sitk(tmp_path, sitk.sitkInt16)
    assert np.array_equal(sitk.GetArrayFromImage(img), volume)
    assert np.allclose(img.GetSpacing(), SPACING)
    assert np.allclose(img.GetOrigin(), origin, atol=1e-5)
    direction = np.array(img.GetDirection()).reshape(3, 3)
    assert np.allclose(direction[:, 0], orientation[:3]) and np.allclose(direction[:, 1],
                                                                         orientation[3:])
    assert np.allclose(direction[:, 2], normal)


def test_same_seed_writes_the_same_bytes(tmp_path):
    small = {"shape": (6, 64, 64), "spacing_xyz": (5.6, 5.6, 5.0)}
    a = ph.write_ct_series(tmp_path / "a", seed=5, **small)
    b = ph.write_ct_series(tmp_path / "b", seed=5, **small)
    c = ph.write_ct_series(tmp_path / "c", seed=6, **small)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    da, dc = pydicom.dcmread(a[0]), pydicom.dcmread(c[0])
    assert da.StudyInstanceUID != dc.StudyInstanceUID
    assert da.SeriesInstanceUID != dc.SeriesInstanceUID
    assert da.PixelData != dc.PixelData


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="volume_hu"):
        ph.write_ct_series(tmp_path, np.full((2, 8, 8), 4000, np.int16))
    with pytest.raises(ValueError, match="volume_hu"):
        ph.write_ct_series(tmp_path, np.zeros((8, 8), np.int16))
    with pytest.raises(ValueError, match="orientation"):
        ph.write_ct_series(tmp_path, shape=(2, 8, 8), orientation=(1, 0, 0, 1, 0, 0))
    with pytest.raises(ValueError, match="spacing_xyz"):
        ph.ct_phantom_volume((2, 8, 8), (1.0, 0.0, 1.0))


def test_full_size_series_writes_fast(tmp_path, capsys):
    vol = ph.ct_phantom_volume()
    t0 = time.perf_counter()
    paths = ph.write_ct_series(tmp_path, vol)
    seconds = time.perf_counter() - t0
    assert len(paths) == 300
    assert paths[0].stat().st_size > 512 * 512 * 2
    with capsys.disabled():
        print(f"\n  write_ct_series 300 × 512² ({vol.nbytes / 2**20:.0f} MiB): {seconds:.2f} s")


def test_files_pass_dciodvfy(tmp_path):
    tool = require_tool("dciodvfy")
    small = {"shape": (4, 64, 64), "spacing_xyz": (5.6, 5.6, 5.0)}
    ct = ph.write_ct_series(tmp_path, **small)
    pet = ph.write_pet_series(tmp_path, ct_shape=small["shape"],
                              ct_spacing_xyz=small["spacing_xyz"], spacing_xyz=(8.0, 8.0, 5.0))
    for path in (ct[1], pet[1]):
        run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
        lines = (run.stdout + run.stderr).splitlines()
        errors = [line for line in lines if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"


# -- PET ------------------------------------------------------------------------------------------
def test_pet_series_shares_the_frame_of_reference_and_has_hot_lesions(tmp_path):
    grid = {"ct_shape": SHAPE, "ct_spacing_xyz": SPACING}
    ct = ph.write_ct_series(tmp_path / "ct", shape=SHAPE, spacing_xyz=SPACING, seed=2)
    pet_vol = ph.pet_phantom_volume(**grid, seed=2, noise=0.0)
    paths = ph.write_pet_series(tmp_path / "pet", **grid, volume=pet_vol, seed=2)

    ct0, dss = pydicom.dcmread(ct[0]), [pydicom.dcmread(p) for p in paths]
    assert len(paths) == pet_vol.shape[0]
    for k, ds in enumerate(dss):
        assert ds.Modality == "PT" and ds.Units == "BQML" and ds.DecayCorrection == "START"
        assert ds.FrameOfReferenceUID == ct0.FrameOfReferenceUID
        assert ds.StudyInstanceUID == ct0.StudyInstanceUID
        assert ds.SeriesInstanceUID != ct0.SeriesInstanceUID
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.allclose(values, pet_vol.array[k], atol=float(ds.RescaleSlope) / 2 + 1e-3)
        assert np.allclose(ds.ImagePositionPatient,
                           pet_vol.index_to_lps((0, 0, k)), atol=1e-5)
    assert len({ds.RescaleSlope for ds in dss}) > 1  # a slope per slice, as scanners do

    # the PET grid covers the CT grid
    ct_geo = _read_sitk(tmp_path / "ct")
    ct_corners = np.array([ct_geo.TransformIndexToPhysicalPoint((i, j, k)) for i in (0, 127)
                           for j in (0, 127) for k in (0, 39)])
    pet_idx = pet_vol.lps_to_index(ct_corners)
    assert (pet_idx > -0.5).all() and (pet_idx < np.array(pet_vol.shape[::-1]) - 0.5).all()

    # SUV from the header at the liver lesion's centre (patient position from the CT grid)
    drug = dss[0].RadiopharmaceuticalInformationSequence[0]
    inj, start = drug.RadiopharmaceuticalStartTime, dss[0].SeriesTime
    seconds = lambda t: int(t[:2]) * 3600 + int(t[2:4]) * 60 + float(t[4:])  # noqa: E731
    decayed = float(drug.RadionuclideTotalDose) * 2 ** (
        -(seconds(start) - seconds(inj)) / float(drug.RadionuclideHalfLife))
    suv_factor = float(dss[0].PatientWeight) * 1000 / decayed
    liver = next(les for les in ph.phantom_lesions(SHAPE, SPACING) if les.name.startswith("liver"))
    lps = ct_geo.TransformIndexToPhysicalPoint(tuple(int(i) for i in liver.center_zyx[::-1]))
    i, j, k = np.rint(pet_vol.lps_to_index(lps)).astype(int)
    suv = pet_vol.array[k, j, i] * suv_factor
    assert math.isclose(pet_vol.metadata["suv_factor"], suv_factor, rel_tol=1e-4)
    assert abs(suv - liver.suv) < 0.25 * liver.suv
    assert suv > 2 * np.median(pet_vol.array[pet_vol.array > 0]) * suv_factor


# -- demo -----------------------------------------------------------------------------------------
def test_demo_phantom_is_written_once(tmp_path):
    folder = tmp_path / "demo"
    assert ph.ensure_demo_phantom(folder) == folder
    files = sorted(folder.glob("IM*.dcm"))
    assert len(files) == 64
    ds = pydicom.dcmread(files[0])
    assert (ds.Rows, ds.Columns) == (256, 256)
    mtimes = [f.stat().st_mtime_ns for f in files]
    ph.ensure_demo_phantom(folder)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    (folder / "medview-phantom.json").write_text("{")
    files[3].unlink()
    ph.ensure_demo_phantom(folder)
    assert len(list(folder.glob("IM*.dcm"))) == 64
