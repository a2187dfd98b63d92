"""Validate what medview writes with dicom3tools' ``dciodvfy`` (a real IOD validator).

Every DICOM object an export test writes goes through :func:`assert_valid_dicom`: no line of
dciodvfy's output may start with ``Error``; the warnings are returned for tests to check.

Label Map Segmentations (DICOM 2024, SOP class ``1.2.840.10008.5.1.4.1.1.66.7``) are newer
than the dciodvfy of Debian 12, which answers "Information Object Not found" for them. They are
validated against the Segmentation IOD they extend (a copy with the classic SEG SOP class):
every error must be one of the three differences the Label Map IOD makes, listed in
:data:`LABELMAP_DIFFERENCES`; anything else fails.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from realparts import require_tool

LABEL_MAP_SEG = "1.2.840.10008.5.1.4.1.1.66.7"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"

#: what the Label Map IOD allows that the Segmentation IOD of this dciodvfy does not
LABELMAP_DIFFERENCES = (
    # Segmentation Type LABELMAP (the enumerated values used to be BINARY and FRACTIONAL)
    re.compile(r"Error - Unrecognized enumerated value <LABELMAP> for value 1 of attribute "
               r"<Segmentation Type>"),
    # segment 0 describes the background of a label map
    re.compile(r"Error - Value is zero for value 1 of attribute <Segment Number>"),
    re.compile(r"Error - SegmentNumber not monotonically increasing from one by one - have "
               r"SegmentSequence item number 1 \(from one\) with SegmentNumber of 0"),
    # a label map frame holds every segment: frames are not per segment
    re.compile(r"Error - Missing attribute Type 1 Required Element="
               r"<SegmentIdentificationSequence> Module=<SegmentationMacro>"),
)


def _dciodvfy(path: str | Path) -> list[str]:
    tool = require_tool("dciodvfy")
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    return [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]


def assert_valid_dicom(path: str | Path) -> list[str]:
    """Run dciodvfy on ``path``; fail on any ``Error`` line; return the warning lines."""
    import pydicom

    sop_class = pydicom.dcmread(path, stop_before_pixels=True).get("SOPClassUID")
    if sop_class == LABEL_MAP_SEG:
        return assert_valid_label_map_seg(path)
    lines = _dciodvfy(path)
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert not errors, f"dciodvfy {path}:\n" + "\n".join(lines)
    return [ln for ln in lines if ln.startswith("Warning")]


def assert_valid_label_map_seg(path: str | Path) -> list[str]:
    """dciodvfy a Label Map SEG as a Segmentation: only :data:`LABELMAP_DIFFERENCES` allowed."""
    import pydicom

    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == LABEL_MAP_SEG and ds.SegmentationType == "LABELMAP"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SEGMENTATION
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "as-segmentation.dcm"
        ds.save_as(copy)
        lines = _dciodvfy(copy)
    assert any(ln.rstrip() == "Segmentation" for ln in lines), lines  # the IOD was checked
    errors = [ln for ln in lines if ln.startswith("Error")
              and not any(p.fullmatch(ln) for p in LABELMAP_DIFFERENCES)]
    assert not errors, f"dciodvfy {path} (as a Segmentation):\n" + "\n".join(lines)
    return [ln for ln in lines if ln.startswith("Warning")]
