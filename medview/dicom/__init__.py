"""DICOM in and out: header scan, catalog, series assembly, pixel decoding, exporters."""

from __future__ import annotations

from medview._lazy import attach

__all__ = ["Catalog", "InstanceHeader", "export_dicom", "load", "read_seg", "write_derived_series",
           "write_rgb_capture", "write_seg"]

_LAZY = {
    "Catalog": "medview.dicom.catalog",
    "InstanceHeader": "medview.dicom.header",
    "load": "medview.dicom.load",
    "export_dicom": "medview.dicom.export",
    "read_seg": "medview.dicom.read_seg",
    "write_seg": "medview.dicom.export_seg",
    "write_derived_series": "medview.dicom.export_series",
    "write_rgb_capture": "medview.dicom.export_sc",
}

__getattr__, __dir__ = attach(__name__, _LAZY)
