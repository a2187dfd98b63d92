"""DICOM in and out: header scan, catalog, series assembly, pixel decoding, exporters."""

from __future__ import annotations

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


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medview.dicom' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
