"""InstanceHeader: what medview keeps of one DICOM file without parsing it again.

The header scanner (:mod:`medview.dicom.scan.scanner`) produces these; the catalog stores them
(one row per file); series assembly and pixel reading use nothing else. Everything here is
plain Python (str, int, float, tuples) so it pickles across processes and maps to SQLite.

Conventions
-----------
- ``pixel_spacing`` is DICOM's order: (row spacing, column spacing) = (y, x) in mm.
- ``image_position`` is ImagePositionPatient (LPS mm) of the first pixel's centre;
  ``image_orientation`` is ImageOrientationPatient: row direction (x axis) then column
  direction (y axis), 6 floats.
- For multi-frame files with per-frame functional groups ``frames`` holds one
  :class:`FrameInfo` per frame (position, orientation, spacing, rescale, stack/temporal
  keys); for classic single-frame files it is empty and the top-level fields apply.
- ``warnings`` lists what the scan read past: an invalid value or a wrong VR (with the tag),
  an executable file header in the preamble (the CVE-2019-11687 polyglot).
- ``pixel_data_offset`` is the byte offset in the file of the *value* of (7FE0,0010) for
  native (uncompressed) transfer syntaxes, ``None`` for encapsulated ones or when unknown;
  ``pixel_data_length`` is the declared value length (-1 for undefined/encapsulated).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["FrameInfo", "InstanceHeader"]

Vec3 = tuple[float, float, float]
Vec6 = tuple[float, float, float, float, float, float]


@dataclass(slots=True)
class FrameInfo:
    """Geometry and value mapping of one frame of a multi-frame (enhanced) image."""

    image_position: Vec3 | None = None
    image_orientation: Vec6 | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    stack_id: str | None = None
    in_stack_position: int | None = None
    temporal_position: int | None = None
    dimension_index: tuple[int, ...] | None = None
    echo_time: float | None = None


@dataclass(slots=True)
class InstanceHeader:
    """One DICOM file as medview needs it."""

    path: str
    file_size: int = 0
    mtime_ns: int = 0

    # identity
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax_uid: str = ""
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_instance_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series_instance_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    modality: str = ""
    manufacturer: str = ""
    body_part: str = ""
    frame_of_reference_uid: str = ""
    image_type: tuple[str, ...] = ()

    # ordering and stacks
    instance_number: int | None = None
    acquisition_number: int | None = None
    echo_number: int | None = None
    echo_time: float | None = None
    temporal_position: int | None = None
    trigger_time: float | None = None
    acquisition_time: str = ""

    # pixel module
    rows: int = 0
    columns: int = 0
    number_of_frames: int = 1
    samples_per_pixel: int = 1
    photometric_interpretation: str = ""
    planar_configuration: int = 0
    bits_allocated: int = 0
    bits_stored: int = 0
    high_bit: int = 0
    pixel_representation: int = 0
    pixel_data_offset: int | None = None
    pixel_data_length: int = -1
    has_pixel_data: bool = False

    # geometry
    image_position: Vec3 | None = None
    image_orientation: Vec6 | None = None
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    spacing_between_slices: float | None = None
    gantry_tilt: float | None = None

    # values
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    rescale_type: str = ""
    window_center: float | None = None
    window_width: float | None = None

    # vendor specifics
    mosaic_count: int | None = None  # Siemens NumberOfImagesInMosaic (from CSA or 0019,100A)
    csa_slice_normal: Vec3 | None = None  # Siemens CSA SliceNormalVector (mosaic slice order)

    # multi-frame
    frames: tuple[FrameInfo, ...] = field(default_factory=tuple)

    # what the scan found wrong but could read past (each names the tag or the preamble)
    warnings: tuple[str, ...] = ()

    @property
    def is_multiframe(self) -> bool:
        return self.number_of_frames > 1

    @property
    def is_mosaic(self) -> bool:
        return bool(self.mosaic_count and self.mosaic_count > 1)

    @property
    def is_little_endian(self) -> bool:
        return self.transfer_syntax_uid != "1.2.840.10008.1.2.2"

    @property
    def is_native(self) -> bool:
        """Uncompressed pixel data (explicit/implicit little endian or big endian)."""
        return self.transfer_syntax_uid in {
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2.2",
        }

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InstanceHeader:
        d = dict(d)
        frames = tuple(
            FrameInfo(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in f.items()})
            for f in d.pop("frames", ()) or ()
        )
        for key in ("image_position", "image_orientation", "pixel_spacing", "image_type",
                    "warnings"):
            if isinstance(d.get(key), list):
                d[key] = tuple(d[key])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names}, frames=frames)
