"""Text burned into pixels: which images may carry it, finding it (tesseract), masking it.

Ultrasound, secondary captures, screenshots and some angiography/fluoroscopy images carry the
patient's name, dates and the site in their pixels; no header profile removes that. medview
flags those images (:func:`flag_reason`), finds text boxes with the tesseract OCR engine
(Debian's ``tesseract-ocr`` + ``tesseract-ocr-eng``, called as a program with TSV output) and,
when asked, fills each box with the background around it. A masked image is written
uncompressed (Explicit VR Little Endian). OCR misses things (small, rotated or faint text):
every flagged image is listed in the share report, masked or not, for a human look.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Box", "OcrUnavailable", "find_text", "flag_reason", "frames_of", "mask_dataset",
           "tesseract"]

#: SOP classes whose images often carry burned-in text
BURNED_IN_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
}
#: modalities known for it; XA and RF only unless Burned In Annotation says NO
ALWAYS_MODALITIES = {"US", "SC", "OT", "ES", "XC", "DOC"}
UNLESS_NO_MODALITIES = {"XA", "RF"}
#: at most this many frames of a multi-frame image are read by OCR (first, middle, last …)
OCR_FRAMES = 3
MIN_CONFIDENCE = 60.0
#: smaller boxes are texture of the image, not glyphs a reader could read
MIN_HEIGHT = 7
PAD = 3


class OcrUnavailable(RuntimeError):
    """tesseract is not installed."""


@dataclass(frozen=True)
class Box:
    """A text box in pixel coordinates of a frame: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int
    confidence: float


def flag_reason(ds) -> str | None:
    """Why this instance may carry burned-in text, or None."""
    said = str(ds.get("BurnedInAnnotation", "") or "").upper()
    if said == "YES":
        return "Burned In Annotation is YES"
    cls = str(ds.get("SOPClassUID", ""))
    if cls in BURNED_IN_CLASSES:
        return f"{BURNED_IN_CLASSES[cls]} images often carry burned-in text"
    modality = str(ds.get("Modality", "")).upper()
    if modality in ALWAYS_MODALITIES:
        return f"{modality} images often carry burned-in text"
    if modality in UNLESS_NO_MODALITIES and said != "NO":
        return f"{modality} images may carry burned-in text (Burned In Annotation not NO)"
    return None


def tesseract() -> str | None:
    """The tesseract program, or None."""
    return shutil.which("tesseract")


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]).astype(np.uint8)
                             if frame.dtype != np.uint8 else frame[..., :3], cv2.COLOR_RGB2GRAY)
    f = frame.astype(np.float32)
    lo, hi = float(f.min()), float(f.max())
    if hi <= lo:
        return np.zeros(frame.shape, np.uint8)
    return ((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def find_text(frame: np.ndarray, *, timeout_s: float = 60.0) -> list[Box]:
    """Text boxes tesseract finds in one frame ``[y, x]`` or ``[y, x, rgb]``.

    Raises
    ------
    OcrUnavailable
        When tesseract is not installed (the message says which Debian packages to add).
    """
    import cv2

    exe = tesseract()
    if exe is None:
        raise OcrUnavailable("tesseract is not installed: apt-get install tesseract-ocr "
                             "tesseract-ocr-eng")
    gray = _to_uint8(np.asarray(frame))
    scale = 2 if max(gray.shape) < 1200 else 1   # tesseract reads small glyphs better larger
    if scale != 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    # tesseract reads dark text on light ground best; most burned-in text is light on dark
    if np.median(gray) < 128:
        gray = 255 - gray
    with tempfile.TemporaryDirectory(prefix="medview-ocr-") as tmp:
        png = Path(tmp) / "frame.png"
        cv2.imwrite(str(png), gray)
        proc = subprocess.run([exe, str(png), "stdout", "--psm", "11", "tsv"],
                              capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"tesseract failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    boxes = []
    for row in csv.DictReader(io.StringIO(proc.stdout), delimiter="\t",
                              quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        try:
            conf = float(row.get("conf") or -1)
        except ValueError:
            continue
        if row.get("level") != "5" or conf < MIN_CONFIDENCE:
            continue
        if sum(c.isalnum() for c in text) < 2:
            continue
        x, y, w, h = (int(row[k]) // scale for k in ("left", "top", "width", "height"))
        if h < MIN_HEIGHT:
            continue
        boxes.append(Box(x, y, max(w, 1), max(h, 1), conf))
    return boxes


def _sample(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1})[:OCR_FRAMES]


def _background(frame: np.ndarray, box: Box) -> np.ndarray:
    """The median of a ring just outside the box: the ground the text was drawn on."""
    h, w = frame.shape[:2]
    y0, y1 = max(box.y - PAD - 2, 0), min(box.y + box.h + PAD + 2, h)
    x0, x1 = max(box.x - PAD - 2, 0), min(box.x + box.w + PAD + 2, w)
    patch = frame[y0:y1, x0:x1]
    ring = np.concatenate([patch[:2].reshape(-1, *frame.shape[2:]),
                           patch[-2:].reshape(-1, *frame.shape[2:]),
                           patch[:, :2].reshape(-1, *frame.shape[2:]),
                           patch[:, -2:].reshape(-1, *frame.shape[2:])])
    return np.median(ring, axis=0).astype(frame.dtype)


def frames_of(path) -> np.ndarray:
    """The stored pixel values of the file at ``path`` as frames ``[n, y, x(, c)]``, decoded
    the checked way (:func:`medview.dicom.pixels.decoding.decode_file`: sizes checked against the
    file before allocating, GDCM only in the decoder process): a file being shared is as hostile
    as any other, and a crashing decoder must not take the share (or the window) down.

    Raises
    ------
    medview.dicom.errors.PixelDataError
        The pixel data cannot be decoded; the message names the path and the reason.
    """
    from medview.dicom.pixels.decoding import decode_file

    return decode_file(path)


def detect(frames: np.ndarray) -> list[Box]:
    """Text boxes in the sampled frames of ``frames`` (``[n, y, x(, c)]``, e.g. from
    :func:`frames_of`): the union over them."""
    boxes: list[Box] = []
    for i in _sample(len(frames)):
        boxes.extend(find_text(frames[i]))
    return boxes


def mask_dataset(ds, boxes: list[Box], frames: np.ndarray) -> int:
    """Fill ``boxes`` (padded by :data:`PAD` pixels) in every frame with the background around
    each, and store the pixels uncompressed in ``ds``; returns how many boxes were filled.

    ``frames`` are ``ds``'s decoded stored values (:func:`frames_of`); colour comes as RGB
    (YBR and palette colour converted), so the masked image says RGB.
    """
    from pydicom.uid import ExplicitVRLittleEndian

    if not boxes:
        return 0
    frames = np.array(frames, copy=True)
    h, w = frames.shape[1:3]
    for frame in frames:
        for b in boxes:
            fill = _background(frame, b)
            frame[max(b.y - PAD, 0):min(b.y + b.h + PAD, h),
                  max(b.x - PAD, 0):min(b.x + b.w + PAD, w)] = fill
    if frames.ndim == 4:  # colour, decoded to interleaved RGB
        palette = str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"
        ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
        if palette:  # looked up to 8-bit RGB: the LUTs no longer apply
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            for kw in [k for k in ds.dir() if "PaletteColor" in k or "SegmentedPalette" in k]:
                delattr(ds, kw)
    for kw in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):  # of the old stream
        if kw in ds:
            delattr(ds, kw)
    data = np.ascontiguousarray(frames).astype(frames.dtype.newbyteorder("<"), copy=False)
    if int(ds.get("BitsAllocated", 0) or 0) == 1:  # single-bit images stay packed
        from pydicom.pixels import pack_bits

        raw = pack_bits(data.astype(np.uint8), pad=False)
    else:
        raw = data.tobytes()
    ds.PixelData = raw + b"\0" * (len(raw) % 2)
    ds["PixelData"].VR = "OB" if data.dtype.itemsize == 1 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return len(boxes)
