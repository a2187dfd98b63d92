"""Series: headers → a planned volume → a Volume (at once, progressively, as files arrive); SEG.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "ArrivingSeries",
    "MosaicGeometry",
    "ProgressiveLoad",
    "SegReadError",
    "SeriesPlan",
    "SliceFailure",
    "SliceRef",
    "StackPlan",
    "expand_slices",
    "find_series",
    "group_by_series",
    "headers_from_source",
    "interpolated_slices",
    "is_series_uid",
    "load",
    "mosaic_geometry",
    "mosaic_shape",
    "open_progressive",
    "outward_order",
    "plan_load",
    "plan_series",
    "read_seg",
    "seg_segments",
    "select_series",
    "untile",
    "with_load_warnings",
]

__getattr__, __dir__ = attach(__name__, {
    "ArrivingSeries": "medview.dicom.series.arriving",
    "expand_slices": "medview.dicom.series.slices",
    "find_series": "medview.dicom.series.loading",
    "group_by_series": "medview.dicom.series.assemble",
    "headers_from_source": "medview.dicom.series.loading",
    "interpolated_slices": "medview.dicom.series.assemble",
    "is_series_uid": "medview.dicom.series.loading",
    "load": "medview.dicom.series.loading",
    "mosaic_geometry": "medview.dicom.series.mosaic",
    "mosaic_shape": "medview.dicom.series.mosaic",
    "MosaicGeometry": "medview.dicom.series.mosaic",
    "open_progressive": "medview.dicom.series.progressive",
    "outward_order": "medview.dicom.series.progressive",
    "plan_load": "medview.dicom.series.loading",
    "plan_series": "medview.dicom.series.assemble",
    "ProgressiveLoad": "medview.dicom.series.progressive",
    "read_seg": "medview.dicom.series.seg",
    "seg_segments": "medview.dicom.series.seg",
    "SegReadError": "medview.dicom.series.seg",
    "select_series": "medview.dicom.series.loading",
    "SeriesPlan": "medview.dicom.series.assemble",
    "SliceFailure": "medview.dicom.series.progressive",
    "SliceRef": "medview.dicom.series.slices",
    "StackPlan": "medview.dicom.series.assemble",
    "untile": "medview.dicom.series.mosaic",
    "with_load_warnings": "medview.dicom.series.loading",
})
