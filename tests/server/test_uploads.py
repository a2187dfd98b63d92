"""An upload in many pieces is written in batches while it arrives: every byte in its place,
and one cut off at the limit leaves nothing behind."""

from __future__ import annotations

import numpy as np
from server_helpers import job_body, noise_volume, wait_done

from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.wire import decode_bundle
from medview.server import uploads
from medview.server.uploads import BATCH_BYTES

GAMMA = {"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.7}}]}


def _pieces(body: bytes, size: int = 256 << 10):
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_an_upload_in_pieces_arrives_whole(make_client, tmp_path, monkeypatch):
    writes: list[int] = []
    write_all = uploads._write_all

    def counted(fd, pieces):
        writes.append(sum(len(p) for p in pieces))
        write_all(fd, pieces)

    monkeypatch.setattr(uploads, "_write_all", counted)
    http = make_client()
    vol = noise_volume((48, 256, 256))  # 12 MiB: three batches and a tail
    body = job_body(GAMMA, vol)
    assert len(body) > 2 * BATCH_BYTES
    r = http.post("/api/v1/jobs", content=_pieces(body),
                  headers={"Content-Length": str(len(body))})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert len(writes) >= 3 and sum(writes) == len(body)  # batches, written in turn
    assert wait_done(http, job_id)["state"] == "succeeded"
    # the job ran on the bytes sent: its result is gamma of this very volume
    result = decode_bundle(http.get(f"/api/v1/jobs/{job_id}/result").content)
    local = run_chain(Chain.from_dict(GAMMA), {"image": vol}).values["step1"].array
    assert np.array_equal(result.values["step1"].array, local)


def test_an_upload_cut_off_at_the_limit_leaves_no_file(make_client, tmp_path):
    http = make_client(max_upload_bytes=6 << 20)
    body = job_body(GAMMA, noise_volume((48, 256, 256)))  # 12 MiB, no length declared
    r = http.post("/api/v1/jobs", content=_pieces(body))
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert list((tmp_path / "state" / "uploads").iterdir()) == []
    assert list((tmp_path / "state" / "jobs").iterdir()) == []
