"""What every DICOM exporter shares: the source series, geometry checks.

Atomic targets come from :mod:`medview.atomic`.

A Volume loaded from DICOM carries its source instances in ``metadata`` (``source_files``,
``source_frames``, ``source_sop_instance_uids``, one per slice, see
:func:`medview.dicom.pixels.read.read_stack`). Exporters read the source headers again (no pixels)
to copy the patient and study modules and to reference the source images.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from medview.core.volume import Volume
from medview.dicom.errors import DicomError

__all__ = [
    "ExportError",
    "InvalidUIDWarning",
    "SourceSeries",
    "quiet_highdicom",
    "source_series",
]

#: attributes of the Patient and General Study modules copied from the source (type 2 ones
#: are written empty when the source lacks them)
PATIENT_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                       "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                       "AccessionNumber")
PATIENT_STUDY_OPTIONAL = ("IssuerOfPatientID", "PatientAge", "PatientSize", "PatientWeight",
                          "StudyDescription", "PatientIdentityRemoved",
                          "DeidentificationMethod")


class ExportError(DicomError):
    """An export that cannot be done as asked (no source series, grid mismatch, …)."""


class InvalidUIDWarning(UserWarning):
    """A source header held an invalid UID; the export carries a valid replacement."""


# ---------------------------------------------------------------------------------------------
# the source series
# ---------------------------------------------------------------------------------------------
@contextmanager
def quiet_highdicom() -> Iterator[None]:
    """Silence highdicom's advice about real-world source values it copies as they are.

    Scanners write single-component patient names ("HEAD"); highdicom warns about each. The
    names are copied unchanged, which is what the standard asks of a derived object.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person",
                                category=UserWarning)
        yield


@dataclass
class SourceSeries:
    """The source instance of every slice of a volume, with their headers (no pixels).

    ``datasets[k]`` and ``frames[k]`` describe slice ``k`` of the volume (z order).
    """

    files: list[str]
    frames: list[int]
    sop_instance_uids: list[str]
    datasets: list  # pydicom Datasets, one per slice (shared between frames of one file)

    @property
    def first(self):
        return self.datasets[0]

    @property
    def is_multiframe(self) -> bool:
        return int(getattr(self.first, "NumberOfFrames", 1) or 1) > 1

    def reference_item(self, k: int):
        """A Referenced/Source Image Sequence item for slice ``k``."""
        from pydicom.dataset import Dataset

        ds = self.datasets[k]
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            item.ReferencedFrameNumber = self.frames[k] + 1
        return item

    def frame_geometry(self, k: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """ImagePositionPatient, ImageOrientationPatient and PixelSpacing of slice ``k``."""
        ds, f = self.datasets[k], self.frames[k]
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
            frame = ds.PerFrameFunctionalGroupsSequence[f]

            def find(seq_name):
                for group in (frame, shared):
                    if group is not None and seq_name in group:
                        return group[seq_name].value[0]
                raise ExportError(f"{ds.filename}: frame {f + 1} has no {seq_name}")

            ipp = find("PlanePositionSequence").ImagePositionPatient
            iop = find("PlaneOrientationSequence").ImageOrientationPatient
            ps = find("PixelMeasuresSequence").PixelSpacing
        else:
            ipp, iop, ps = ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
        return (np.asarray(ipp, float), np.asarray(iop, float),
                (float(ps[0]), float(ps[1])))


def _sanitize(ds) -> None:
    """Make a real-world source header acceptable as a template for derived objects."""
    if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
        del ds.SpecificCharacterSet
    for keyword in PATIENT_STUDY_TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if (str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
            and not ds.get("DeidentificationMethod")
            and not ds.get("DeidentificationMethodCodeSequence")):
        # type 1C then; real de-identified files leave it empty, which derived objects
        # would inherit as an error
        ds.DeidentificationMethod = "not recorded in the source images"


def source_series(volume: Volume, *, what: str) -> SourceSeries:
    """The source DICOM instances of ``volume``'s slices, with their headers read again.

    Parameters
    ----------
    volume : Volume
        A volume loaded from DICOM (or derived from one on the same grid).
    what : str
        What is being exported, for the error messages.

    Raises
    ------
    ExportError
        If the volume has no source instances, or a source file is not available.
    """
    import pydicom

    meta = volume.metadata
    files = list(meta.get("source_files") or ())
    frames = list(meta.get("source_frames") or [0] * len(files))
    uids = list(meta.get("source_sop_instance_uids") or ())
    if not files:
        raise ExportError(
            f"{what}: the volume does not come from a DICOM series (no source instances in "
            "its metadata), so there is nothing to reference; load the source series with "
            "medview.load and pass it as source, or export NIfTI/NRRD instead"
        )
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise ExportError(
            f"{what}: {len(missing)} source DICOM file(s) are not available, e.g. {missing[0]}; "
            "the source series must be readable to reference it"
        )
    from medview.dicom.export._uids import quiet_uid_validation, replace_invalid_uids

    cache: dict[str, object] = {}
    datasets = []
    replaced: dict[str, str] = {}
    for f in files:
        if f not in cache:
            # pydicom's own warnings about invalid UIDs are replaced by one that says what
            # was done (the values are converted lazily: the walk of the replacement too)
            with quiet_uid_validation():
                try:
                    ds = pydicom.dcmread(f, stop_before_pixels=True)
                except Exception as exc:  # pydicom raises several types for broken files
                    raise ExportError(f"{what}: source file {f} cannot be read: {exc}") from exc
                _sanitize(ds)
                fixed = replace_invalid_uids(ds, replaced)
            if fixed:
                warnings.warn(
                    f"{what}: invalid UID(s) in source file {f} replaced (a UID is digits "
                    f"and dots, no leading zeros, at most 64 characters): {'; '.join(fixed)}",
                    InvalidUIDWarning, stacklevel=3)
            cache[f] = ds
        datasets.append(cache[f])
    uids = [replaced.get(u, u) for u in uids]
    if not uids:
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
    return SourceSeries(files, frames, uids, datasets)


def check_same_grid(volume: Volume, src: SourceSeries, *, what: str,
                    atol_mm: float = 0.01) -> None:
    """Refuse unless slice ``k`` of ``volume`` lies exactly on source slice ``k``.

    Raises
    ------
    ExportError
        If the number of slices, the image size, the pixel spacing, the orientation or a slice
        position differs (e.g. the volume was resampled or cropped).
    """
    nz, ny, nx = volume.shape
    if nz != len(src.files):
        why = ("the series was resampled onto a uniform grid when it was loaded"
               if "acquired_positions_mm" in volume.metadata
               else "resampled or cropped, at load or since")
        raise ExportError(
            f"{what}: the grid has {nz} slices but its source series has {len(src.files)} "
            f"acquired slices ({why}); an object that references the source images must lie "
            "on them: export NIfTI/NRRD instead, or resample onto the source slices first"
        )
    d = volume.direction
    for k in range(nz):
        ds = src.datasets[k]
        rows, cols = int(ds.Rows), int(ds.Columns)
        ipp, iop, ps = src.frame_geometry(k)
        expected = volume.index_to_lps((0.0, 0.0, float(k)))
        problems = []
        if (rows, cols) != (ny, nx):
            problems.append(f"image size {cols}×{rows} vs {nx}×{ny}")
        if not np.allclose(iop, np.r_[d[:, 0], d[:, 1]], atol=1e-4):
            problems.append(f"orientation {iop.round(5).tolist()}")
        if not np.allclose(ps, (volume.spacing[1], volume.spacing[0]), atol=1e-4):
            problems.append(f"pixel spacing {list(ps)} vs {volume.spacing[1]:.5g}, "
                            f"{volume.spacing[0]:.5g}")
        if np.abs(ipp - expected).max() > atol_mm:
            problems.append(f"position {ipp.round(3).tolist()} vs grid "
                            f"{expected.round(3).tolist()}")
        if problems:
            raise ExportError(
                f"{what}: slice {k} does not lie on its source image {src.files[k]} "
                f"({'; '.join(problems)}); the grid was changed (resampled, cropped?) since "
                "it was loaded: export NIfTI/NRRD instead"
            )


def nearest_source_planes(volume: Volume, src: SourceSeries, *, what: str) -> np.ndarray:
    """For each source slice, the index of the volume's slice nearest to it.

    For a volume whose slices run along the source stack but at other positions (a series
    resampled onto a uniform grid at load): the in-plane grid must be the source's.

    Raises
    ------
    ExportError
        If the image size, orientation or pixel spacing differs, a source slice is shifted
        in-plane against the grid, or lies outside the grid.
    """
    nz, ny, nx = volume.shape
    d = volume.direction
    out = np.empty(len(src.files), dtype=np.intp)
    for j in range(len(src.files)):
        ds = src.datasets[j]
        ipp, iop, ps = src.frame_geometry(j)
        if (int(ds.Rows), int(ds.Columns)) != (ny, nx) or not np.allclose(
            iop, np.r_[d[:, 0], d[:, 1]], atol=1e-4
        ) or not np.allclose(ps, (volume.spacing[1], volume.spacing[0]), atol=1e-4):
            raise ExportError(f"{what}: source image {src.files[j]} has another size, "
                              "orientation or pixel spacing than the grid")
        idx = volume.lps_to_index(ipp)
        k = round(float(idx[2]))
        shift = np.abs(idx[:2]) * np.asarray(volume.spacing[:2])
        if shift.max() > 0.01 or not -0.5 <= idx[2] <= nz - 0.5:
            raise ExportError(f"{what}: source image {src.files[j]} at "
                              f"{ipp.round(3).tolist()} is not on the grid's stack "
                              f"(index {np.round(idx, 3).tolist()})")
        out[j] = min(max(k, 0), nz - 1)
    return out


def software_version() -> str:
    from medview import __version__

    return __version__


def copy_patient_study(src_ds, dst) -> None:
    """Copy the Patient and General Study modules from a source header into ``dst``."""
    dst.StudyInstanceUID = src_ds.StudyInstanceUID
    for keyword in PATIENT_STUDY_TYPE2:
        setattr(dst, keyword, src_ds.get(keyword, ""))
    for keyword in PATIENT_STUDY_OPTIONAL:
        if keyword in src_ds:
            dst[keyword] = src_ds[keyword]


def uid_list(values: Sequence[str]) -> list[str]:
    return [str(v) for v in values]
