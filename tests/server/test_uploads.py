"""An upload in many pieces is written in batches while it arrives: every byte in its place,
the file closed whatever happens, and one cut off at the limit leaves nothing behind."""

from __future__ import annotations

import asyncio
import os

import pytest
from fastapi import HTTPException
from server_helpers import job_body, noise_volume
from starlette.requests import Request

from medview.server import uploads
from medview.server.uploads import BATCH_BYTES, receive_upload

GAMMA = {"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.7}}]}


def _request(body: bytes, piece: int = 256 << 10) -> Request:
    """A Starlette request whose body arrives in ``piece``-byte messages, as uvicorn hands a
    TLS upload over."""
    messages = [{"type": "http.request", "body": body[i:i + piece], "more_body": True}
                for i in range(0, len(body), piece)]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive():
        await asyncio.sleep(0)  # the next piece arrives later
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


def _counting(monkeypatch) -> list[int]:
    writes: list[int] = []
    write_all = uploads._write_all

    def counted(fd, pieces):
        writes.append(sum(len(p) for p in pieces))
        write_all(fd, pieces)

    monkeypatch.setattr(uploads, "_write_all", counted)
    return writes


def test_an_upload_in_pieces_is_written_in_batches_and_arrives_whole(tmp_path, monkeypatch):
    writes = _counting(monkeypatch)
    body = job_body(GAMMA, noise_volume((48, 256, 256)))  # 12 MiB: batches and a tail
    fd = os.open(tmp_path / "up.part", os.O_WRONLY | os.O_CREAT)
    assert asyncio.run(receive_upload(_request(body), fd, 1 << 30)) == len(body)
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    assert (tmp_path / "up.part").read_bytes() == body
    assert len(writes) >= 3 and all(w >= BATCH_BYTES for w in writes[:-1])


def test_an_upload_over_the_limit_stops_with_413_and_its_file_closed(tmp_path, monkeypatch):
    writes = _counting(monkeypatch)
    body = job_body(GAMMA, noise_volume((48, 256, 256)))
    fd = os.open(tmp_path / "up.part", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(HTTPException) as err:
        asyncio.run(receive_upload(_request(body), fd, 6 << 20))
    assert err.value.status_code == 413
    with pytest.raises(OSError):
        os.fstat(fd)  # closed, after the batch being written was done
    assert writes and (tmp_path / "up.part").stat().st_size == sum(writes) < len(body)


def test_an_upload_cut_off_at_the_limit_leaves_nothing_on_the_server(make_client, tmp_path):
    http = make_client(max_upload_bytes=6 << 20)
    body = job_body(GAMMA, noise_volume((48, 256, 256)))  # 12 MiB, no length declared

    def pieces():
        yield from (body[i:i + (256 << 10)] for i in range(0, len(body), 256 << 10))

    r = http.post("/api/v1/jobs", content=pieces())
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert list((tmp_path / "state" / "uploads").iterdir()) == []
    assert list((tmp_path / "state" / "jobs").iterdir()) == []
