"""DICOM in and out: header scan, catalog, series assembly, pixel decoding."""

from __future__ import annotations

__all__ = ["Catalog", "InstanceHeader", "load"]


def __getattr__(name: str):
    if name == "Catalog":
        from medview.dicom.catalog import Catalog

        return Catalog
    if name == "InstanceHeader":
        from medview.dicom.header import InstanceHeader

        return InstanceHeader
    if name == "load":
        from medview.dicom.load import load

        return load
    raise AttributeError(f"module 'medview.dicom' has no attribute {name!r}")
