"""Showing a series while a PACS retrieve brings it, the way a progressive local open does.

The PACS dock announces the instance list (with each instance's position, when the PACS
gives it) and every batch of files indexed. Once the list is known for the series to show,
:class:`~medview.dicom.series.arriving.ArrivingSeries` lays the whole series out; a reading thread
puts each arrived file into the slice its position gives (files come in any order), and the
views poll which slices hold values (``ViewerState.set_loading``), as for a local open. The
first image shows as soon as the first file is read. When the retrieve ends, the series is
loaded from the catalog as usual and swapped in on the same grid: the view stays.

When the PACS lists no usable geometry (or the series is not a plain stack) the window falls
back to opening what is in the catalog and reading it again at the end.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from medview.dicom.series.arriving import ArrivingSeries

__all__ = ["POLL_MS", "ArrivingReader"]

log = logging.getLogger(__name__)

#: how often the views are told that more slices hold values
POLL_MS = 50


class ArrivingReader(QObject):
    """Feeds arrived files of one series into an :class:`ArrivingSeries` in a thread.

    Parameters
    ----------
    series : ArrivingSeries
    on_first : callable
        ``on_first(k)`` on the GUI thread once the first slice ``k`` is read (the volume
        exists from then on).
    on_more : callable
        ``on_more(replaced)`` on the GUI thread when more slices hold values; ``replaced``
        is True when the volume object changed (a wider dtype).
    """

    def __init__(self, series: ArrivingSeries, on_first, on_more, parent=None):
        super().__init__(parent)
        self.series = series
        self._on_first = on_first
        self._on_more = on_more
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self._first: int | None = None
        self._shown_first = False
        self._shown_count = 0
        self._shown_volume = None
        self._thread = threading.Thread(target=self._run, name="medview-arriving", daemon=True)
        self._thread.start()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def add(self, paths) -> None:
        """Queue files of the series (each path once)."""
        for p in paths:
            key = str(p)
            if key not in self._seen:
                self._seen.add(key)
                self._queue.put(Path(p))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                path = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            k = self.series.add(path)
            if k is not None and self._first is None:
                self._first = k

    def poll(self) -> None:
        """On the GUI thread: show the first image, or say that more slices arrived."""
        series = self.series
        if self._first is None or series.volume is None:
            return
        if not self._shown_first:
            self._shown_first = True
            self._shown_volume = series.volume
            self._shown_count = series.n_loaded
            self._on_first(self._first)
            return
        n = series.n_loaded
        replaced = series.volume is not self._shown_volume
        if n != self._shown_count or replaced:
            self._shown_count = n
            self._shown_volume = series.volume
            self._on_more(replaced)

    def stop(self) -> None:
        """Stop reading (the file being read is finished) and stop polling."""
        self._stop.set()
        self._timer.stop()
        self._thread.join()
        for path, reason in self.series.failures:
            log.info("arriving series %s: %s: %s", self.series.series_uid, path, reason)
