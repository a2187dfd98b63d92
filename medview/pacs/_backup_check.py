"""What a backup compares: a fingerprint of an instance, and reading instances back (WADO-RS).

The fingerprint of an instance is

- a SHA-256 of its **decoded** pixel values (medview.dicom.pixels: the bits above Bits Stored
  cleared, or the sign extended, since PS3.5 8.1.1 leaves them undefined), with the array's
  shape and dtype: an archive that stores or returns another transfer syntax (Orthanc
  transcodes to Explicit VR Little Endian when asked for ``application/dicom``) still
  verifies, while any changed value does not. Lossless syntaxes only: a lossy-compressed
  source re-encoded by the archive decodes to other values and is reported as different;
- the values of the attributes that say whose image it is and where it belongs
  (:data:`IDENTITY`), compared one by one so a mismatch names the attribute.

Private to :mod:`medview.pacs.backup`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from medview.pacs.errors import NodeUnreachable, PacsError

IDENTITY = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
            "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "StudyDate", "StudyID",
            "AccessionNumber", "Modality", "SeriesNumber", "InstanceNumber",
            "FrameOfReferenceUID")


@dataclass(frozen=True)
class Fingerprint:
    """``pixels``: hex SHA-256 of the decoded values ("" without pixel data); ``identity``:
    attribute keyword → value as text."""

    pixels: str
    identity: dict[str, str]

    @property
    def identity_sha(self) -> str:
        text = json.dumps(self.identity, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def differences(self, other: Fingerprint) -> list[str]:
        """What differs, in words ([] when equal)."""
        out = [k for k in IDENTITY if self.identity.get(k, "") != other.identity.get(k, "")]
        if self.pixels != other.pixels:
            out.append("pixel data" if self.pixels and other.pixels else
                       "pixel data (present on one side only)")
        return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)
    return str(value).strip()


def pixel_sha(ds, path=None) -> str:
    """SHA-256 of the decoded pixel values of ``ds`` ("" when it has none).

    Raises
    ------
    ValueError
        When the pixel data cannot be decoded (no decoder, a broken stream).
    """
    import numpy as np

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return ""
    from medview.dicom.errors import PixelDataError
    from medview.dicom.pixels.decoding import decode_dataset, decode_file

    # decoded the checked way (sizes against the data before allocating, GDCM only in the
    # decoder process): what an archive sends back is as hostile as any file
    try:
        if "PixelData" not in ds:  # float/double pixel data: never compressed, no codec
            arr = np.ascontiguousarray(ds.pixel_array)
        else:
            arr = decode_file(path) if path is not None else decode_dataset(ds)
    except (PixelDataError, ValueError, AttributeError) as exc:
        reason = str(exc)
        if path is not None:
            reason = reason.removeprefix(f"{path}: ")
        raise ValueError(f"cannot decode the pixel data ({reason})") from None
    # (the bits above Bits Stored are already cleared / sign-extended by the decoder)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def fingerprint(ds, path=None) -> Fingerprint:
    """The :class:`Fingerprint` of a pydicom dataset (see the module docstring); ``path``: the
    file it was read from, decoded from there (else the dataset is written to a temporary
    file to be decoded)."""
    return Fingerprint(pixel_sha(ds, path), {k: _text(ds.get(k)) for k in IDENTITY})


def fingerprint_file(path) -> Fingerprint:
    import pydicom

    return fingerprint(pydicom.dcmread(path), path)


def read_back(client, node, study_uid: str, series_uid: str, sops: list[str],
              whole_series: bool, on_instance) -> dict[str, str]:
    """Call ``on_instance(dataset)`` for each of ``sops`` the archive returns (WADO-RS).

    ``whole_series``: one request for the series (a multipart stream, which the archive
    answers fastest) and keep only ``sops``; else, and for what the stream left out or did
    not get to (a failed stream), one request per instance, four at a time.

    Returns
    -------
    dict
        SOP Instance UID → why it could not be read back, for those that were not.

    Raises
    ------
    NodeUnreachable
        The archive went away (what was handed over stays handed over).
    """
    from medview.pacs._fetch import check_complete
    from medview.pacs.web import web_errors

    wanted = set(sops)
    failed: dict[str, str] = {}
    if whole_series and len(wanted) > 1:
        try:
            with web_errors(node, "WADO-RS read-back"):
                stream = client.iter_series(study_uid, series_uid)
                try:
                    for ds in stream:
                        sop = str(ds.get("SOPInstanceUID", ""))
                        if sop in wanted:
                            check_complete(ds)
                            wanted.discard(sop)
                            on_instance(ds)
                finally:
                    stream.close()
        except NodeUnreachable:
            raise
        except PacsError:
            pass  # asked one by one below: they say which instance the archive cannot give
        if not wanted:
            return {}
        # an archive may leave out of a series stream what it cannot transcode (Orthanc: JPEG
        # 2000 to Explicit VR Little Endian; or it fails the whole stream with HTTP 500) and
        # yet return each alone, in its own syntax
        sops = sorted(wanted)
    import threading
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()  # a cancel (or any error) in on_instance: fetch no more

    def one(sop: str):
        if stop.is_set():
            return sop, None, "not read back (stopped)"
        try:
            with web_errors(node, "WADO-RS read-back"):
                ds = client.retrieve_instance(study_uid, series_uid, sop)
            check_complete(ds)
        except NodeUnreachable:
            raise
        except PacsError as exc:
            return sop, None, str(exc)
        return sop, ds, ""

    with ThreadPoolExecutor(4, thread_name_prefix="medview-backup-read") as pool:
        try:
            for sop, ds, why in pool.map(one, sops):
                if ds is None:
                    failed[sop] = why
                else:
                    on_instance(ds)
        except BaseException:
            stop.set()
            raise
    return failed


__all__ = ["IDENTITY", "Fingerprint", "fingerprint", "fingerprint_file", "pixel_sha",
           "read_back"]
