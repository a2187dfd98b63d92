"""The Volume: a 3D image in patient coordinates (LPS, millimetres).

Convention (SimpleITK's): ``array`` is indexed ``[z, y, x]`` (plane, row, column) and is
C-contiguous; ``spacing`` is ``(x, y, z)`` in mm; ``origin`` is the LPS position of voxel
``(x, y, z) = (0, 0, 0)``; ``direction`` is a 3×3 matrix whose *columns* are the LPS unit
directions of the x, y and z index axes. The position of voxel index ``(i, j, k)`` (x, y, z) is

    origin + direction @ (spacing * (i, j, k))

``direction`` is orthonormal for ordinary stacks. For a gantry-tilted CT stack the slices are
sheared against the in-plane axes; medview keeps the acquired slices untouched and lets the
z column of ``direction`` point along the real step from one slice centre to the next (a
unit vector that is *not* perpendicular to the slice plane), so every pixel of every slice
sits at the patient position its own header gives. ``Volume.is_oblique_stack`` tells.

RGB volumes have shape ``[z, y, x, 3]`` and dtype uint8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["Volume"]


def _freeze(meta: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(meta or {}))


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D (or RGB 3D) image with its patient geometry.

    Parameters
    ----------
    array : ndarray, shape (nz, ny, nx) or (nz, ny, nx, 3)
        Voxel values (physical values: HU for CT after rescale).
    spacing : tuple of 3 floats
        Voxel size along x, y, z in mm; all > 0.
    origin : tuple of 3 floats
        LPS position of voxel (0, 0, 0) in mm.
    direction : ndarray, shape (3, 3)
        Columns are the LPS directions of the x, y, z index axes (unit vectors).
    metadata : mapping
        Read-only facts about the source (modality, units, series UID, ...).
    warnings : tuple of str
        Problems found while building the volume and what was done about them.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        arr = self.array
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"array: expected a numpy array, got {type(arr).__name__}")
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] not in (3, 4)):
            raise ValueError(
                f"array: expected shape (z, y, x) or (z, y, x, 3), got {arr.shape}"
            )
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise ValueError(f"spacing: expected 3 positive millimetre values, got {self.spacing}")
        origin = tuple(float(o) for o in self.origin)
        if len(origin) != 3 or not all(np.isfinite(origin)):
            raise ValueError(f"origin: expected 3 finite millimetre values, got {self.origin}")
        direction = np.array(self.direction, dtype=np.float64).reshape(3, 3)
        if abs(np.linalg.det(direction)) < 1e-6:
            raise ValueError(f"direction: singular matrix {direction.tolist()}")
        direction.setflags(write=False)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "metadata", _freeze(self.metadata))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # -- shape -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(nz, ny, nx)``: the spatial shape, without the colour axis."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def is_oblique_stack(self) -> bool:
        """True when the slice step is not perpendicular to the slices (gantry tilt)."""
        d = self.direction
        normal = np.cross(d[:, 0], d[:, 1])
        return bool(abs(abs(float(normal @ d[:, 2])) - 1.0) > 1e-4)

    # -- geometry ----------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4×4 matrix mapping homogeneous index ``(x, y, z, 1)`` to LPS millimetres."""
        a = np.eye(4)
        a[:3, :3] = self.direction * np.asarray(self.spacing)[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    @property
    def affine_ras(self) -> np.ndarray:
        """4×4 index ``(x, y, z, 1)`` → RAS mm, as NIfTI's sform stores it."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine

    def index_to_lps(self, index_xyz) -> np.ndarray:
        """LPS positions (mm) of continuous indices given as ``(..., 3)`` in x, y, z order."""
        idx = np.asarray(index_xyz, dtype=np.float64)
        return idx @ (self.direction * np.asarray(self.spacing)).T + np.asarray(self.origin)

    def lps_to_index(self, lps) -> np.ndarray:
        """Continuous indices (x, y, z) of LPS positions given as ``(..., 3)``."""
        m = self.direction * np.asarray(self.spacing)
        p = np.asarray(lps, dtype=np.float64) - np.asarray(self.origin)
        return np.linalg.solve(m, p.reshape(-1, 3).T).T.reshape(p.shape)

    def same_grid(self, other: Volume, *, atol: float = 1e-4) -> bool:
        """True when ``other`` has the same shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    # -- derivation --------------------------------------------------------------------
    def with_array(self, array: np.ndarray, **metadata: Any) -> Volume:
        """A new Volume on the same grid with ``array`` and metadata updated by ``metadata``."""
        arr = np.asarray(array)
        if arr.shape[:3] != self.shape:
            raise ValueError(f"array: shape {arr.shape[:3]} does not match the grid {self.shape}")
        meta = dict(self.metadata)
        meta.update(metadata)
        return Volume(arr, self.spacing, self.origin, self.direction, meta, self.warnings)

    def to_sitk(self):
        """A SimpleITK image with the same voxels and geometry (a copy)."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array, isVector=self.is_rgb)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel()))
        return img

    @classmethod
    def from_sitk(cls, image, metadata: Mapping[str, Any] | None = None) -> Volume:
        """A Volume from a 3D SimpleITK image (scalar or RGB)."""
        import SimpleITK as sitk

        arr = sitk.GetArrayFromImage(image)
        if image.GetDimension() != 3:
            raise ValueError(f"image: expected a 3D image, got {image.GetDimension()}D")
        return cls(
            arr,
            image.GetSpacing(),
            image.GetOrigin(),
            np.array(image.GetDirection()).reshape(3, 3),
            metadata or {},
        )

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)}, "
            f"origin={tuple(round(o, 3) for o in self.origin)}, "
            f"modality={self.metadata.get('Modality')!r}, warnings={len(self.warnings)})"
        )
