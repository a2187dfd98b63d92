"""Geometry helpers on Volumes: resampling a sheared (gantry-tilted) stack onto a right grid."""

from __future__ import annotations

import numpy as np

from medview.core.volume import Volume

__all__ = ["resample_orthogonal"]


def resample_orthogonal(volume: Volume, *, default_value: float | None = None) -> Volume:
    """Resample a sheared stack onto an orthogonal grid covering it (dcm2niix's tilt fix).

    The new grid keeps the in-plane axes and spacing, its z axis is the slice normal, its z
    spacing the distance between slice planes. Voxels outside the acquired stack get
    ``default_value`` (default: the volume's minimum, i.e. air for CT). Linear interpolation;
    nearest neighbour for a LabelMap (labels are not quantities), which stays a LabelMap with
    its segments. A volume that is already orthogonal is returned unchanged.

    Parameters
    ----------
    volume : Volume
        Scalar volume, possibly with a non-orthogonal ``direction``.
    default_value : float, optional
        Value outside the acquired stack.

    Returns
    -------
    Volume
        On an orthonormal grid; same dtype; a warning records the resampling.
    """
    if not volume.is_oblique_stack:
        return volume
    if volume.is_rgb:
        raise ValueError("volume: resampling a sheared RGB volume is not supported")
    import SimpleITK as sitk

    d = volume.direction
    row, col = d[:, 0], d[:, 1]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    if normal @ d[:, 2] < 0:
        normal = -normal
    nz, ny, nx = volume.shape
    # corners of the acquired stack, expressed on the new axes
    corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)])
    world = volume.index_to_lps(corners)
    new_dir = np.column_stack([row, col, normal])
    local = (world - np.asarray(volume.origin)) @ new_dir
    lo, hi = local.min(axis=0), local.max(axis=0)
    sx, sy, sz = volume.spacing
    dz = sz * abs(float(normal @ d[:, 2]))
    spacing = (sx, sy, dz)
    size = [int(round((hi[a] - lo[a]) / spacing[a])) + 1 for a in range(3)]
    origin = np.asarray(volume.origin) + new_dir @ lo
    from medview.core.labelmap import LabelMap

    is_labels = isinstance(volume, LabelMap)
    if default_value is None:
        default_value = 0.0 if is_labels else float(volume.array.min())
    img = volume.to_sitk()
    out = sitk.Resample(
        img, size, sitk.Transform(),
        sitk.sitkNearestNeighbor if is_labels else sitk.sitkLinear, tuple(origin), spacing,
        tuple(new_dir.ravel()), default_value, img.GetPixelID(),
    )
    arr = sitk.GetArrayFromImage(out)
    tilt = np.degrees(np.arccos(min(1.0, abs(float(normal @ d[:, 2])))))
    warn = (
        f"resampled the {tilt:.2f}°-tilted stack onto an orthogonal grid "
        f"({nx}×{ny}×{nz} → {size[0]}×{size[1]}×{size[2]}, "
        f"{'nearest neighbour' if is_labels else 'linear'} interpolation)"
    )
    if is_labels:
        return LabelMap(arr, spacing, tuple(origin), new_dir, volume.metadata,
                        (*volume.warnings, warn), volume.segments)
    return Volume(arr, spacing, tuple(origin), new_dir, volume.metadata,
                  (*volume.warnings, warn))
