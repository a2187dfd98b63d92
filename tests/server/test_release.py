"""A result array's memory goes back as it is written — only when nothing else can read it —
and the result file always holds the arrays' bytes."""

from __future__ import annotations

import hashlib
import sys
import weakref

import numpy as np
import pytest

from medview.remote.wire_arrays import encode_array as _encode_array
from medview.server.release import releaser_for
from medview.server.worker import write_parts

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="memory is released on Linux only")

MiB = 1 << 20


def _array(value: float, mib: int = 8) -> np.ndarray:
    return np.full((mib * MiB // 1024, 256), value, np.float32)  # owns its memory


def _part(arr: np.ndarray):
    """The part the encoder makes of ``arr`` (a memoryview of a uint8 view of it)."""
    return _encode_array(arr, "raw")[1][0]


def test_a_written_array_nobody_else_holds_is_released_page_by_page():
    arr = _array(2.5)
    gone = weakref.ref(arr)  # looks without holding it
    part = _part(arr)
    del arr
    rel = releaser_for(part, [])
    assert rel is not None
    rel.release(4 * MiB)
    seen = gone()
    assert seen is not None  # still alive (the part holds it) …
    flat = seen.reshape(-1)
    # … but its first 4 MiB (whole pages) read as zeros now, the rest is untouched
    assert not flat[2048:MiB // 4 - 1024].any()
    assert (flat[5 * MiB // 4:] == 2.5).all()
    del seen, flat


@pytest.mark.parametrize("case", ["array kept", "part kept", "same array twice",
                                  "slice still to write", "a view of a file map", "bytes"])
def test_memory_someone_else_can_still_read_is_never_released(case, tmp_path):
    arr = _array(1.5)
    rest: list = []
    keep: list = [arr]
    if case == "array kept":
        part = _part(arr)
    elif case == "part kept":
        part = _part(arr)
        keep = [part]
    elif case == "same array twice":
        part, rest = _part(arr), [_part(arr)]
    elif case == "slice still to write":
        part = _part(arr)
        rest = [part[MiB:2 * MiB]]
    elif case == "a view of a file map":
        path = tmp_path / "m.bin"
        path.write_bytes(arr.tobytes())
        part = memoryview(np.memmap(path, np.uint8, "r+"))
    else:
        part = memoryview(arr.tobytes())
    if case != "array kept":
        del arr
    assert releaser_for(part, rest) is None
    del keep


def test_write_parts_writes_every_byte_whatever_it_releases(tmp_path):
    kept = _array(7.0, 3)  # referenced here too: must be written and stay readable
    shared = _array(9.0, 2)  # two parts of one array: neither may be released early
    parts = [b"header", _part(_array(1.0, 5)), _part(kept), _part(shared), _part(shared),
             _part(_array(3.0, 4))]
    del shared
    expected = hashlib.sha256()
    for p in parts:
        expected.update(bytes(p))
    size = write_parts(tmp_path / "r.bin", parts)
    assert parts == []
    data = (tmp_path / "r.bin").read_bytes()
    assert size == len(data) == 6 + (5 + 3 + 2 + 2 + 4) * MiB
    assert hashlib.sha256(data).hexdigest() == expected.hexdigest()
    assert (kept == 7.0).all()  # an array the caller still holds keeps its values
