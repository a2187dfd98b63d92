"""DICOM in and out: header scan, catalog, series assembly, pixel decoding, exporters."""

from __future__ import annotations

from medview._lazy import attach

__all__ = ["Catalog", "InstanceHeader", "export_dicom", "load", "read_seg", "write_derived_series",
           "write_rgb_capture", "write_seg"]

_LAZY = {
    "Catalog": "medview.dicom.catalog.db",
    "InstanceHeader": "medview.dicom.scan.header",
    "load": "medview.dicom.series.loading",
    "export_dicom": "medview.dicom.export.dispatch",
    "read_seg": "medview.dicom.series.seg",
    "write_seg": "medview.dicom.export.seg",
    "write_derived_series": "medview.dicom.export.series",
    "write_rgb_capture": "medview.dicom.export.secondary_capture",
}

__getattr__, __dir__ = attach(__name__, _LAZY)
