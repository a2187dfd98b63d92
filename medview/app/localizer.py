"""Find the localizer (scout) of a study in the catalog, for its reference line.

A localizer is another series of the same study, in the same frame of reference, whose
ImageType contains ``LOCALIZER`` — or, since not every scanner writes that, a series of one
image whose plane is nearly orthogonal (more than 60°) to the open volume's slices, as a
scout across an axial stack is. Secondary Captures, colour images and images without
geometry are never localizers. No Qt; reads only the catalog (no files).
"""

from __future__ import annotations

import numpy as np

from medview.app.mpr_model import Localizer
from medview.core.reformat.plane import ImagePlane
from medview.core.volume import Volume

__all__ = ["find_localizer", "localizer_plane"]

#: |cos| of the angle between the slice normals below which one image counts as orthogonal
_ORTHOGONAL_COS = 0.5


def localizer_plane(header) -> ImagePlane | None:
    """The ImagePlane of a catalog ``InstanceHeader`` (None without geometry)."""
    if (header.image_position is None or header.image_orientation is None
            or header.pixel_spacing is None or not header.rows or not header.columns):
        return None
    try:
        return ImagePlane.from_dicom(header.image_position, header.image_orientation,
                                     header.rows, header.columns, header.pixel_spacing)
    except ValueError:
        return None  # degenerate geometry in the header: not a usable localizer


def find_localizer(catalog, volume: Volume) -> Localizer | None:
    """The localizer of ``volume``'s study in ``catalog``, or None.

    Parameters
    ----------
    catalog : medview.dicom.catalog.db.Catalog
    volume : Volume
        The open series (its metadata's StudyInstanceUID, SeriesInstanceUID and
        FrameOfReferenceUID are used).
    """
    meta = volume.metadata
    study = str(meta.get("StudyInstanceUID") or "")
    if not study or catalog is None:
        return None
    own = str(meta.get("SeriesInstanceUID") or "")
    frame = str(meta.get("FrameOfReferenceUID") or "")
    d = volume.direction
    normal = np.cross(d[:, 0], d[:, 1])
    normal /= np.linalg.norm(normal)
    tagged, orthogonal = None, None
    for series in catalog.series(study):
        if series.uid == own or series.modality in ("SR", "KO", "SEG", "PR"):
            continue
        headers = [h for h in catalog.instances(series.uid)
                   if h.has_pixel_data and h.samples_per_pixel == 1]
        if not headers or (frame and headers[0].frame_of_reference_uid
                           and headers[0].frame_of_reference_uid != frame):
            continue
        h = headers[0]
        plane = localizer_plane(h)
        if plane is None:
            continue
        found = Localizer(plane, f"#{series.series_number} {series.description}".strip()
                          if series.series_number is not None else series.description,
                          h.frame_of_reference_uid)
        if any("LOCALIZER" in str(t).upper() for t in h.image_type):
            tagged = tagged or found
        elif len(headers) == 1 and abs(float(plane.normal @ normal)) < _ORTHOGONAL_COS:
            orthogonal = orthogonal or found
    return tagged or orthogonal
