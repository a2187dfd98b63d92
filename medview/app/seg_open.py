"""A DICOM SEG opened from the browser: an overlay on the series it was drawn on.

A SEG's pixels are masks, not an image: showing them grey is of no use to a reader. Opening
a SEG series opens (or keeps) the series it references and shows the SEG as its label map,
with the SEG's segment names and colours (:func:`medview.dicom.series.seg.read_seg`, which
places each frame by its own patient position). A SEG whose referenced series is not in the
catalog gets a message saying which series to import.

This module finds the SEG's file and source series; the Session reads it
(:meth:`~medview.app.session.Session.read_seg`) and the window shows it
(:mod:`medview.gui.seg_actions`).
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["SegReference", "is_seg_series", "seg_reference"]

log = logging.getLogger(__name__)


class SegReference:
    """A SEG file of the catalog and the series it references."""

    def __init__(self, path: Path, referenced_uid: str, description: str):
        self.path = path
        self.referenced_uid = referenced_uid
        self.description = description
        #: whether the referenced series is in the catalog (set by Session.seg_reference)
        self.source_in_catalog = True


def is_seg_series(catalog, series_uid: str) -> bool:
    """True when catalog series ``series_uid`` is a DICOM Segmentation."""
    if catalog is None:
        return False
    record = next((r for r in catalog.series() if r.uid == series_uid), None)
    return record is not None and str(record.modality).upper() == "SEG"


def seg_reference(catalog, series_uid: str) -> SegReference:
    """The SEG file of catalog series ``series_uid`` and the series its frames were drawn on
    (Referenced Series Sequence, else the series of the first source image).

    Raises
    ------
    ValueError
        If the series has no SEG file, or the SEG names no source series.
    """
    import pydicom

    instances = catalog.instances(series_uid)
    if not instances:
        raise ValueError(f"series {series_uid} has no files in the catalog")
    path = Path(instances[0].path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ref = ""
    if "ReferencedSeriesSequence" in ds and len(ds.ReferencedSeriesSequence):
        ref = str(ds.ReferencedSeriesSequence[0].get("SeriesInstanceUID", ""))
    if not ref:
        # a SEG without the series reference: find the series of a source image it names
        sops = set()
        for group in ds.get("PerFrameFunctionalGroupsSequence", []):
            for der in group.get("DerivationImageSequence", []):
                for src in der.get("SourceImageSequence", []):
                    sops.add(str(src.ReferencedSOPInstanceUID))
        for record in catalog.series():
            if record.uid != series_uid and sops & {
                    str(i.sop_instance_uid) for i in catalog.instances(record.uid)}:
                ref = record.uid
                break
    if not ref:
        raise ValueError(f"{path}: the segmentation names no source series (no Referenced "
                         "Series Sequence, and none of its source images is in the catalog)")
    return SegReference(path, ref, str(ds.get("SeriesDescription", "") or path.name))
