"""Documents: SR measurement reports and key object selections, written, read back and stored.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "KOS_SOP_CLASS",
    "MAX_DOCUMENT_BYTES",
    "UNIT_MEANINGS",
    "AnnotationReport",
    "KeyImage",
    "KeyImages",
    "LoadedAnnotations",
    "annotations_folder",
    "key_image_slices",
    "load_annotations",
    "load_key_images",
    "read_annotation_sr",
    "read_key_images",
    "referenced_series",
    "save_annotations",
    "save_key_images",
    "write_annotation_sr",
    "write_key_images",
]

__getattr__, __dir__ = attach(__name__, {
    "AnnotationReport": "medview.dicom.documents.sr_read",
    "annotations_folder": "medview.dicom.documents.store",
    "key_image_slices": "medview.dicom.documents.store",
    "KeyImage": "medview.dicom.documents.key_objects",
    "KeyImages": "medview.dicom.documents.key_objects",
    "KOS_SOP_CLASS": "medview.dicom.documents.key_objects",
    "load_annotations": "medview.dicom.documents.store",
    "load_key_images": "medview.dicom.documents.store",
    "LoadedAnnotations": "medview.dicom.documents.store",
    "MAX_DOCUMENT_BYTES": "medview.dicom.documents.sr_read",
    "read_annotation_sr": "medview.dicom.documents.sr_read",
    "read_key_images": "medview.dicom.documents.key_objects",
    "referenced_series": "medview.dicom.documents.sr_read",
    "save_annotations": "medview.dicom.documents.store",
    "save_key_images": "medview.dicom.documents.store",
    "UNIT_MEANINGS": "medview.dicom.documents.sr_write",
    "write_annotation_sr": "medview.dicom.documents.sr_write",
    "write_key_images": "medview.dicom.documents.key_objects",
})
