"""Annotations and key images that persist: saved as DICOM beside the catalog, found again by
the series they were made on.

:func:`save_annotations` writes the series' current annotations as a new measurement report
(:mod:`medview.dicom.documents.sr_write`) into medview's private data folder (``annotations/``,
0700: the reports carry the patient's name; ``medview catalog wipe`` removes them with the
rest) and indexes it at once, so the catalog links it to the series. The new report lists the
reports it replaces as predecessors (a report with no annotation clears them).
:func:`load_annotations` reads every report the catalog links to the series that no later
report replaces — medview's latest save and reports other tools made — so closing medview
and opening the series again gives back what was saved.

Key images work the same way with Key Object Selection documents
(:mod:`medview.dicom.documents.key_objects`); the newest document that marks images of the series
gives its key images.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medview.core.annotations import Annotation
from medview.core.volume import Volume
from medview.dicom.catalog.db import Catalog
from medview.dicom.errors import DicomError

__all__ = ["LoadedAnnotations", "annotations_folder", "key_image_slices", "load_annotations",
           "load_key_images", "save_annotations", "save_key_images"]


def annotations_folder() -> Path:
    """``annotations/`` in medview's data folder (``$MEDVIEW_DATA_DIR`` or platformdirs')."""
    from medview.userconfig import data_dir

    return data_dir() / "annotations"


@dataclass(frozen=True)
class LoadedAnnotations:
    """The annotations of a series and where they came from."""

    annotations: tuple[Annotation, ...]
    #: the reports read (paths), oldest first
    reports: tuple[str, ...]
    #: what could not be read, each with its file and reason
    skipped: tuple[str, ...] = ()


def _series_uid(source: Volume) -> str:
    uid = str(source.metadata.get("SeriesInstanceUID") or "")
    if not uid:
        raise DicomError("source: the volume has no SeriesInstanceUID; load it from DICOM")
    return uid


def _new_path(source: Volume, folder: Path | None, prefix: str) -> Path:
    from medview.privatedirs import private_folder

    base = Path(folder) if folder is not None else annotations_folder()
    study = str(source.metadata.get("StudyInstanceUID") or "unknown-study")
    private_folder(base / study)
    return base / study / f"{prefix}-{uuid.uuid4().hex}.dcm"


def _current(catalog: Catalog, series_uid: str, modality: str):
    """The documents of ``series_uid`` that no other document replaces, oldest first."""
    docs = catalog.documents(series_uid, modality=modality)
    replaced = {uid for d in docs for uid in d.predecessors}
    return [d for d in docs if d.sop_instance_uid not in replaced]


def _holds_measurements(report) -> bool:
    """Whether a TID 1500 report's Imaging Measurements container has content (an empty
    one is a cleared series; other SR documents count as holding something)."""
    for item in report.get("ContentSequence", ()):
        names = item.get("ConceptNameCodeSequence") or ()
        if names and (names[0].get("CodeValue"), names[0].get("CodingSchemeDesignator")) \
                == ("126010", "DCM"):
            return bool(item.get("ContentSequence"))
    return True


def save_annotations(catalog: Catalog, source: Volume, annotations: Sequence[Annotation], *,
                     folder: str | os.PathLike | None = None,
                     observer_name: str | None = None) -> Path | None:
    """Save the complete current ``annotations`` of ``source``'s series and index them.

    No annotations clears the series: the new report holds none and replaces the current
    ones (medview's and other tools' reports alike), so loading gives none; with nothing
    to clear, nothing is written.

    Parameters
    ----------
    catalog : Catalog
        Where the report is indexed (and the reports it replaces are found).
    source : Volume
        The series, loaded from DICOM.
    annotations : sequence of Annotation
        Every annotation the series has now (the new report replaces the current ones).
    folder : path, optional
        Instead of :func:`annotations_folder` (tests, a shared folder).
    observer_name : str, optional
        The reader's name (DICOM PN), recorded as the observer.

    Returns
    -------
    Path or None
        The report written; None when there was nothing to save or clear.

    Raises
    ------
    ExportError
        As :func:`~medview.dicom.documents.sr_write.write_annotation_sr` (wrong Frame of
        Reference, source not DICOM).
    """
    import pydicom

    from medview.dicom.documents.sr_write import write_annotation_sr

    series_uid = _series_uid(source)
    previous = [pydicom.dcmread(d.path, stop_before_pixels=True)
                for d in _current(catalog, series_uid, "SR") if os.path.isfile(d.path)]
    if not annotations and not any(_holds_measurements(ds) for ds in previous):
        return None  # nothing drawn, nothing (left) to clear
    path = _new_path(source, Path(folder) if folder is not None else None, "SR")
    write_annotation_sr(annotations, path, source=source, previous=previous,
                        observer_name=observer_name)
    catalog.index([path])
    return path


def load_annotations(catalog: Catalog, series_uid: str) -> LoadedAnnotations:
    """The annotations the catalog's current reports hold for ``series_uid``.

    Every report that references the series and that no later report replaces is read;
    annotations are merged by UID (a later report's version wins). Reports that cannot be
    read, and groups that hold no 3D shape, are listed in ``skipped``.
    """
    from medview.dicom.documents.sr_read import read_annotation_sr

    by_uid: dict[str, Annotation] = {}
    reports, skipped = [], []
    for doc in _current(catalog, series_uid, "SR"):
        try:
            report = read_annotation_sr(doc.path)
        except DicomError as exc:
            skipped.append(str(exc))
            continue
        reports.append(doc.path)
        skipped.extend(f"{doc.path}: {why}" for why in report.skipped)
        for ann in report.annotations:
            by_uid.pop(ann.uid, None)  # re-inserted: keeps the order of the latest report
            by_uid[ann.uid] = ann
    return LoadedAnnotations(tuple(by_uid.values()), tuple(reports), tuple(skipped))


def save_key_images(catalog: Catalog, source: Volume, slices: Sequence[int], *,
                    description: str = "", folder: str | os.PathLike | None = None) -> Path:
    """Save ``slices`` (z indices, in showing order) as the key images of ``source``'s series
    in a new Key Object Selection document, and index it.

    Raises
    ------
    ExportError
        As :func:`~medview.dicom.documents.key_objects.write_key_images`.
    """
    from medview.dicom.documents.key_objects import write_key_images

    _series_uid(source)
    path = _new_path(source, Path(folder) if folder is not None else None, "KO")
    write_key_images(path, source=source, slices=slices, description=description)
    catalog.index([path])
    return path


def load_key_images(catalog: Catalog, series_uid: str):
    """The newest Key Object Selection document marking images of ``series_uid``, or None.

    Returns
    -------
    KeyImages or None
        With ``images`` narrowed to this series, in document order.
    """
    from dataclasses import replace

    from medview.dicom.documents.key_objects import read_key_images

    for doc in reversed(catalog.documents(series_uid, modality="KO")):
        try:
            kos = read_key_images(doc.path)
        except DicomError:
            continue  # a newer unreadable document does not hide an older good one
        mine = tuple(i for i in kos.images if i.series_instance_uid in ("", series_uid))
        if mine:
            return replace(kos, images=mine)
    return None


def key_image_slices(volume: Volume, key_images) -> list[int]:
    """The z indices of ``volume`` that show the key images, in the document's order (images
    not in the volume are left out; a multi-frame image's frame picks the slice)."""
    from medview.core.annotations import slice_sources

    uids = list(volume.metadata.get("source_sop_instance_uids") or ())
    frames = list(volume.metadata.get("source_frames") or [0] * len(uids))
    # slice z shows source image i (volumes with slices made up to fill gaps list the
    # acquired images only)
    shown = [(z, i) for z, i in enumerate(slice_sources(volume)) if i is not None]
    where = {(uids[i], frames[i]): z for z, i in shown}
    first = {}
    for z, i in shown:
        first.setdefault(uids[i], z)
    out = []
    for img in key_images.images if key_images is not None else ():
        if img.frame_number is not None:
            z = where.get((img.sop_instance_uid, img.frame_number - 1))
        else:
            z = first.get(img.sop_instance_uid)
        if z is not None:
            out.append(z)
    return out
