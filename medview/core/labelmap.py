"""LabelMap: integer labels on a Volume's grid, with a table of segments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medview.core.volume import Volume

__all__ = ["LabelMap", "Segment", "default_segments"]

# a colour per label, distinguishable on gray images (Slicer's generic anatomy colours style)
_PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
]


@dataclass(frozen=True)
class Segment:
    """One label value with its name, display colour and DICOM SEG codes."""

    number: int
    name: str
    color: tuple[int, int, int] = (255, 0, 0)
    category: tuple[str, str, str] = ("91723000", "SCT", "Anatomical Structure")
    type: tuple[str, str, str] = ("85756007", "SCT", "Tissue")


def default_segments(labels) -> tuple[Segment, ...]:
    """Segments named "Segment N" with palette colours for the given label numbers."""
    return tuple(
        Segment(int(n), f"Segment {int(n)}", _PALETTE[(int(n) - 1) % len(_PALETTE)])
        for n in labels if int(n) > 0
    )


@dataclass(frozen=True, eq=False)
class LabelMap(Volume):
    """A Volume of non-negative integer labels (0 = background) and its segments."""

    segments: tuple[Segment, ...] = field(default=())

    def __post_init__(self) -> None:
        super().__post_init__()
        arr = self.array
        if arr.ndim != 3:
            raise ValueError(f"array: a label map is 3D (z, y, x), got shape {arr.shape}")
        if arr.dtype.kind not in "iub":
            raise ValueError(f"array: labels must be integers, got {arr.dtype}")
        if arr.dtype.kind == "b":
            object.__setattr__(self, "array", arr.astype(np.uint8))
        if not self.segments:
            present = np.unique(self.array)
            object.__setattr__(self, "segments", default_segments(present[present > 0]))

    @classmethod
    def like(cls, volume: Volume, labels: np.ndarray, segments=(), **metadata) -> LabelMap:
        """A label map on ``volume``'s grid.

        It keeps ``volume``'s identity (series, study, frame of reference, patient) and its
        source instances, so that a DICOM SEG can reference the series it was drawn on.
        """
        meta = {k: v for k, v in volume.metadata.items()
                if k in ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID",
                         "PatientID", "PatientName", "Modality", "source_files",
                         "source_frames", "source_sop_instance_uids", "made_up_slices")}
        meta.update(metadata)
        return cls(np.ascontiguousarray(labels), volume.spacing, volume.origin,
                   volume.direction, meta, (), tuple(segments))

    def segment(self, number: int) -> Segment:
        for s in self.segments:
            if s.number == number:
                return s
        raise KeyError(f"no segment {number}; segments: {[s.number for s in self.segments]}")

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres."""
        sx, sy, sz = self.spacing
        return float(sx * sy * sz * abs(np.linalg.det(self.direction))) / 1000.0
