"""Every input is untrusted: decoded-size limits, JSON limits, the docs behind the token, the
request log's byte counts, and model files that never run on the server.

TestClient against the app with a real process pool behind it (tests/server/conftest.py).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from model_payloads import legacy_bytes, memmap_payload, popen_payload
from server_helpers import job_body, noise_volume, wait_done

from medview.pipeline.chain import Chain
from medview.remote.wire import MAX_JSON_DEPTH, bundle_bytes, encode_bundle
from medview.server.app import MAX_JSON_BYTES
from medview.server.requestlog import RequestLog

GAUSS = {"steps": [{"step": "smooth.gaussian", "params": {"sigma_mm": 1.0}}]}
_U64 = struct.Struct("<Q")


def raw_bundle(header: dict | bytes, blob: bytes = b"") -> bytes:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<4sQ", b"MVB1", len(head)) + head + blob


def amplification_body(shape=(1024, 1024, 1024)) -> bytes:
    """A few KB of blosc2 that decode to ``shape`` uint8 (1 GiB by default) of zeros."""
    import blosc2

    step = 16 << 20
    chunk = blosc2.compress2(bytes(step), typesize=1, clevel=1, codec=blosc2.Codec.ZSTD,
                             filter=blosc2.Filter.SHUFFLE)
    blob = (_U64.pack(len(chunk)) + chunk) * (int(np.prod(shape)) // step)
    item = {"name": "image", "kind": "volume", "encoding": "blosc2", "dtype": "|u1",
            "geometry": {"shape": list(shape), "spacing": [1.0, 1.0, 1.0],
                         "origin": [0.0, 0.0, 0.0],
                         "direction": [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]},
            "metadata": {}, "nbytes": len(blob)}
    return raw_bundle({"meta": {"chain": Chain.from_dict(GAUSS).to_dict()}, "items": [item]},
                      blob)


def log_lines(tmp_path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "state" / "requests.log").read_text().split("\n")
            if x]


def peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_small_upload_that_decodes_to_gigabytes_is_refused_before_decoding(
        make_client, pool, tmp_path):
    c = make_client(max_upload_bytes=64 << 20)
    body = amplification_body()
    assert len(body) < 8000  # the attack: a few KB on the wire …
    r = c.post("/api/v1/jobs", content=body)
    assert r.status_code == 413, r.text
    assert "decode to 1073741824 bytes" in r.json()["detail"]  # … 1 GiB decoded
    assert c.get("/api/v1/jobs").json() == []
    assert list((tmp_path / "state" / "uploads").iterdir()) == []
    assert not list((tmp_path / "state").glob("jobs/*/*"))  # no input, no result on disk
    for proc in (pool._pool._processes or {}).values():  # the pool never decoded anything
        assert peak_rss_bytes(proc.pid) < 700 << 20
    (entry,) = [e for e in log_lines(tmp_path) if e["method"] == "POST"]
    assert entry["status"] == 413 and entry["in_bytes"] == len(body)
    # the same limit is on /info for clients, and a separate decoded limit can be set
    assert c.get("/api/v1/info").json()["max_decoded_bytes"] == 64 << 20
    c2 = make_client(state_dir=tmp_path / "other", max_decoded_bytes=2 << 30)
    assert c2.post("/api/v1/jobs", content=amplification_body((4, 1024, 1024))).status_code \
        == 201


def test_an_array_with_an_unusable_shape_or_dtype_is_422(make_client):
    c = make_client()
    for shape, dtype in (([-1, 4], "|u1"), (["4", 4], "|u1"), ([2] * 5, "|u1"),
                         ([4, 4], "|O"), (None, "<f4")):
        item = {"name": "image", "kind": "volume", "encoding": "raw", "dtype": dtype,
                "geometry": {"shape": shape}, "nbytes": 0}
        r = c.post("/api/v1/jobs", content=raw_bundle({"meta": {"chain": GAUSS},
                                                       "items": [item]}))
        assert r.status_code == 422, (shape, dtype, r.text)
        assert "image" in r.json()["detail"]


def test_deeply_nested_or_huge_json_is_refused_and_logged(make_client, tmp_path):
    c = make_client()
    deep = b'{"meta": {"chain": ' + b"[" * 100_000 + b"]" * 100_000 + b'}, "items": []}'
    r = c.post("/api/v1/jobs", content=raw_bundle(deep))
    assert r.status_code == 422 and "nested deeper" in r.json()["detail"]
    just_over = {"meta": {"x": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)},
                 "items": []}
    r = c.post("/api/v1/jobs", content=raw_bundle(just_over))
    assert r.status_code == 422 and f"deeper than {MAX_JSON_DEPTH}" in r.json()["detail"]
    big = raw_bundle({"meta": {"pad": "x" * MAX_JSON_BYTES}, "items": []})
    r = c.post("/api/v1/jobs", content=big)
    assert r.status_code == 413 and "header" in r.json()["detail"]
    huge_int = raw_bundle(b'{"meta": {"n": ' + b"9" * 50_000 + b'}, "items": []}')
    assert c.post("/api/v1/jobs", content=huge_int).status_code == 422
    odd = raw_bundle({"meta": [], "items": []})
    assert c.post("/api/v1/jobs", content=odd).status_code == 422
    statuses = [e["status"] for e in log_lines(tmp_path) if e["method"] == "POST"]
    assert statuses == [422, 422, 413, 422, 422]
    assert c.get("/api/v1/jobs").json() == []


def test_the_docs_need_the_token_unless_public(make_client, tmp_path):
    c = make_client()
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert c.get(path, headers={"Authorization": ""}).status_code == 401, path
        assert c.get(path).status_code == 200, path
    assert "/api/v1/jobs" in c.get("/openapi.json").json()["paths"]
    assert "/docs" not in c.get("/openapi.json").json()["paths"]
    public = make_client(state_dir=tmp_path / "public", public_docs=True)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert public.get(path, headers={"Authorization": ""}).status_code == 200, path
    assert public.get("/api/v1/info", headers={"Authorization": ""}).status_code == 401


def test_the_log_records_the_bytes_received_not_the_declared_length(make_client, tmp_path):
    c = make_client(max_upload_bytes=1 << 20)
    r = c.post("/api/v1/jobs", content=b"x" * 100, headers={"Content-Length": str(10**12)})
    assert r.status_code == 413
    body = job_body(GAUSS, noise_volume((2, 16, 16)))
    r = c.post("/api/v1/jobs", content=body)
    assert r.status_code == 201
    wait_done(c, r.json()["id"])
    entries = [e for e in log_lines(tmp_path) if e["method"] == "POST"]
    assert entries[0]["in_bytes"] == 0 and entries[0]["status"] == 413  # never read
    assert entries[1]["in_bytes"] == len(body) and entries[1]["who"] == "workstation-1"
    assert entries[1]["out_bytes"] == len(r.content)


def test_an_unexpected_error_is_logged_with_status_500(tmp_path):
    app = FastAPI()

    @app.post("/boom")
    async def boom():
        raise RuntimeError("a bug")

    app.add_middleware(RequestLog, path=tmp_path / "requests.log")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/boom", content=b"12345").status_code == 500
    (entry,) = [json.loads(x) for x in (tmp_path / "requests.log").read_text().splitlines()]
    assert entry["status"] == 500 and entry["error"] == "RuntimeError"
    assert entry["path"] == "/boom"


# -- model files on the server ----------------------------------------------------------------
@pytest.mark.parametrize("make", [popen_payload, memmap_payload])
def test_a_pickle_model_sent_as_model_path_is_refused(make, make_client, tmp_path, monkeypatch):
    from medview.remote.client import RemoteClient
    from medview.remote.errors import RemoteError
    from medview.remote.run import run_chain_remote

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.model"
    data = legacy_bytes(make(marker))
    path.write_bytes(data)
    import hashlib

    (tmp_path / "evil.model.sha256").write_text(hashlib.sha256(data).hexdigest() + "  x\n")
    chain = Chain.from_dict({"steps": [{"step": "segment.classifier_apply",
                                        "params": {"model_path": str(path)}}]})
    http = make_client()
    client = RemoteClient("https://testserver", http.headers["Authorization"].split()[1],
                          http=http, name="inproc")
    with pytest.raises(RemoteError, match=r"format 1.*pickle"):
        run_chain_remote(chain, {"image": noise_volume((2, 16, 16))}, client=client)
    assert not marker.exists()


@pytest.mark.parametrize("make", [popen_payload, memmap_payload])
def test_a_model_bundle_item_no_step_uses_is_never_parsed(make, make_client, tmp_path):
    marker = tmp_path / "pwned"
    c = make_client()
    parts = encode_bundle({"chain": Chain.from_dict(GAUSS).to_dict()},
                          {"image": noise_volume((2, 16, 16))})
    body = bytearray(bundle_bytes(parts))
    header_len = struct.unpack_from("<Q", body, 4)[0]
    header = json.loads(body[12:12 + header_len])
    blob = legacy_bytes(make(marker))
    header["items"].append({"name": "m", "kind": "model", "nbytes": len(blob)})
    data = raw_bundle(header, bytes(body[12 + header_len:]) + blob)
    r = c.post("/api/v1/jobs", content=data)
    assert r.status_code == 201, r.text
    st = wait_done(c, r.json()["id"])
    assert st["state"] == "succeeded", st["error"]
    assert not marker.exists()
