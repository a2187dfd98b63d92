"""A result is served while it is written: the reader follows a growing file of known length,
stops when the attempt fails or the file stalls, and answers ranges of it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from medview.server.streams import ResultStream, parse_range, read_growing


async def _collect(stream, start, end, **kw) -> list[bytes]:
    return [c async for c in read_growing(stream, start, end, **kw)]


def test_the_reader_sends_bytes_while_the_writer_is_still_writing(tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "result.1.part"
    stream = ResultStream("job", path, len(data), 1)
    first_read = threading.Event()
    got: list[bytes] = []

    async def read():
        async for chunk in read_growing(stream, 0, len(data), chunk_bytes=64 << 10):
            got.append(chunk)
            first_read.set()

    def write():
        with open(path, "wb") as f:  # created after the reader started looking for it
            f.write(data[:100_000])
            f.flush()
            # the rest only once the reader has sent some: proof that it does not wait for
            # the end of the file
            assert first_read.wait(30)
            f.write(data[100_000:])

    writer = threading.Thread(target=write)
    writer.start()
    asyncio.run(read())
    writer.join()
    assert b"".join(got) == data
    assert sum(len(c) for c in got[:2]) <= 100_000 + (64 << 10)


def test_a_failed_attempt_or_a_stalled_file_ends_the_response_short(tmp_path):
    path = tmp_path / "result.1.part"
    path.write_bytes(b"x" * 1000)
    stream = ResultStream("job", path, 5000, 1)

    def fail_soon():
        threading.Event().wait(0.2)
        stream.fail()

    threading.Thread(target=fail_soon).start()
    assert b"".join(asyncio.run(_collect(stream, 0, 5000))) == b"x" * 1000
    stalled = ResultStream("job", path, 5000, 2)
    assert b"".join(asyncio.run(_collect(stalled, 200, 5000, stall_s=0.1))) == b"x" * 800
    # complete: the renamed file is read from the start of the range to its end
    final = tmp_path / "result.bin"
    final.write_bytes(b"0123456789")
    done = ResultStream("job", tmp_path / "gone.part", 10, 3)
    done.complete(final)
    assert b"".join(asyncio.run(_collect(done, 4, 10))) == b"456789"
    assert done.etag == '"job.3"'


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-", (0, 100)), ("bytes=10-19", (10, 20)), ("bytes=90-200", (90, 100)),
    ("bytes=-10", (90, 100)), ("bytes=100-", (100, 100)), ("bytes=5-2", None),
    ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=x-", None)])
def test_ranges(header, expected):
    assert parse_range(header, 100) == expected
