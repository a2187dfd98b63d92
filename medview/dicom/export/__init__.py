"""Export: derived series, DICOM SEG and secondary captures into the source study.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "BINARY_MAX_SEGMENTS",
    "ENCODINGS",
    "ExportError",
    "ExportKind",
    "choose_encoding",
    "choose_rescale",
    "default_encoding",
    "export_dicom",
    "export_kind",
    "pick_source",
    "segment_numbering",
    "write_derived_series",
    "write_dicom_outputs",
    "write_rgb_capture",
    "write_seg",
]

__getattr__, __dir__ = attach(__name__, {
    "BINARY_MAX_SEGMENTS": "medview.dicom.export.seg",
    "choose_encoding": "medview.dicom.export.seg",
    "choose_rescale": "medview.dicom.export.series",
    "default_encoding": "medview.dicom.export.seg",
    "ENCODINGS": "medview.dicom.export.seg",
    "export_dicom": "medview.dicom.export.dispatch",
    "export_kind": "medview.dicom.export.dispatch",
    "ExportError": "medview.dicom.export.dispatch",
    "ExportKind": "medview.dicom.export.dispatch",
    "pick_source": "medview.dicom.export.dispatch",
    "segment_numbering": "medview.dicom.export.seg",
    "write_derived_series": "medview.dicom.export.series",
    "write_dicom_outputs": "medview.dicom.export.dispatch",
    "write_rgb_capture": "medview.dicom.export.secondary_capture",
    "write_seg": "medview.dicom.export.seg",
})
