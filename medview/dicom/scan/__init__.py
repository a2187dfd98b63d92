"""Scan: one DICOM file's header, read fast, without decoding pixels.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "FrameInfo",
    "InstanceHeader",
    "executable_kind",
    "is_dicomdir",
    "iter_files",
    "preamble_warning",
    "read_dicomdir",
    "referenced_files",
    "scan_file",
    "scan_file_pydicom",
    "scan_paths",
    "skipped_name",
]

__getattr__, __dir__ = attach(__name__, {
    "executable_kind": "medview.dicom.scan.preamble",
    "FrameInfo": "medview.dicom.scan.header",
    "InstanceHeader": "medview.dicom.scan.header",
    "is_dicomdir": "medview.dicom.scan.dicomdir",
    "iter_files": "medview.dicom.scan.scanner",
    "MAX_DEPTH": "medview.dicom.scan.scanner",
    "MAX_ELEMENTS": "medview.dicom.scan.scanner",
    "preamble_warning": "medview.dicom.scan.preamble",
    "read_dicomdir": "medview.dicom.scan.dicomdir",
    "referenced_files": "medview.dicom.scan.dicomdir",
    "scan_file": "medview.dicom.scan.scanner",
    "scan_file_pydicom": "medview.dicom.scan.scanner",
    "scan_paths": "medview.dicom.scan.scanner",
    "skipped_name": "medview.dicom.scan.scanner",
})
