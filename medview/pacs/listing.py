"""The instances of a study or a series on a PACS, with the geometry a viewer needs to place
each one before it arrives (C-FIND at IMAGE level / QIDO-RS instance query).

Orthanc and most PACS answer Image Position and Orientation (Patient) at this level; where a
PACS leaves them empty, ``position``/``orientation`` are None and a viewer waits for the files.
"""

from __future__ import annotations

from typing import NamedTuple

from medview.core.progress import NO_PROGRESS
from medview.pacs.nodes import DimseNode, Node

__all__ = ["ListedInstance", "instance_table"]


class ListedInstance(NamedTuple):
    """One instance as the PACS lists it."""

    series_uid: str
    sop_class: str
    #: Image Position (Patient), mm (None when the PACS did not say)
    position: tuple[float, float, float] | None = None
    #: Image Orientation (Patient), row then column direction cosines (None when not said)
    orientation: tuple[float, ...] | None = None
    #: Number of Frames (1 when the PACS did not say)
    frames: int = 1


def _floats(value, n: int) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        values = value.split("\\")
    elif hasattr(value, "__iter__"):  # a MultiValue, or a list from DICOM JSON
        values = list(value)
    else:
        values = [value]
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _int(value, default: int = 1) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def instance_table(node: Node, study_uid: str, series_uid: str = "") -> dict[str, ListedInstance]:
    """SOP Instance UID → :class:`ListedInstance` of every instance of a study (or a series).

    Raises
    ------
    medview.pacs.errors.PacsError
    """
    from medview.pacs.query import STUDY_FIND, _c_find, _from_json, _s

    if isinstance(node, DimseNode):
        from pydicom.dataset import Dataset

        from medview.pacs.dimse import association

        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ""
        ds.SOPClassUID = ""
        ds.ImagePositionPatient = None
        ds.ImageOrientationPatient = None
        ds.NumberOfFrames = None
        from medview.pacs._parallel import TRANSIENT_WAIT_S

        # a PACS at its limit of associations (the retrieve's own, or our last one not yet
        # ended on its side) answers "rejected transient": wait for it
        with association(node, [STUDY_FIND],
                         transient_wait_s=min(TRANSIENT_WAIT_S, node.timeout_s)) as assoc:
            found = _c_find(assoc, node, ds, NO_PROGRESS)
    else:
        from medview.pacs.web import web_client, web_errors

        with web_errors(node, "QIDO-RS instance query"):
            found = _from_json(web_client(node).search_for_instances(
                study_uid, series_uid or None,
                fields=["SeriesInstanceUID", "SOPClassUID", "ImagePositionPatient",
                        "ImageOrientationPatient", "NumberOfFrames"]))
    return {_s(d, "SOPInstanceUID"): ListedInstance(
        _s(d, "SeriesInstanceUID") or series_uid, _s(d, "SOPClassUID"),
        _floats(d.get("ImagePositionPatient"), 3), _floats(d.get("ImageOrientationPatient"), 6),
        _int(d.get("NumberOfFrames"))) for d in found}
