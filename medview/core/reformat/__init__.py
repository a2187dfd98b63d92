"""Reformatting: image planes, oblique MPR, thick-slab projections, reference lines.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "MODES",
    "VIEWS",
    "ImagePlane",
    "MprFrame",
    "ReferenceLine",
    "SlabPlan",
    "SlabProjector",
    "mpr_plane",
    "plan_slab",
    "project_slab",
    "reference_line",
    "sample_plane",
]

__getattr__, __dir__ = attach(__name__, {
    "ImagePlane": "medview.core.reformat.plane",
    "MODES": "medview.core.reformat.slab",
    "mpr_plane": "medview.core.reformat.oblique",
    "MprFrame": "medview.core.reformat.oblique",
    "plan_slab": "medview.core.reformat.slab",
    "project_slab": "medview.core.reformat.slab",
    "reference_line": "medview.core.reformat.reference_lines",
    "ReferenceLine": "medview.core.reformat.reference_lines",
    "sample_plane": "medview.core.reformat.oblique",
    "SlabPlan": "medview.core.reformat.slab",
    "SlabProjector": "medview.core.reformat.slab",
    "VIEWS": "medview.core.reformat.oblique",
})
