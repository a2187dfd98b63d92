"""The :class:`~medview.app.session.Session`'s series thumbnails (split out along that seam:
small pictures for the library, made off the caller's thread).

Thumbnails run on a one-thread runner of their own (with the session runner's dispatch), so
they never hold up an import or a series load; a cached thumbnail costs one catalog query and
one small file read (:class:`~medview.app.thumbnails.ThumbnailCache`).
"""

from __future__ import annotations

import os

from medview.app.tasks import Job, JobRunner
from medview.app.thumbnails import THUMBNAIL_PX, ThumbnailCache

__all__ = ["ThumbnailsMixin"]


class ThumbnailsMixin:
    """Thumbnails of a Session (see there)."""

    _thumbnail_cache: ThumbnailCache | None = None
    _thumbnail_runner: JobRunner | None = None

    @property
    def thumbnail_cache(self) -> ThumbnailCache:
        """Where thumbnails are kept between runs (default the user's cache folder)."""
        if self._thumbnail_cache is None:
            self.set_thumbnail_cache(None)
        return self._thumbnail_cache

    def set_thumbnail_cache(self, folder: str | os.PathLike | None) -> Job:
        """Keep thumbnails in ``folder`` (None: the user's cache folder); the job prunes it
        to its bound (:data:`~medview.app.thumbnails.MAX_CACHED` files) in the background."""
        cache = self._thumbnail_cache = ThumbnailCache(folder)
        return self._thumbnail_jobs().start("Pruning the thumbnail cache",
                                            lambda progress: cache.prune())

    def thumbnail(self, series_uid: str, *, size: int = THUMBNAIL_PX) -> Job:
        """The thumbnail of catalog series ``series_uid``, read from the cache or made from
        its middle image: the job's result is ``(uint8 array, from_cache)``; its ``failed``
        says why there is none (e.g. a series whose files are gone).

        Raises
        ------
        RuntimeError
            Without a catalog.
        """
        catalog = self.require_catalog("Making a thumbnail")
        cache = self.thumbnail_cache
        return self._thumbnail_jobs().start(
            f"Thumbnail of {series_uid}",
            lambda progress: cache.thumbnail_for(catalog, series_uid, size=size))

    def stop_thumbnails(self, timeout: float = 10.0) -> bool:
        """Cancel the thumbnails queued and wait for the one running; False if it still runs."""
        if self._thumbnail_runner is None:
            return True
        runner, self._thumbnail_runner = self._thumbnail_runner, None
        return runner.shutdown(timeout)

    def _thumbnail_jobs(self) -> JobRunner:
        if self._thumbnail_runner is None:
            self._thumbnail_runner = JobRunner(self.runner.dispatch, max_threads=1)
        return self._thumbnail_runner
