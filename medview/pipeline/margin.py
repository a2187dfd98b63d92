"""How much of a volume a step needs around a slice for that slice's result to be exact.

Each step declares its margin where it is registered (``register(..., margin=...)``): a
:class:`Margin`, or a function of the step's parameters returning one. The live preview
(:mod:`medview.app.chain_preview`) runs a chain on the slab ``±margin`` around the shown slice;
a step that declares none needs the whole volume (:data:`WHOLE`: on a slab its result is an
approximation, which the preview says).

Typical declarations::

    margin=EXACT                                    # voxel by voxel, or slice by slice
    margin=lambda p: in_plane(p, Margin(4.0 * p["sigma_mm"] + 1e-6))   # a 3D kernel's reach
    margin=lambda p: EXACT if fixed_range(p) else WHOLE   # global unless the range is given
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EXACT", "WHOLE", "Margin", "fixed_range", "in_plane"]


@dataclass(frozen=True)
class Margin:
    """``mm`` plus ``voxels`` slices on each side; ``exact`` when the middle slice of a run
    on that slab equals the same slice of a run on the whole volume."""

    mm: float = 0.0
    voxels: int = 0
    exact: bool = True

    def slices(self, spacing_z: float) -> int:
        """The margin in slices of ``spacing_z`` millimetres."""
        mm = math.ceil(self.mm / spacing_z - 1e-9) if self.mm > 0 else 0
        return int(mm + self.voxels)

    def __add__(self, other: Margin) -> Margin:
        return Margin(self.mm + other.mm, self.voxels + other.voxels,
                      self.exact and other.exact)


#: Voxel by voxel or slice by slice: the slice alone gives the exact result.
EXACT = Margin()
#: Needs the whole volume (global statistics, iterations, training): a slab approximates.
WHOLE = Margin(exact=False)


def fixed_range(p: Mapping[str, Any]) -> bool:
    """Both ``in_low`` and ``in_high`` are given (not taken from the volume's own range)."""
    return p.get("in_low") is not None and p.get("in_high") is not None


def in_plane(p: Mapping[str, Any], margin: Margin) -> Margin:
    """:data:`EXACT` when the step works slice by slice (``in_plane_only``), else ``margin``."""
    return EXACT if p.get("in_plane_only") else margin
