"""Thumbnail logic without widgets: rendering, keys and the disk cache."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from medview.app.thumbnails import ThumbnailCache, render_thumbnail, thumbnail_key
from medview.dicom.catalog.db import Catalog


def test_render_keeps_the_physical_aspect_ratio():
    image = np.arange(100 * 200, dtype=np.int16).reshape(100, 200)
    # 100 rows of 2 mm and 200 columns of 0.5 mm: 200 mm tall, 100 mm wide
    thumb = render_thumbnail(image, (10_000.0, 20_000.0), pixel_spacing=(2.0, 0.5), size=64)
    assert thumb.shape == (64, 32) and thumb.dtype == np.uint8
    assert thumb[0].mean() < thumb[-1].mean()  # values grow down the rows
    with pytest.raises(ValueError, match="width"):
        render_thumbnail(image, (0.0, 0.0))


def test_key_changes_with_any_file(demo_dir, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.index([demo_dir])
        (series,) = cat.series()
        headers = cat.instances(series.uid)
    key = thumbnail_key(series.uid, headers)
    assert thumbnail_key(series.uid, list(reversed(headers))) == key  # order does not matter
    touched = [replace(headers[0], mtime_ns=headers[0].mtime_ns + 1), *headers[1:]]
    assert thumbnail_key(series.uid, touched) != key
    assert thumbnail_key(series.uid, headers[1:]) != key
    assert thumbnail_key(series.uid, headers, size=96) != key


def test_cache_round_trip_corrupt_file_and_prune(tmp_path):
    cache = ThumbnailCache(tmp_path / "thumbs")
    assert cache.get("abc") is None
    thumb = np.arange(64 * 48, dtype=np.uint8).reshape(64, 48)
    cache.put("abc", thumb)
    assert np.array_equal(cache.get("abc"), thumb)
    assert os.listdir(tmp_path / "thumbs") == ["abc.npy"]  # no temporary file left
    cache.path_for("abc").write_bytes(b"not numpy")
    assert cache.get("abc") is None  # redone, not raised
    for i in range(5):
        cache.put(f"k{i}", thumb)
        os.utime(cache.path_for(f"k{i}"), ns=(i * 10**9, i * 10**9))
    assert cache.prune(max_files=3) == 3  # abc (newest mtime: now) stays
    assert sorted(os.listdir(tmp_path / "thumbs")) == ["abc.npy", "k3.npy", "k4.npy"]
