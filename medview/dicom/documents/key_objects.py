"""Key images: a Key Object Selection document (KOS, PS3.3 A.35.4) listing marked slices.

Written with highdicom (``highdicom.ko``, TID 2010): the title "Of Interest" (DCM 113000,
CID 7010) unless told otherwise, an optional Key Object Description, and one IMAGE item per
key image in the order given (with its frame number for multi-frame images). Read back
(:func:`read_key_images`) from any KOS, medview's or another tool's: the images in document
order, each with its series (from the evidence). Every document written passes
``dciodvfy`` with no error (tested).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medview.atomic import atomic_file
from medview.core.annotations import slice_sources
from medview.core.volume import Volume
from medview.dicom.documents.sr_read import read_dataset
from medview.dicom.errors import DicomError
from medview.dicom.export._common import (
    ExportError,
    quiet_highdicom,
    software_version,
    source_series,
)

__all__ = ["KOS_SOP_CLASS", "KeyImage", "KeyImages", "read_key_images",
           "write_key_images"]

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: CID 7010 titles medview writes (and any other is read)
TITLES = {"Of Interest": ("113000", "DCM"), "For Teaching": ("113004", "DCM"),
          "Quality Issue": ("113001", "DCM"), "For Referring Provider": ("113002", "DCM")}


@dataclass(frozen=True)
class KeyImage:
    """One key image: its SOP instance (and frame, counted from 1), class and series."""

    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str = ""
    frame_number: int | None = None


@dataclass(frozen=True)
class KeyImages:
    """What a Key Object Selection document holds."""

    path: str
    sop_instance_uid: str
    title: str
    description: str
    content_datetime: str
    images: tuple[KeyImage, ...]
    #: the series the document's evidence lists
    referenced_series: tuple[str, ...]


def write_key_images(
    path: str | os.PathLike,
    *,
    source: Volume,
    slices: Sequence[int],
    description: str = "",
    title: str = "Of Interest",
    overwrite: bool = False,
    series_number: int | None = None,
    series_description: str = "medview key images",
) -> Path:
    """Write a KOS marking ``slices`` (z indices of ``source``) as key images, in that order.

    Parameters
    ----------
    path : path
        The file to write (atomically).
    source : Volume
        The series, loaded from DICOM.
    slices : sequence of int
        z indices of the key images; each once, in the order they are to be shown.
    description : str
        Key Object Description (free text), written when not empty.
    title : str
        One of :data:`TITLES`.
    overwrite : bool
        Replace an existing file.
    series_number, series_description
        Of the new KO series; the number defaults to the source's + 3000.

    Raises
    ------
    ExportError
        No slice, a slice index out of range or repeated, or the source is not DICOM.
    ValueError
        If ``title`` is not one of :data:`TITLES`.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    path = Path(path)
    what = f"KOS {path}"
    if title not in TITLES:
        raise ValueError(f"title: expected one of {tuple(TITLES)}, got {title!r}")
    slices = [int(k) for k in slices]
    if not slices:
        raise ExportError(f"{what}: no key image to write")
    nz = source.shape[0]
    bad = [k for k in slices if not 0 <= k < nz]
    if bad:
        raise ExportError(f"{what}: slice(s) {bad} outside the series' 0..{nz - 1}")
    if len(set(slices)) != len(slices):
        raise ExportError(f"{what}: a slice is listed twice in {slices}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    src = source_series(source, what=what)
    made_up = {int(z) for z, _ in source.metadata.get("made_up_slices", ())}
    invented = [k for k in slices if k in made_up]
    if invented:
        raise ExportError(f"{what}: slice(s) {invented} were made up at load (interpolated "
                          "or stand-ins): there is no acquired image to mark")
    sources = slice_sources(source)
    unknown = [k for k in slices if sources[k] is None]
    if unknown:
        raise ExportError(f"{what}: the image of slice(s) {unknown} is not known")
    referenced = [src.datasets[sources[k]] for k in slices]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="medview", manufacturer_name="medview", model_name="medview"))
    content = hd.ko.KeyObjectSelection(
        document_title=hd.sr.CodedConcept(*TITLES[title], title),
        referenced_objects=referenced,
        observer_device_context=observer,
        description=description or None,
    )
    items = [c for c in content[0].ContentSequence if c.ValueType == "IMAGE"]
    for item, k in zip(items, slices, strict=True):
        if src.is_multiframe:
            item.ReferencedSOPSequence[0].ReferencedFrameNumber = src.frames[sources[k]] + 1
    unique = list({str(ds.SOPInstanceUID): ds for ds in referenced}.values())
    number = series_number if series_number is not None else (
        int(src.first.get("SeriesNumber") or 0) + 3000)
    with quiet_highdicom():
        kos = hd.ko.KeyObjectSelectionDocument(
            evidence=unique,
            content=content,
            series_instance_uid=hd.UID(),
            series_number=number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="medview",
        )
    kos.SeriesDescription = series_description[:64]
    kos.SoftwareVersions = software_version()
    # labels and names in any script: UTF-8 (the source's own character set may not hold them)
    kos.SpecificCharacterSet = "ISO_IR 192"
    with atomic_file(path, overwrite=overwrite) as tmp:
        kos.save_as(tmp, enforce_file_format=True)
    return path


def read_key_images(path: str | os.PathLike) -> KeyImages:
    """The key images a Key Object Selection document lists, in document order.

    Raises
    ------
    DicomError
        If the file is not a KOS, or too large.
    """
    from medview.dicom.documents.sr_read import _image, referenced_series

    ds = read_dataset(path, what="key object selection")
    path = os.fspath(path)
    if str(ds.get("SOPClassUID", "")) != KOS_SOP_CLASS:
        raise DicomError(f"{path}: not a Key Object Selection document (SOP class "
                         f"{ds.get('SOPClassUID', '(none)')})")
    series_of: dict[str, str] = {}
    for seq_name in ("CurrentRequestedProcedureEvidenceSequence",
                     "IdenticalDocumentsSequence"):
        for study in ds.get(seq_name, []) or []:
            for series in study.get("ReferencedSeriesSequence", []) or []:
                for sop in series.get("ReferencedSOPSequence", []) or []:
                    series_of[str(sop.ReferencedSOPInstanceUID)] = str(series.SeriesInstanceUID)
    images, description = [], ""
    for item in ds.get("ContentSequence", []) or []:
        vt = item.get("ValueType")
        if vt in ("IMAGE", "COMPOSITE"):
            ref = _image(item)
            if ref is None:
                continue
            sop, frame = ref
            sop_class = str(item.ReferencedSOPSequence[0].get("ReferencedSOPClassUID", ""))
            images.append(KeyImage(sop, sop_class, series_of.get(sop, ""), frame))
        elif vt == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "113012":
            description = str(item.TextValue)
    title = ""
    if ds.get("ConceptNameCodeSequence"):
        title = str(ds.ConceptNameCodeSequence[0].get("CodeMeaning", ""))
    return KeyImages(
        path=path, sop_instance_uid=str(ds.SOPInstanceUID), title=title,
        description=description,
        content_datetime=str(ds.get("ContentDate", "")) + str(ds.get("ContentTime", "")),
        images=tuple(images), referenced_series=referenced_series(ds))
