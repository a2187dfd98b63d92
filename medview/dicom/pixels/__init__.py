"""Pixels: stored values decoded (sandboxed where codecs may crash) into physical values.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "DECODER_GROUPS",
    "DtypeTooSmall",
    "SliceReader",
    "allocate_volume",
    "check_pixel_data",
    "decode",
    "decode_dataset",
    "decode_file",
    "decode_into",
    "decoders_available",
    "failure_reason",
    "frame_shape",
    "palette_to_rgb",
    "read_stack",
    "reads_frames_at_offset",
    "reads_slice_by_slice",
    "series_metadata",
    "stack_volume",
    "stored_dtype",
]

__getattr__, __dir__ = attach(__name__, {
    "allocate_volume": "medview.dicom.pixels.read",
    "check_pixel_data": "medview.dicom.pixels.decoding",
    "decode": "medview.dicom.pixels.decoding",
    "decode_dataset": "medview.dicom.pixels.decoding",
    "decode_file": "medview.dicom.pixels.decoding",
    "decode_into": "medview.dicom.pixels.decoding",
    "DECODER_GROUPS": "medview.dicom.pixels.decoding",
    "decoders_available": "medview.dicom.pixels.decoding",
    "DtypeTooSmall": "medview.dicom.pixels.slice_reader",
    "failure_reason": "medview.dicom.pixels.slice_reader",
    "frame_shape": "medview.dicom.pixels.decoding",
    "palette_to_rgb": "medview.dicom.pixels.palette",
    "read_stack": "medview.dicom.pixels.read",
    "reads_frames_at_offset": "medview.dicom.pixels.decoding",
    "reads_slice_by_slice": "medview.dicom.pixels.slice_reader",
    "series_metadata": "medview.dicom.pixels.read",
    "SliceReader": "medview.dicom.pixels.slice_reader",
    "stack_volume": "medview.dicom.pixels.read",
    "stored_dtype": "medview.dicom.pixels.decoding",
})
