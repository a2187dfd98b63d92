"""Registration: resampling onto another grid, rigid registration, sheared stacks.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "register_rigid",
    "resample_orthogonal",
    "resample_to_grid",
    "rigid_matrix",
]

__getattr__, __dir__ = attach(__name__, {
    "register_rigid": "medview.core.registration.rigid",
    "resample_orthogonal": "medview.core.registration.oblique",
    "resample_to_grid": "medview.core.registration.resample",
    "rigid_matrix": "medview.core.registration.rigid",
})
