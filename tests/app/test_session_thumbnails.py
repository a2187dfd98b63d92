"""The Session's thumbnails of a real MR series: made from its middle image on its own
runner, then read from the cache; a series whose files are gone fails naming it."""

from __future__ import annotations

import numpy as np
from session_helpers import (
    MR,
    copy_series,
    import_and_wait,
    session_fixture,  # noqa: F401 - the fixture session_parts
)

from medview.app.thumbnails import THUMBNAIL_PX, series_thumbnail


def test_thumbnail_is_made_then_read_from_the_cache(session_parts, data_dir, tmp_path):
    session, queue, _ = session_parts
    session.set_thumbnail_cache(tmp_path / "thumbs")
    import_and_wait(session, queue, copy_series(data_dir, MR, tmp_path / "mr"))
    [series] = session.catalog.series()
    first = session.thumbnail(series.uid)
    queue.run_until(lambda: first.is_done, timeout=60)
    picture, from_cache = first.result
    assert not from_cache and picture.dtype == np.uint8 and max(picture.shape[:2]) == THUMBNAIL_PX
    # the middle image of the series, as the Qt-free maker draws it
    headers = session.catalog.instances(series.uid)
    assert np.array_equal(picture, series_thumbnail(headers))
    assert len(list((tmp_path / "thumbs").glob("*.npy"))) == 1
    again = session.thumbnail(series.uid)
    queue.run_until(lambda: again.is_done, timeout=60)
    assert again.result[1] is True and np.array_equal(again.result[0], picture)


def test_a_series_whose_files_are_gone_has_no_thumbnail(session_parts, data_dir, tmp_path):
    import shutil

    session, queue, _ = session_parts
    session.set_thumbnail_cache(tmp_path / "thumbs")
    folder = copy_series(data_dir, MR, tmp_path / "mr")
    import_and_wait(session, queue, folder)
    [series] = session.catalog.series()
    shutil.rmtree(folder)
    job = session.thumbnail(series.uid)
    queue.run_until(lambda: job.is_done, timeout=60)
    assert job.outcome == "failed" and job.error.message
    assert list((tmp_path / "thumbs").glob("*.npy")) == []
    assert session.stop_thumbnails(10)
