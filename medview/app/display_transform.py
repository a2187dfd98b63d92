"""Where a view draws its pixels: display pixels → view millimetres, without Qt.

A view's display coordinates ``(u, v)`` (see :mod:`medview.app.planes`) are voxel indices;
the view draws them in millimetres so the picture has the patient's proportions. For an
ordinary stack the two in-plane voxel axes are perpendicular and the mapping is a scale,
``(u · pw, v · ph)``. A gantry-tilted CT is a sheared grid: its stack axis is not
perpendicular to the slices, so a reformat containing that axis (the sagittal view of an
axial tilted head) spans two voxel axes at an angle. Shown as a rectangle of pixels it
slants the anatomy by the tilt. Here the reformat is drawn in patient geometry instead:
the in-plane voxel steps are projected onto an orthonormal screen frame lying in the
displayed plane (superior up for coronal and sagittal views, posterior down for an axial
reformat), so the image becomes a parallelogram and every displayed point sits at its
true in-plane position (distances on screen are distances in the patient). The acquired
plane's axes are always perpendicular (rows and columns of the images) and stay as
acquired.

Every mapping between screen and voxels — image, overlays, crosshair, measurements,
cursor readout, brush — goes through the one affine matrix of :func:`view_affine`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHEAR_COSINE", "view_affine"]

#: In-plane voxel axes whose directions' cosine exceeds this are treated as sheared.
SHEAR_COSINE = 1e-6

#: The patient direction (LPS) a view shows downwards: inferior for coronal and sagittal,
#: posterior for axial.
_DOWN = {"axial": np.array([0.0, 1.0, 0.0]), "coronal": np.array([0.0, 0.0, -1.0]),
         "sagittal": np.array([0.0, 0.0, -1.0])}


def view_affine(name: str, horizontal: int, vertical: int, flip_h: bool, flip_v: bool,
                shape: tuple[int, int, int], spacing, direction) -> np.ndarray:
    """The 2×3 affine matrix from display ``(u, v, 1)`` to view millimetres ``(X, Y)``.

    Parameters
    ----------
    name : {"axial", "coronal", "sagittal"}
    horizontal, vertical : int
        Voxel axes (0 = x, 1 = y, 2 = z) shown across and down.
    flip_h, flip_v : bool
        Whether the index on that axis decreases to the right / downwards.
    shape : tuple of int
        Voxel counts ``(nx, ny, nz)``.
    spacing : tuple of float
        ``(x, y, z)`` mm.
    direction : (3, 3) array
        Columns: LPS directions of the x, y, z voxel axes (not necessarily orthogonal).

    Returns
    -------
    ndarray, shape (2, 3)
        ``[[a, b, tx], [c, d, ty]]``: ``X = a u + b v + tx``, ``Y = c u + d v + ty``. For
        perpendicular axes ``diag(pw, ph)`` with no offset; for sheared ones the image's
        bounding box starts at ``(0, 0)``.
    """
    d = np.asarray(direction, dtype=float)
    pw, ph = float(spacing[horizontal]), float(spacing[vertical])
    # the LPS step of one displayed pixel to the right and one downwards
    step_u = d[:, horizontal] * pw * (-1.0 if flip_h else 1.0)
    step_v = d[:, vertical] * ph * (-1.0 if flip_v else 1.0)
    cosine = float(step_u @ step_v) / (np.linalg.norm(step_u) * np.linalg.norm(step_v))
    if abs(cosine) <= SHEAR_COSINE:
        return np.array([[pw, 0.0, 0.0], [0.0, ph, 0.0]])
    normal = np.cross(step_u, step_v)
    normal /= np.linalg.norm(normal)
    down = _DOWN.get(name, step_v)
    down = down - (down @ normal) * normal  # its projection onto the displayed plane
    if np.linalg.norm(down) < 0.1 or down @ step_v <= 0:
        down = step_v  # the plane holds (almost) none of that direction: keep the rows' one
    down = down / np.linalg.norm(down)
    right = np.cross(down, normal)  # in the plane, perpendicular to down, same handedness
    if right @ step_u <= 0:  # a shear beyond 90° from down: keep the rows' direction
        down = step_v / np.linalg.norm(step_v)
        right = np.cross(down, normal)
    linear = np.array([[step_u @ right, step_v @ right], [step_u @ down, step_v @ down]])
    nx, ny, nz = shape
    counts = (nx, ny, nz)
    w, h = counts[horizontal], counts[vertical]
    corners = linear @ np.array([[0.0, w, 0.0, w], [0.0, 0.0, h, h]])
    offset = -corners.min(axis=1)
    return np.column_stack([linear, offset])
