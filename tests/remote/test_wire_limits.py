"""The bundle decoder's bounds: declared sizes checked before decoding, blosc2 chunks never
decode past the declared shape, model items parsed only when asked."""

from __future__ import annotations

import json
import struct

import blosc2
import numpy as np
import pytest

from medview.core.volume import Volume
from medview.remote.wire import (
    EncodedModel,
    WireError,
    bundle_bytes,
    declared_nbytes,
    decode_bundle,
    encode_bundle,
    json_depth,
    read_header,
)

_U64 = struct.Struct("<Q")


def _bundle(header: dict, blob: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<4sQ", b"MVB1", len(head)) + head + blob


def _item(shape, nbytes: int, dtype="|u1") -> dict:
    return {"name": "image", "kind": "volume", "encoding": "blosc2", "dtype": dtype,
            "geometry": {"shape": shape, "spacing": [1.0] * 3, "origin": [0.0] * 3,
                         "direction": np.eye(3).tolist()}, "nbytes": nbytes}


def test_declared_sizes_are_summed_without_overflow():
    items = [_item([2, 3, 4], 0, "<f4"), {"name": "t", "kind": "table"},
             _item([65535, 65535, 10**6], 0, "<f8")]
    assert declared_nbytes({"items": items}) == 2 * 3 * 4 * 4 + 65535 * 65535 * 10**6 * 8


def test_decode_refuses_a_declared_size_over_the_limit_before_decoding():
    chunk = blosc2.compress2(bytes(1 << 20), typesize=1)
    blob = (_U64.pack(len(chunk)) + chunk) * 64
    data = _bundle({"meta": {}, "items": [_item([64, 1024, 1024], len(blob))]}, blob)
    with pytest.raises(WireError, match="decode to 67108864 bytes, more than the limit"):
        decode_bundle(data, max_decoded_bytes=1 << 20)
    assert decode_bundle(data).values["image"].array.shape == (64, 1024, 1024)


def test_a_chunk_that_decodes_to_more_than_the_shape_is_refused():
    chunk = blosc2.compress2(bytes(1 << 20), typesize=1)  # 1 MiB of zeros in a few bytes
    blob = _U64.pack(len(chunk)) + chunk
    data = _bundle({"meta": {}, "items": [_item([4, 4, 4], len(blob))]}, blob)
    with pytest.raises(WireError, match="more data than shape"):
        decode_bundle(data)


def test_a_chunk_whose_header_lies_about_its_length_is_refused():
    good = blosc2.compress2(np.arange(4096, dtype=np.uint8).tobytes(), typesize=1)
    blob = _U64.pack(len(good) + 8) + good + bytes(8)  # 8 bytes more than the chunk holds
    data = _bundle({"meta": {}, "items": [_item([1, 64, 64], len(blob))]}, blob)
    with pytest.raises(WireError, match="says it is"):
        decode_bundle(data)


def test_json_depth_and_header_limits():
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [[1]]}) == 3
    deep = b'{"items": [], "meta": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with pytest.raises(WireError, match="nested deeper"):
        read_header(struct.pack("<4sQ", b"MVB1", len(deep)) + deep)
    with pytest.raises(WireError, match="exceeds the limit of 100 bytes"):
        read_header(_bundle({"items": [], "meta": {"x": "y" * 200}}, b""), max_bytes=100)


def test_model_items_stay_bytes_unless_asked(tmp_path):
    from medview.core.segmentation.classifier import ModelFileError

    vol = Volume(np.zeros((1, 4, 4), np.float32), (1.0, 1.0, 1.0))
    parts = encode_bundle({}, {"image": vol, "m": EncodedModel(b"not a model")})
    got = decode_bundle(bundle_bytes(parts), load_models=False)
    assert got.values["m"] == EncodedModel(b"not a model")
    with pytest.raises(ModelFileError, match="not a medview"):
        decode_bundle(bundle_bytes(parts))
