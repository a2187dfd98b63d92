"""A DICOM SEG opened from the browser: an overlay on the series it was drawn on.

A SEG's pixels are masks, not an image: showing them grey is of no use to a reader. Opening
a SEG series opens (or keeps) the series it references and shows the SEG as its label map,
with the SEG's segment names and colours (:func:`medview.dicom.read_seg.read_seg`, which
places each frame by its own patient position). A SEG whose referenced series is not in the
catalog gets a message saying which series to import.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medview.app.tasks import TaskError

__all__ = ["SegReference", "open_seg_series", "seg_reference"]

log = logging.getLogger(__name__)


class SegReference:
    """A SEG file of the catalog and the series it references."""

    def __init__(self, path: Path, referenced_uid: str, description: str):
        self.path = path
        self.referenced_uid = referenced_uid
        self.description = description


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


def _read(ref: SegReference, volume):
    """The SEG as a label map on ``volume``; overlapping segments: the higher number wins
    (a label map holds one label per voxel), said in the returned note."""
    from medview.dicom.read_seg import SegReadError, read_seg

    try:
        return read_seg(ref.path, source=volume), ""
    except SegReadError as exc:
        if "overlap" not in str(exc):
            raise
    labels = read_seg(ref.path, source=volume, overlap="last")
    return labels, "; segments overlap: the higher segment number is shown where they do"


def open_seg_series(window, series_uid: str) -> bool:
    """Open SEG series ``series_uid`` of the window's catalog as a label map over the series
    it references (opened first unless shown). False (with a message) when that cannot be
    done; True when the SEG is shown or on its way (``window.seg_opened`` follows)."""
    catalog = window.catalog
    try:
        ref = seg_reference(catalog, series_uid)
    except (OSError, ValueError) as exc:  # error boundary: a message, not a grey image
        window._show_error(TaskError("Opening the segmentation", exc, ""))
        return False
    if not catalog.instances(ref.referenced_uid):
        window._show_message(
            "Source series missing",
            f"The segmentation “{ref.description}” was drawn on series "
            f"{ref.referenced_uid}, which is not in the catalog. Import the folder of that "
            "series, then open the segmentation again.")
        return False
    shown = window.state.volume
    if (shown is not None and not window.state.is_loading
            and shown.metadata.get("SeriesInstanceUID") == ref.referenced_uid):
        if window.unsaved.work.is_unsaved("labels") and not window.unsaved.confirm(
                "replacing the label map"):
            return False
        _start_reading(window, ref, shown)
        return True
    if not window.unsaved.confirm("opening another series"):
        return False

    def opened(volume) -> None:
        if volume.metadata.get("SeriesInstanceUID") != ref.referenced_uid:
            return
        window.series_opened.disconnect(opened)
        _start_reading(window, ref, volume)

    window.series_opened.connect(opened)
    window.open_series(ref.referenced_uid)
    return True


def _start_reading(window, ref: SegReference, volume) -> None:
    def finished(result) -> None:
        labels, note = result
        if window.state.volume is not volume and (
                window.state.volume is None or window.state.volume.metadata.get(
                    "SeriesInstanceUID") != volume.metadata.get("SeriesInstanceUID")):
            return  # the reader moved on to another series meanwhile
        window.state.set_labels(labels)
        window.unsaved.work.mark_saved("labels")  # as it is in the SEG file
        names = ", ".join(s.name for s in labels.segments)
        window.statusBar().showMessage(
            f"Segmentation {ref.description}: {len(labels.segments)} segment(s) ({names}){note}",
            8000)
        window.seg_opened.emit(labels)

    def failed(error: TaskError) -> None:
        window._show_error(error)

    task = window.tasks.start(f"Reading the segmentation {ref.description}",
                              lambda progress: _read(ref, volume),
                              on_finished=finished, on_failed=failed)
    window._track_progress(task)
