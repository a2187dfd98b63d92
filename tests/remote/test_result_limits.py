"""The client bounds what a result download may decode to: a result array must declare the
grid of an input, and all of them together at most RESULT_DECODE_FACTOR × the inputs' bytes,
both checked before anything is decompressed."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.volume import Volume
from medview.remote.deid import deidentify
from medview.remote.errors import RemoteError
from medview.remote.run import (
    GeometryMismatchError,
    RemoteJob,
    check_result_header,
    result_limit,
)
from medview.remote.schemas import JobStatus
from medview.remote.wire import WireError, bundle_bytes, decode_bundle, encode_bundle, geometry_of


def _volume(shape, value=0) -> Volume:
    return Volume(np.full(shape, value, np.int16), (0.8, 0.8, 2.0), (-10.0, 5.0, 30.0),
                  np.eye(3), {})


def _job(vol: Volume) -> RemoteJob:
    status = JobStatus.model_validate({"id": "j1", "state": "succeeded", "created": 0.0,
                                      "updated": 0.0})
    return RemoteJob(status, {"image": vol}, deidentify({"image": vol}),
                     {"image": geometry_of(vol)}, 0)


def test_a_result_on_the_input_grid_passes_and_decodes():
    vol = _volume((3, 16, 16), 7)
    job = _job(vol)
    data = bundle_bytes(encode_bundle({}, {"out": vol}, encoding="blosc2"))
    check_result_header(data, job, endpoint="site")
    out = decode_bundle(data, max_decoded_bytes=result_limit(job)).values["out"]
    assert np.array_equal(out.array, vol.array)


def test_a_result_declaring_another_grid_is_refused_before_decoding():
    vol = _volume((3, 16, 16))
    huge = _volume((30, 64, 64))
    data = bundle_bytes(encode_bundle({}, {"out": huge}, encoding="blosc2"))
    with pytest.raises(GeometryMismatchError, match=r"'out' declares shape \[30, 64, 64\]"):
        check_result_header(data, _job(vol), endpoint="site")


def test_many_input_sized_results_cannot_expand_past_the_limit(monkeypatch):
    import medview.remote.run as run

    vol = _volume((3, 16, 16))
    job = _job(vol)
    monkeypatch.setattr(run, "RESULT_SLACK_BYTES", 0)
    monkeypatch.setattr(run, "RESULT_DECODE_FACTOR", 2)
    many = {f"r{i}": vol for i in range(3)}  # three input-sized arrays: 3× the input bytes
    data = bundle_bytes(encode_bundle({}, many, encoding="blosc2"))
    check_result_header(data, job, endpoint="site")  # each grid is fine …
    with pytest.raises(WireError, match="more than the limit"):  # … but not all of them
        decode_bundle(data, max_decoded_bytes=run.result_limit(job))
    assert run.result_limit(job) == 2 * vol.array.nbytes


def test_a_damaged_result_header_is_a_clear_error():
    job = _job(_volume((3, 16, 16)))
    with pytest.raises(RemoteError, match="the result is damaged"):
        check_result_header(b"MVB1" + b"\xff" * 20, job, endpoint="site")
