"""Thumbnails made in the background and handed to the browser when ready.

The Session makes them (:meth:`~medview.app.session.Session.thumbnail`, on a one-thread
runner of its own, so thumbnails never hold up an import or a series load); this loader asks
for each series once at a time and hands the pictures to the browser.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap

from medview.app.messages import TaskError
from medview.app.thumbnails import THUMBNAIL_PX

__all__ = ["ThumbnailLoader", "thumbnail_image"]

log = logging.getLogger(__name__)


def thumbnail_image(array: np.ndarray) -> QImage:
    """A QImage holding a copy of a ``uint8`` thumbnail ``[h, w]`` or ``[h, w, 3]``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = array.shape[:2]
    if array.ndim == 2:
        image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Grayscale8)
    else:
        image = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: ``array`` may go away


class ThumbnailLoader(QObject):
    """Asks the Session for the thumbnails of catalog series (read from its cache or made).

    Parameters
    ----------
    session : medview.app.session.Session
        Whose :meth:`~medview.app.session.Session.thumbnail` makes them (its thumbnail
        cache: :meth:`~medview.app.session.Session.set_thumbnail_cache`).

    Signals
    -------
    thumbnail_ready(str, object)
        A series UID and its thumbnail (``uint8`` ndarray); emitted on the GUI thread.
    thumbnail_failed(str, str)
        A series UID and why it has no thumbnail (logged; the row just stays without one).
    """

    thumbnail_ready = Signal(str, object)
    thumbnail_failed = Signal(str, str)

    def __init__(self, session, parent: QObject | None = None, *, size: int = THUMBNAIL_PX):
        super().__init__(parent)
        self.session = session
        self.size = size
        self._pending: set[str] = set()
        #: thumbnails read from the cache / made from the files, since the start
        self.cache_hits = 0
        self.made = 0

    def request(self, series_uids) -> int:
        """Ask for the thumbnails of ``series_uids``; returns how many were queued (a series
        already queued is not queued twice)."""
        queued = 0
        for uid in series_uids:
            if uid in self._pending:
                continue
            self._pending.add(uid)
            events = self.session.thumbnail(uid, size=self.size).events
            events.finished.connect(lambda result, uid=uid: self._on_made(uid, *result))
            events.failed.connect(lambda error, uid=uid: self._on_failed(uid, error))
            events.cancelled.connect(lambda uid=uid: self._pending.discard(uid))
            queued += 1
        return queued

    def _on_made(self, uid: str, thumbnail: np.ndarray, from_cache: bool) -> None:
        self._pending.discard(uid)
        if from_cache:
            self.cache_hits += 1
        else:
            self.made += 1
        self.thumbnail_ready.emit(uid, thumbnail)

    def _on_failed(self, uid: str, error: TaskError) -> None:
        self._pending.discard(uid)
        log.warning("no thumbnail for series %s: %s", uid, error.message)
        self.thumbnail_failed.emit(uid, error.message)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel what is queued and wait for the running thumbnail."""
        return self.session.stop_thumbnails(timeout_ms / 1000)


def thumbnail_icon(array: np.ndarray) -> QIcon:
    """A QIcon of a thumbnail array."""
    return QIcon(QPixmap.fromImage(thumbnail_image(array)))
