"""The bundle format: every kind of value survives the trip, damage is named."""

from __future__ import annotations

import numpy as np
import pytest

from medview.core.labelmap import LabelMap, Segment
from medview.core.table import Table
from medview.core.volume import Volume
from medview.remote.wire import (
    WireError,
    bundle_bytes,
    decode_bundle,
    encode_bundle,
    geometry_of,
    same_geometry,
)


def _oblique_volume(dtype=np.int16) -> Volume:
    rng = np.random.default_rng(3)
    arr = rng.integers(-1024, 2000, size=(5, 17, 23)).astype(dtype)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.1, 0.99498743710662]])
    return Volume(arr, (0.7031249, 0.7031249, 2.5), (-180.123456789, 12.5, -33.3), direction,
                  {"Modality": "CT", "Units": "HU"})


@pytest.mark.parametrize("encoding", ["raw", "blosc2"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8, np.float64])
def test_volume_round_trip_is_exact(encoding, dtype):
    vol = _oblique_volume(dtype)
    parts = encode_bundle({"x": 1}, {"image": vol}, encoding=encoding)
    back = decode_bundle(bundle_bytes(parts))
    got = back.values["image"]
    assert back.meta == {"x": 1}
    assert got.array.dtype == np.dtype(dtype) and np.array_equal(got.array, vol.array)
    assert got.spacing == vol.spacing and got.origin == vol.origin
    assert np.array_equal(got.direction, vol.direction)
    assert same_geometry(geometry_of(got), geometry_of(vol))
    assert got.metadata["Units"] == "HU"


def test_blosc2_is_smaller_on_ct_like_data_and_chunks_large_arrays(monkeypatch):
    import medview.remote.wire_arrays as wire_arrays

    monkeypatch.setattr(wire_arrays, "_CHUNK", 4096)  # many chunks on a small array
    z, y, x = np.mgrid[0:6, 0:64, 0:64]
    arr = ((x - 32) ** 2 + (y - 32) ** 2 < 500).astype(np.int16) * 1000 - 1000 + z
    vol = Volume(arr, (1, 1, 1))
    raw = sum(len(p) for p in encode_bundle({}, {"v": vol}, encoding="raw"))
    parts = encode_bundle({}, {"v": vol}, encoding="blosc2")
    packed = sum(len(p) for p in parts)
    assert packed < raw / 2
    assert np.array_equal(decode_bundle(bundle_bytes(parts)).values["v"].array, arr)


def test_labelmap_table_and_file_round_trip():
    vol = _oblique_volume()
    lm = LabelMap(np.zeros(vol.shape, np.uint8), vol.spacing, vol.origin, vol.direction, {}, (),
                  (Segment(1, "lung", (10, 20, 30)),))
    table = Table(({"label": 1, "volume_ml": 2.5}, {"label": 2, "volume_ml": np.float32(1.0)}),
                  title="volumes", units={"volume_ml": "mL"})
    parts = encode_bundle({}, {"seg": lm, "t": table, "f": ("file", "m.model", b"abc")})
    back = decode_bundle(bundle_bytes(parts))
    assert isinstance(back.values["seg"], LabelMap)
    assert back.values["seg"].segments[0].name == "lung"
    assert back.values["t"].rows[1]["volume_ml"] == 1.0 and back.values["t"].units == {
        "volume_ml": "mL"}
    assert back.values["f"] == ("file", "m.model", b"abc")


def test_damaged_bundles_are_refused_with_a_reason():
    data = bundle_bytes(encode_bundle({}, {"image": _oblique_volume()}))
    with pytest.raises(WireError, match="bad magic"):
        decode_bundle(b"XXXX" + data[4:])
    with pytest.raises(WireError, match="runs past the end"):
        decode_bundle(data[:-10])
    with pytest.raises(WireError, match="unexpected bytes"):
        decode_bundle(data + b"junk")
    packed = bytearray(bundle_bytes(encode_bundle({}, {"image": _oblique_volume()},
                                                  encoding="blosc2")))
    blob = 12 + int.from_bytes(packed[4:12], "little")
    packed[blob + 8:blob + 24] = b"\xff" * 16  # the first chunk's blosc2 header
    with pytest.raises(WireError, match="image"):
        decode_bundle(bytes(packed))
