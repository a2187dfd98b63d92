"""Series thumbnails in plain Python (no Qt): the middle image, windowed, shrunk, cached on disk.

A thumbnail is a ``uint8`` array ``[y, x]`` (grey) or ``[y, x, 3]`` (colour) whose longer side
is :data:`THUMBNAIL_PX` pixels, drawn with the physical aspect ratio of the pixels. It shows the
middle slice of the series' default stack, read by the reader that opens the series and
windowed as the series opens (:func:`~medview.app.windowing.default_window`: the series' own
window or the abdomen preset for CT, the 1–99 % window of the image for other modalities).

The disk cache is keyed by the series UID and every file's path, size and modification time,
so a series whose files changed gets a new thumbnail; files are ``.npy`` written atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medview.app.windowing import default_window

__all__ = [
    "THUMBNAIL_PX",
    "ThumbnailCache",
    "default_cache_dir",
    "render_thumbnail",
    "series_thumbnail",
    "thumbnail_key",
    "thumbnail_slice",
    "window_to_uint8",
]

#: longer side of a thumbnail, in screen pixels
THUMBNAIL_PX = 64
#: bump when the picture changes for the same files (window rule, size, resampling)
_FORMAT_VERSION = 2  # 2: the window of the series' first header, as opening it uses
CACHE_DIR_ENV = "MEDVIEW_CACHE_DIR"
#: thumbnails kept on disk (about 4 KiB each)
MAX_CACHED = 20_000


def default_cache_dir() -> Path:
    """``$MEDVIEW_CACHE_DIR/thumbnails`` if set, else the user's cache folder (platformdirs)."""
    from medview.privatedirs import thumbnails_dir

    return thumbnails_dir()


def thumbnail_key(series_uid: str, headers: Sequence, *, size: int = THUMBNAIL_PX) -> str:
    """A hex digest that changes when any file of the series changes (path, size, mtime)."""
    digest = hashlib.sha256()
    digest.update(f"{_FORMAT_VERSION}\x1f{size}\x1f{series_uid}".encode())
    for h in sorted(headers, key=lambda h: h.path):
        digest.update(f"\x1e{h.path}\x1f{h.file_size}\x1f{h.mtime_ns}".encode())
    return digest.hexdigest()


def window_to_uint8(image: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map ``[center - width/2, center + width/2]`` linearly onto 0–255 (clipped), as the
    viewer draws a window."""
    if width <= 0:
        raise ValueError(f"width: expected > 0, got {width}")
    low = center - width / 2.0
    scaled = (np.asarray(image, dtype=np.float32) - np.float32(low)) * np.float32(255.0 / width)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def render_thumbnail(image: np.ndarray, window: tuple[float, float] | None, *,
                     pixel_spacing: tuple[float, float] = (1.0, 1.0),
                     size: int = THUMBNAIL_PX) -> np.ndarray:
    """``image`` windowed and shrunk so that its longer physical side is ``size`` pixels.

    Parameters
    ----------
    image : ndarray [y, x] or [y, x, 3]
        Physical values (grey) or RGB.
    window : (center, width) or None
        The window for grey images; None for RGB (taken as is, clipped to 0–255).
    pixel_spacing : (row, column) spacing in mm
        So that a non-square pixel gives the right aspect ratio.
    size : int
        Longer side of the result, in pixels.

    Returns
    -------
    ndarray of uint8, [h, w] or [h, w, 3]
    """
    import cv2

    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image: expected [y, x] or [y, x, 3], got shape {image.shape}")
    if window is None:
        grey = np.clip(image, 0, 255).astype(np.uint8)
    else:
        grey = window_to_uint8(image, *window)
    rows, cols = image.shape[:2]
    sy, sx = (float(s) if s and s > 0 else 1.0 for s in pixel_spacing)
    height_mm, width_mm = rows * sy, cols * sx
    scale = size / max(height_mm, width_mm)
    out_h = max(1, int(round(height_mm * scale)))
    out_w = max(1, int(round(width_mm * scale)))
    shrinking = out_h <= rows and out_w <= cols
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(grey, (out_w, out_h), interpolation=interp))


def thumbnail_slice(headers: Sequence
                    ) -> tuple[np.ndarray, tuple[float, float] | None, tuple[float, float]]:
    """What the thumbnail of one series shows, from its scanned headers (reads one slice).

    The middle slice of the series' default stack, read by the reader that opens the series
    (:class:`~medview.dicom.pixels.slice_reader.SliceReader`), and the window it opens with
    (:func:`~medview.app.windowing.default_window` from that slice and the metadata the
    series' Volume carries).

    Returns
    -------
    image : ndarray [y, x] or [y, x, 3]
        Physical values (grey) or RGB.
    window : (center, width) or None
        None for RGB.
    pixel_spacing : (row, column) spacing in mm

    Raises
    ------
    SeriesError, PixelDataError
        If the series cannot be planned or its middle slice cannot be decoded.
    """
    from medview.core.volume import Volume
    from medview.dicom.pixels.read import series_metadata
    from medview.dicom.pixels.slice_reader import SliceReader
    from medview.dicom.series.assemble import plan_series

    stack = plan_series(list(headers)).stack
    k = len(stack.slices) // 2
    image = SliceReader(stack).read(k)
    # the metadata of the Volume that opening the series makes (its first slice's header)
    window = None if stack.is_rgb else default_window(
        Volume(image[np.newaxis], metadata=series_metadata(stack.slices[0].header)))
    return image, window, stack.slices[k].pixel_spacing or (1.0, 1.0)


def series_thumbnail(headers: Sequence, *, size: int = THUMBNAIL_PX) -> np.ndarray:
    """The thumbnail of one series from its scanned headers (reads one slice's pixels).

    Raises
    ------
    SeriesError, PixelDataError
        If the series cannot be planned or its middle slice cannot be decoded.
    """
    image, window, spacing = thumbnail_slice(headers)
    return render_thumbnail(image, window, pixel_spacing=spacing, size=size)


class ThumbnailCache:
    """Thumbnails on disk in ``folder``, one ``<key>.npy`` each.

    Parameters
    ----------
    folder : path, optional
        Default :func:`default_cache_dir`. Created on the first write.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def path_for(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached thumbnail, or None (also when the file is unreadable: it is redone)."""
        path = self.path_for(key)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            return None
        return array

    def put(self, key: str, thumbnail: np.ndarray) -> Path:
        """Store ``thumbnail`` atomically (temp file, then rename)."""
        from medview.atomic import atomic_file
        from medview.privatedirs import private_folder

        private_folder(self.folder)  # pictures of patients' images: the user's only (0700)
        path = self.path_for(key)
        # a cache that is rebuilt when lost: no fsync
        with (atomic_file(path, overwrite=True, mode=0o600, suffix=".npy", parents=False,
                          durable=False) as tmp,
              open(tmp, "wb") as f):
            np.save(f, np.ascontiguousarray(thumbnail, dtype=np.uint8), allow_pickle=False)
        return path

    def prune(self, max_files: int = MAX_CACHED) -> int:
        """Delete the least recently written thumbnails beyond ``max_files``; returns how many
        were deleted. The cache stays bounded however many series pass through."""
        try:
            entries = [(e.stat().st_mtime_ns, e.path) for e in os.scandir(self.folder)
                       if e.name.endswith(".npy") and e.is_file()]
        except FileNotFoundError:
            return 0
        if len(entries) <= max_files:
            return 0
        entries.sort()
        removed = 0
        for _, path in entries[: len(entries) - max_files]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue  # another window pruned it
            removed += 1
        return removed

    def thumbnail_for(self, catalog, series_uid: str, *,
                      size: int = THUMBNAIL_PX) -> tuple[np.ndarray, bool]:
        """``(thumbnail, from_cache)`` of catalog series ``series_uid``, made if needed.

        Raises
        ------
        SeriesError
            If the series is not in the catalog (or cannot be planned).
        """
        from medview.dicom.errors import SeriesError

        headers = catalog.instances(series_uid)
        if not headers:
            raise SeriesError(f"series {series_uid} is not in the catalog {catalog.path}")
        key = thumbnail_key(series_uid, headers, size=size)
        cached = self.get(key)
        if cached is not None:
            return cached, True
        thumbnail = series_thumbnail(headers, size=size)
        self.put(key, thumbnail)
        return thumbnail, False
