"""The volume cache: LRU order, the cap in bytes, size accounting. Plain Python, no Qt."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import psutil
import pytest

from medview.app.volume_cache import DEFAULT_RAM_FRACTION, VolumeCache, default_cap_bytes
from medview.core.volume import Volume

MB = 2**20


def volume(mb: int) -> Volume:
    return Volume(np.zeros((mb, 512, 1024), dtype=np.uint16))  # mb MiB exactly


def test_entries_come_back_and_sizes_add_up():
    cache = VolumeCache(10 * MB)
    a, b = volume(3), volume(4)
    assert cache.put("a", a, a.nbytes) and cache.put("b", b, b.nbytes)
    assert cache.get("a") is a and cache.get("b") is b
    assert cache.nbytes == 7 * MB and len(cache) == 2
    assert cache.get("c") is None and cache.get("c", 5) == 5
    assert cache.remove("a") and not cache.remove("a")
    assert cache.nbytes == 4 * MB and "a" not in cache and "b" in cache
    cache.put("b", a, a.nbytes)  # replacing an entry replaces its size
    assert cache.nbytes == 3 * MB and cache.get("b") is a
    cache.clear()
    assert cache.nbytes == 0 and len(cache) == 0


def test_least_recently_used_goes_first():
    cache = VolumeCache(10 * MB)
    for key in "abc":
        cache.put(key, volume(3), 3 * MB)
    cache.get("a")  # a is now the most recently used: b is the oldest
    assert cache.keys() == ["b", "c", "a"]
    cache.put("d", volume(3), 3 * MB)
    assert cache.evicted == ["b"]
    assert cache.keys() == ["c", "a", "d"]
    cache.put("e", volume(6), 6 * MB)  # needs two evictions, oldest first
    assert cache.evicted == ["b", "c", "a"]
    assert cache.keys() == ["d", "e"] and cache.nbytes == 9 * MB


def test_the_cap_is_never_exceeded():
    cache = VolumeCache(20 * MB)
    rng = np.random.default_rng(0)
    for i in range(200):
        size = int(rng.integers(1, 12)) * MB
        cache.put(i, None, size)
        assert cache.nbytes <= 20 * MB
        assert cache.nbytes == sum(s for s in _sizes(cache))
        if rng.random() < 0.3:
            cache.get(int(rng.integers(0, i + 1)))


def _sizes(cache: VolumeCache):
    return [entry[1] for entry in cache._entries.values()]


def test_a_volume_larger_than_the_cap_is_not_stored_and_evicts_nothing():
    cache = VolumeCache(5 * MB)
    cache.put("small", volume(2), 2 * MB)
    big = volume(6)
    assert not cache.put("big", big, big.nbytes)
    assert "big" not in cache and cache.keys() == ["small"] and cache.evicted == []


def test_lowering_the_cap_evicts_down_to_it():
    cache = VolumeCache(10 * MB)
    for key in "abc":
        cache.put(key, None, 3 * MB)
    cache.set_cap(4 * MB)
    assert cache.keys() == ["c"] and cache.nbytes == 3 * MB
    with pytest.raises(ValueError, match="cap_bytes"):
        cache.set_cap(-1)


def test_the_default_cap_is_a_quarter_of_ram_or_the_environment_setting():
    total = psutil.virtual_memory().total
    assert default_cap_bytes({}) == int(total * DEFAULT_RAM_FRACTION)
    assert default_cap_bytes({"MEDVIEW_CACHE_MB": "512"}) == 512 * MB
    assert default_cap_bytes({"MEDVIEW_CACHE_MB": "0"}) == 0
    for bad in ("lots", "-3", "nan"):
        with pytest.raises(ValueError, match="MEDVIEW_CACHE_MB"):
            default_cap_bytes({"MEDVIEW_CACHE_MB": bad})
    # the window's setting counts when the variable is not set
    assert default_cap_bytes({}, setting_mb="64") == 64 * MB
    assert default_cap_bytes({"MEDVIEW_CACHE_MB": "8"}, setting_mb="64") == 8 * MB
    assert default_cap_bytes({}, setting_mb="") == int(total * DEFAULT_RAM_FRACTION)
    with pytest.raises(ValueError, match="cache/max_mb"):
        default_cap_bytes({}, setting_mb="much")


def test_a_zero_cap_caches_nothing():
    cache = VolumeCache(0)
    assert not cache.put("a", volume(1), MB) and len(cache) == 0


def test_the_cache_module_imports_no_qt():
    code = ("import sys, medview.app.volume_cache; "
            "sys.exit(any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
