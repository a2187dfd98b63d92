"""Realistic synthetic CT and PET series, written with pydicom, for tests, benchmarks and scripts.

The phantom is a chest/abdomen: air around an elliptical body with a subcutaneous fat rim,
soft tissue, liver, kidneys, heart, aorta, two lungs with vessels, a spine (vertebral bodies with
cortex, marrow and discs, posterior arch, spinal canal), ribs, and a few spherical lesions of
known centre, radius, HU and SUV (:func:`phantom_lesions`).

The anatomy fits the grid as a technologist fits a scan: the body fills about 90 % of the
in-plane field of view and the scan range runs from the upper abdomen (first slice, inferior) to
the lung apices (last slice, superior). It is defined in millimetres in the CT grid's own frame
(``index * spacing``), so a PET series on another grid of the same frame of reference
(:func:`write_pet_series`) sees the same organs and lesions at the same patient positions.

Everything is deterministic: the same arguments and ``seed`` give the same pixels, UIDs and
bytes. UIDs come from :func:`pydicom.uid.generate_uid` with entropy sources built from the seed.

The anatomy and the volumes (:func:`ct_phantom_volume`, :func:`pet_phantom_volume`,
:func:`phantom_lesions`) are built in :mod:`phantoms.anatomy`; this module writes
them as DICOM series.

It lives outside the ``medview`` package on purpose: the product never writes a phantom, so
it is not shipped. Tests, benchmarks and scripts run from the repository root import it as
``phantoms`` (pytest adds the root through ``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from medview.core.volume import Volume
from phantoms.anatomy import (
    F18_HALF_LIFE_S,
    Lesion,
    _axes,
    _check_grid,
    ct_phantom_volume,
    default_origin_lps,
    pet_phantom_volume,
    phantom_lesions,
)
from phantoms.anatomy import HU_MAX as HU_MAX
from phantoms.anatomy import HU_MIN as HU_MIN

__all__ = [
    "Lesion",
    "ct_phantom_volume",
    "default_origin_lps",
    "ensure_demo_phantom",
    "pet_phantom_volume",
    "phantom_lesions",
    "write_ct_series",
    "write_pet_series",
]


# -- DICOM -----------------------------------------------------------------------------------
def _ds(value: float) -> str:
    """A decimal string of at most 16 characters (DICOM DS), without float noise."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    text = "0" if text in ("-0", "") else text
    if len(text) > 16:
        text = f"{value:.10g}"
    return text


_STUDY_DATE, _STUDY_TIME, _CT_TIME, _PET_TIME = "20240315", "101500", "111000", "111500"
_STORED = {"uint12": (12, 0), "uint16": (16, 0), "int16": (16, 1)}


def _uid(*parts: object):
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["medview-phantom", *(str(p) for p in parts)])


def _base_dataset(sop_class_uid: str, modality: str, transfer_syntax, *, seed: int,
                  patient_name: str, patient_id: str | None, study_uid: str | None,
                  frame_of_reference_uid: str | None, series_uid: str, series_number: int,
                  series_description: str, series_time: str, shape: tuple, spacing: tuple,
                  axes: np.ndarray):
    """Patient, study, series, frame of reference, equipment, image plane and pixel modules."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDVIEW_PHANTOM"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = _STUDY_DATE, series_time
    ds.PatientName = patient_name
    ds.PatientID = patient_id or f"PHANTOM{seed:04d}"
    ds.PatientBirthDate, ds.PatientSex = "19790101", "O"
    ds.PatientAge, ds.PatientSize, ds.PatientWeight = "045Y", "1.75", "75"
    ds.StudyInstanceUID = study_uid or _uid(seed, "study")
    ds.StudyDate, ds.StudyTime = _STUDY_DATE, _STUDY_TIME
    ds.StudyID, ds.AccessionNumber = "1", f"PH{seed:08d}"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Phantom PET/CT chest abdomen"
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _STUDY_DATE
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = series_time
    ds.BodyPartExamined = "CHEST"
    ds.FrameOfReferenceUID = frame_of_reference_uid or _uid(seed, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "medview"
    ds.ManufacturerModelName = f"Phantom {modality}"
    ds.InstitutionName = "medview phantom lab"
    ds.StationName = "PHANTOM"
    ds.SoftwareVersions = "medview phantom 1"
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [_ds(v) for v in (*axes[:, 0], *axes[:, 1])]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing (y), column spacing (x)
    ds.SliceThickness = _ds(spacing[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = shape[1], shape[2]
    ds.BitsAllocated = 16
    return ds


def _write_slices(folder: Path, ds, slices, *, origin: np.ndarray, axes: np.ndarray,
                  spacing_z: float, file_names: str, instance_numbers: Sequence[int],
                  per_slice=None) -> list[Path]:
    """Write one file per slice of ``slices`` (stored values), changing only per-slice elements."""
    from pydicom import dcmwrite
    from pydicom.uid import UID

    ts = UID(ds.file_meta.TransferSyntaxUID)
    byteorder = "<" if ts.is_little_endian else ">"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, stored in enumerate(slices):
        pos = origin + axes[:, 2] * (k * spacing_z)
        number = int(instance_numbers[k])
        ds.SOPInstanceUID = _uid(ds.SeriesInstanceUID, number)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [_ds(v) for v in pos]
        ds.SliceLocation = _ds(float(pos @ axes[:, 2]))
        if per_slice is not None:
            per_slice(ds, k)
        if ts.is_compressed:
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
            ds.compress(ts, np.ascontiguousarray(stored), generate_instance_uid=False)
        else:
            ds.PixelData = stored.astype(stored.dtype.newbyteorder(byteorder), copy=False).tobytes()
        path = folder / (file_names % number)
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def _instance_numbers(n: int, shuffle: bool, seed: int) -> np.ndarray:
    numbers = np.arange(1, n + 1)
    if shuffle:
        np.random.default_rng([int(seed), 7]).shuffle(numbers)
    return numbers


def write_ct_series(folder: str | os.PathLike, volume_hu: np.ndarray | None = None, *,
                    shape: Sequence[int] = (300, 512, 512),
                    spacing_xyz: Sequence[float] = (0.7, 0.7, 1.0),
                    origin_lps: Sequence[float] | None = None,
                    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                    patient_name: str = "PHANTOM^CT", patient_id: str | None = None,
                    study_uid: str | None = None, series_uid: str | None = None,
                    frame_of_reference_uid: str | None = None,
                    series_description: str = "Phantom CT chest abdomen",
                    series_number: int = 2, transfer_syntax: str = "1.2.840.10008.1.2.1",
                    stored: Literal["uint12", "uint16", "int16"] = "uint12",
                    rescale_intercept: int = -1024, shuffle_instance_numbers: bool = False,
                    file_names: str = "IM%04d.dcm", seed: int = 0) -> list[Path]:
    """Write a CT series, one CT Image Storage file per slice.

    Parameters
    ----------
    folder : path
        Created if missing; files of the same names are overwritten.
    volume_hu : ndarray, shape (nz, ny, nx), integer, optional
        HU to write; by default ``ct_phantom_volume(shape, spacing_xyz, seed)``.
    shape : tuple of 3 int
        ``(nz, ny, nx)`` of the phantom when ``volume_hu`` is not given.
    spacing_xyz : tuple of 3 float
        Column spacing (x), row spacing (y) and slice step (z) in mm.
    origin_lps : tuple of 3 float, optional
        ImagePositionPatient of slice 0; by default the grid is centred at LPS (0, 0, 0).
    orientation : tuple of 6 float
        ImageOrientationPatient (row direction, column direction); slices advance along their
        cross product, the slice normal.
    patient_name, patient_id, series_description, series_number : optional
        Identity; ``patient_id`` defaults to ``PHANTOM<seed>``.
    study_uid, series_uid, frame_of_reference_uid : str, optional
        By default derived from ``seed`` (the study and frame of reference are the ones
        :func:`write_pet_series` uses for the same seed).
    transfer_syntax : str
        Explicit or implicit VR little endian, explicit VR big endian, or a compressed syntax
        pydicom can encode (RLE Lossless without extra packages).
    stored : {"uint12", "uint16", "int16"}
        Stored pixel representation: unsigned 12 bits in 16 (most scanners), unsigned or
        signed 16 bits. Stored value = HU − ``rescale_intercept`` (slope 1).
    rescale_intercept : int
        RescaleIntercept; -1024 by default.
    shuffle_instance_numbers : bool
        Give the slices a seeded random permutation of the InstanceNumbers (file names follow
        the instance number), so that only the positions tell the slice order.
    file_names : str
        ``%``-format of the file name, given the InstanceNumber.
    seed : int
        Seed of the phantom's noise, the UIDs and the shuffle.

    Returns
    -------
    list of Path
        The files in slice order (slice 0 first, the most inferior for the default orientation).

    Raises
    ------
    ValueError
        If the HU do not fit the stored representation, or an argument is malformed.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import CTImageStorage

    if volume_hu is None:
        volume_hu = ct_phantom_volume(shape, spacing_xyz, seed)
    volume_hu = np.asarray(volume_hu)
    if volume_hu.ndim != 3 or volume_hu.dtype.kind not in "iu":
        raise ValueError(f"volume_hu: expected a 3D integer array (z, y, x), got "
                         f"{volume_hu.ndim}D {volume_hu.dtype}")
    shape, spacing = _check_grid(volume_hu.shape, spacing_xyz)
    if stored not in _STORED:
        raise ValueError(f"stored: expected one of {sorted(_STORED)}, got {stored!r}")
    bits, signed = _STORED[stored]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    vmin, vmax = int(volume_hu.min()) - rescale_intercept, int(volume_hu.max()) - rescale_intercept
    if vmin < lo or vmax > hi:
        raise ValueError(f"volume_hu: stored values {vmin}..{vmax} (HU − intercept "
                         f"{rescale_intercept}) do not fit {stored} ({lo}..{hi}); choose another "
                         "'stored' or 'rescale_intercept', or clip the volume")
    axes = _axes(orientation)
    origin = np.asarray(origin_lps if origin_lps is not None
                        else default_origin_lps(shape, spacing, orientation), dtype=np.float64)
    series_uid = series_uid or _uid(seed, "CT", shape, spacing, series_number, series_description)
    ds = _base_dataset(CTImageStorage, "CT", transfer_syntax, seed=seed,
                       patient_name=patient_name, patient_id=patient_id, study_uid=study_uid,
                       frame_of_reference_uid=frame_of_reference_uid, series_uid=series_uid,
                       series_number=series_number, series_description=series_description,
                       series_time=_CT_TIME, shape=shape, spacing=spacing, axes=axes)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, signed
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(int(rescale_intercept)), "1", "HU"
    ds.WindowCenter, ds.WindowWidth = "50", "400"
    ds.WindowCenterWidthExplanation = "ABDOMEN"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = _ds(shape[2] * spacing[0])
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = "1085.6", "595"
    ds.GantryDetectorTilt, ds.TableHeight, ds.RotationDirection = "0", "150", "CW"
    ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = "500", "200", "100"
    ds.FilterType, ds.GeneratorPower, ds.FocalSpots = "BODY", "24", "1.2"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"  # PET says it with PatientOrientationCodeSequence instead
    ds.CTDIvol = 8.5
    phantom_code = Dataset()
    phantom_code.CodeValue, phantom_code.CodingSchemeDesignator = "113691", "DCM"
    phantom_code.CodeMeaning = "IEC Body Dosimetry Phantom"
    ds.CTDIPhantomTypeCodeSequence = [phantom_code]
    ds.ProtocolName = "Chest abdomen phantom"
    ds.LossyImageCompression = "00"
    dtype = np.dtype(np.int16 if signed else np.uint16)
    slices = (
        (volume_hu[k].astype(np.int32) - rescale_intercept).astype(dtype)
        for k in range(shape[0])
    )
    return _write_slices(Path(folder), ds, slices, origin=origin, axes=axes,
                         spacing_z=spacing[2], file_names=file_names,
                         instance_numbers=_instance_numbers(shape[0], shuffle_instance_numbers,
                                                            seed))


# -- PET -------------------------------------------------------------------------------------
def write_pet_series(folder: str | os.PathLike, *, ct_shape: Sequence[int] = (300, 512, 512),
                     ct_spacing_xyz: Sequence[float] = (0.7, 0.7, 1.0),
                     ct_origin_lps: Sequence[float] | None = None,
                     orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
                     spacing_xyz: Sequence[float] = (4.0, 4.0, 4.0), volume: Volume | None = None,
                     patient_name: str = "PHANTOM^CT", patient_id: str | None = None,
                     study_uid: str | None = None, series_uid: str | None = None,
                     frame_of_reference_uid: str | None = None,
                     series_description: str = "Phantom PET FDG AC", series_number: int = 3,
                     injected_dose_bq: float = 370e6, patient_weight_kg: float = 75.0,
                     uptake_s: float = 3600.0, frame_duration_s: float = 120.0,
                     transfer_syntax: str = "1.2.840.10008.1.2.1", file_names: str = "PT%04d.dcm",
                     seed: int = 0) -> list[Path]:
    """Write an F-18 FDG PET series (PET Image Storage) on the CT phantom's frame of reference.

    Stored values are int16 with a float RescaleSlope per slice (intercept 0); Units BQML,
    decay-corrected to the series start (DecayCorrection START), injection ``uptake_s`` before
    the series time, with the dose, half-life and patient weight an SUV calculation needs.

    Parameters
    ----------
    folder : path
        Created if missing.
    ct_shape, ct_spacing_xyz, ct_origin_lps, orientation :
        The CT grid (as given to :func:`write_ct_series`); with the same ``seed`` and default
        UIDs the PET shares the CT's study and frame of reference.
    spacing_xyz : tuple of 3 float
        PET voxel size in mm.
    volume : Volume, optional
        Activity in Bq/ml to write; by default :func:`pet_phantom_volume` with these arguments.
    injected_dose_bq, patient_weight_kg, uptake_s, frame_duration_s : float
        Radiopharmaceutical and acquisition facts written to the header.
    file_names, seed, patient_name, patient_id, series_description, series_number :
        As for :func:`write_ct_series`.

    Returns
    -------
    list of Path
        The files in slice order.
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import PositronEmissionTomographyImageStorage

    if volume is None:
        volume = pet_phantom_volume(ct_shape, ct_spacing_xyz, ct_origin_lps, orientation,
                                    spacing_xyz=spacing_xyz, seed=seed,
                                    injected_dose_bq=injected_dose_bq,
                                    patient_weight_kg=patient_weight_kg, uptake_s=uptake_s)
    shape, spacing, axes = volume.shape, volume.spacing, np.asarray(volume.direction)
    series_uid = series_uid or _uid(seed, "PT", shape, spacing, series_number, series_description)
    ds = _base_dataset(PositronEmissionTomographyImageStorage, "PT", transfer_syntax, seed=seed,
                       patient_name=patient_name, patient_id=patient_id, study_uid=study_uid,
                       frame_of_reference_uid=frame_of_reference_uid, series_uid=series_uid,
                       series_number=series_number, series_description=series_description,
                       series_time=_PET_TIME, shape=shape, spacing=spacing, axes=axes)
    ds.PatientWeight = _ds(patient_weight_kg)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
    ds.RescaleIntercept = "0"
    ds.Units, ds.CountsSource, ds.SeriesType = "BQML", "EMISSION", ["STATIC", "IMAGE"]
    ds.NumberOfSlices = shape[0]
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
    ds.DecayCorrection = "START"
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT-based"
    ds.ScatterCorrectionMethod = "Model-based"
    ds.ReconstructionMethod = "OSEM 3i21s"
    ds.CollimatorType = "NONE"
    ds.FrameReferenceTime = _ds(frame_duration_s * 500.0)
    ds.ActualFrameDuration = round(frame_duration_s * 1000)
    lam = math.log(2) / F18_HALF_LIFE_S
    ds.DecayFactor = _ds(lam * frame_duration_s / -math.expm1(-lam * frame_duration_s))
    ds.DoseCalibrationFactor, ds.DeadTimeFactor = "1", "1.02"
    inj = int(_PET_TIME[:2]) * 3600 + int(_PET_TIME[2:4]) * 60 + int(_PET_TIME[4:]) - uptake_s
    inj_time = f"{int(inj // 3600):02d}{int(inj % 3600 // 60):02d}{inj % 60:05.2f}"

    def code(value: str, scheme: str, meaning: str, **extra) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        for key, val in extra.items():
            setattr(item, key, val)
        return item

    drug = Dataset()
    drug.RadionuclideCodeSequence = [code("77004003", "SCT", "^18^Fluorine")]
    drug.Radiopharmaceutical = "Fluorodeoxyglucose"
    drug.RadiopharmaceuticalStartTime = inj_time
    drug.RadiopharmaceuticalStartDateTime = _STUDY_DATE + inj_time
    drug.RadionuclideTotalDose = _ds(injected_dose_bq)
    drug.RadionuclideHalfLife = _ds(F18_HALF_LIFE_S)
    drug.RadionuclidePositronFraction = "0.9673"
    drug.RadiopharmaceuticalCodeSequence = [
        code("35321007", "SCT", "Fluorodeoxyglucose F^18^")]
    ds.RadiopharmaceuticalInformationSequence = [drug]
    ds.PatientOrientationCodeSequence = [code(
        "102538003", "SCT", "recumbent",
        PatientOrientationModifierCodeSequence=[code("40199007", "SCT", "supine")])]
    ds.PatientGantryRelationshipCodeSequence = [code("102540008", "SCT", "headfirst")]

    arr = np.asarray(volume.array, dtype=np.float64)
    slopes = []
    for k in range(shape[0]):
        peak = float(arr[k].max())
        slope = _ds(peak / 32767.0) if peak > 0 else "1"
        if float(slope) * 32767.0 < peak:  # the rounded slope must still hold the peak
            slope = _ds(peak / 32766.0)
        slopes.append(slope)

    def per_slice(d, k: int) -> None:
        d.RescaleSlope = slopes[k]
        d.ImageIndex = k + 1

    slices = (np.rint(arr[k] / float(slopes[k])).astype(np.int16) for k in range(shape[0]))
    return _write_slices(Path(folder), ds, slices, origin=np.asarray(volume.origin), axes=axes,
                         spacing_z=spacing[2], file_names=file_names,
                         instance_numbers=np.arange(1, shape[0] + 1), per_slice=per_slice)


# -- demo ------------------------------------------------------------------------------------
DEMO = {"shape": [64, 256, 256], "spacing_xyz": [1.4, 1.4, 5.0], "seed": 0, "version": 1}


def ensure_demo_phantom(folder: str | os.PathLike) -> Path:
    """Write the small demo CT phantom (64 slices of 256², 1.4 × 1.4 × 5 mm) once.

    A marker file ``medview-phantom.json`` written last records what was written; when it is
    present and matches, nothing is written again.

    Parameters
    ----------
    folder : path
        A folder of the user's data (created if missing).

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    marker = folder / "medview-phantom.json"
    try:
        if json.loads(marker.read_text()) == DEMO and all(
                (folder / f"IM{n:04d}.dcm").is_file() for n in range(1, DEMO["shape"][0] + 1)):
            return folder
    except (OSError, ValueError):
        pass  # missing or unreadable marker: write the phantom (again)
    write_ct_series(folder, shape=DEMO["shape"], spacing_xyz=DEMO["spacing_xyz"],
                    seed=DEMO["seed"], series_description="Demo phantom CT")
    marker.write_text(json.dumps(DEMO))
    return folder
