"""A result's body over the client's direct path (http.client into one buffer), against a real
TLS `medview serve`: the same bytes as httpx gets, memory bounded by the buffer, and every
resume the httpx path has (a partial file, another attempt's ETag, a connection cut mid-body,
a kept connection the other side has closed). A job's upload takes the same path: whole, on
the client's own connection, resent once on a new one when the kept one died, and a body over
the server's limit gets the server's 413."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from offload_procs import pool_site, start_server, stop, subprocess_env

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.errors import RemoteError
from medview.remote.run import collect_job, submit_job

pytestmark = [pytest.mark.e2e]

GAMMA = {"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.7}}]}


class CuttingRelay:
    """A TCP relay on 127.0.0.1 in front of the server (TLS passes through untouched): the
    first connection is cut after ``cut_after`` bytes from the server; ``drop_all()`` closes
    every open connection, as a server closing its idle keep-alive connections would."""

    def __init__(self, port: int, cut_after: int | None = None):
        self.target = port
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self.connections += 1
                limit = self.cut_after if self.connections == 1 else None
                self._open += [down, up]
            threading.Thread(target=self._pipe, args=(down, up, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, down, limit), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(1 << 16):
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[:limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def drop_all(self) -> None:
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.drop_all()
        self.listener.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("download")
    with pool_site(root) as s:
        s["state"] = root / "pool" / "state"
        s["root"] = root
        yield s


@pytest.fixture(scope="module")
def job(site, tmp_path_factory):
    """One finished job with a 32 MiB result (kept on the server: never acknowledged), and
    its whole result as httpx downloads it."""
    with pytest.MonkeyPatch.context() as mp:  # the client's audit log and deid records
        mp.setenv("MEDVIEW_DATA_DIR", str(tmp_path_factory.mktemp("client-data")))
        arr = np.random.default_rng(3).integers(-1000, 2000, (32, 512, 512), dtype=np.int16)
        with client_for(site) as c:
            j = submit_job(c, Chain.from_dict(GAMMA), {"image": Volume(arr, (0.7, 0.7, 1.0))},
                           encoding="raw")
            st = c.wait(j.status.id)
            assert st.state == "succeeded", st
            whole = c.download(j.status.id)  # httpx, in memory
    assert len(whole) > 32 << 20
    return {"id": j.status.id, "bytes": whole}


def client_for(site, url: str | None = None, **kw) -> RemoteClient:
    return RemoteClient(url or site["url"], site["token"], ca_bundle=str(site["cert"]),
                        name="tls", **kw)


def _log(site, *, at_least: int = 0) -> list[dict]:
    """The server's request log, once it has ``at_least`` entries (the server writes an
    entry just after the response's last byte: a moment after the client has it)."""
    end = time.monotonic() + 10
    while True:
        lines = (site["state"] / "requests.log").read_text().splitlines()
        if len(lines) >= at_least or time.monotonic() > end:
            return [json.loads(x) for x in lines]
        time.sleep(0.02)


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(key)


def test_the_direct_path_gets_the_same_bytes_with_memory_bounded_by_its_buffer(site, job,
                                                                               tmp_path):
    with client_for(site) as c:
        assert c._direct is not None  # our own connection, no proxy: the direct path
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _vm("VmRSS")
        part = tmp_path / "r.part"
        assert c.download_result(job["id"], part) == len(job["bytes"])
        grew = _vm("VmHWM") - before
    assert part.read_bytes() == job["bytes"]
    # a 1 MiB buffer, never the result (32 MiB): measured a few MiB at most
    assert grew < len(job["bytes"]) // 4, grew >> 20
    assert (tmp_path / "r.part.etag").read_text() == f'"{job["id"]}.1"'


def test_a_partial_file_is_completed_with_a_range_request(site, job, tmp_path):
    cut = 5_000_001
    part = tmp_path / "r.part"
    part.write_bytes(job["bytes"][:cut])
    part.with_name("r.part.etag").write_text(f'"{job["id"]}.1"')
    n = len(_log(site))
    with client_for(site) as c:
        assert c.download_result(job["id"], part) == len(job["bytes"])
    assert part.read_bytes() == job["bytes"]
    last = _log(site, at_least=n + 1)[-1]
    assert last["status"] == 206 and last["out_bytes"] == len(job["bytes"]) - cut


def test_bytes_of_another_attempt_are_replaced_by_the_whole_result(site, job, tmp_path):
    part = tmp_path / "r.part"
    part.write_bytes(b"\xff" * 1_000_000)
    part.with_name("r.part.etag").write_text(f'"{job["id"]}.7"')  # not this attempt's
    n = len(_log(site))
    with client_for(site) as c:
        assert c.download_result(job["id"], part) == len(job["bytes"])
    assert part.read_bytes() == job["bytes"]
    last = _log(site, at_least=n + 1)[-1]
    assert last["status"] == 200 and last["out_bytes"] == len(job["bytes"])


def test_a_connection_cut_mid_body_is_resumed_where_it_stopped(site, job, tmp_path):
    port = int(site["url"].rsplit(":", 1)[1])
    relay = CuttingRelay(port, cut_after=12 << 20)
    n = len(_log(site))
    try:
        part = tmp_path / "r.part"
        with client_for(site, f"https://127.0.0.1:{relay.port}", backoff_s=0.01) as c:
            assert c.download_result(job["id"], part) == len(job["bytes"])
        assert relay.connections == 2
    finally:
        relay.close()
    assert part.read_bytes() == job["bytes"]
    cut, resumed = _log(site, at_least=n + 2)[-2:]
    assert cut["status"] == 200
    # the second request asked for the rest only (Range + If-Range of the same attempt)
    assert resumed["status"] == 206 and 0 < resumed["out_bytes"] < len(job["bytes"])


def test_a_kept_connection_closed_by_the_other_side_is_replaced_not_counted_a_failure(
        site, job, tmp_path):
    port = int(site["url"].rsplit(":", 1)[1])
    relay = CuttingRelay(port)
    n = len(_log(site))
    try:
        part = tmp_path / "r.part"
        # no retries at all: a failed request would raise RemoteUnavailable
        with client_for(site, f"https://127.0.0.1:{relay.port}", retries=0) as c:
            assert c.download_result(job["id"], part) == len(job["bytes"])
            assert relay.connections == 1
            relay.drop_all()  # the idle connection kept for the next request dies
            # a complete file: one request confirms it is still this job's result
            assert c.download_result(job["id"], part) == len(job["bytes"])
        assert relay.connections == 2
    finally:
        relay.close()
    assert part.read_bytes() == job["bytes"]
    assert _log(site, at_least=n + 2)[-1]["status"] == 416  # nothing left to send


def test_an_upload_goes_whole_over_the_clients_own_connection(site, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    port = int(site["url"].rsplit(":", 1)[1])
    relay = CuttingRelay(port)
    arr = np.random.default_rng(5).integers(-1000, 2000, (24, 512, 512), dtype=np.int16)
    vol = Volume(arr, (0.7, 0.7, 1.0))
    chain = Chain.from_dict(GAMMA)
    n = len(_log(site))
    try:
        with client_for(site, f"https://127.0.0.1:{relay.port}") as c:
            info = c.info()  # httpx's connection
            assert relay.connections == 1
            job = submit_job(c, chain, {"image": vol}, encoding="raw", info=info)
            # the upload did not reuse httpx's idle connection: it went over http.client's
            assert relay.connections == 2
            res = collect_job(c, job, download_dir=tmp_path / "dl")
    finally:
        relay.close()
    posts = [e for e in _log(site, at_least=n + 2)[n:] if e["method"] == "POST"]
    assert [(e["status"], e["in_bytes"]) for e in posts] == [(201, job.upload_bytes)]
    # every byte arrived in its place: the server's result is the local run's
    local = run_chain(chain, {"image": vol}).values
    assert set(res.values) == {"step1"}
    assert np.array_equal(res.values["step1"].array, local["step1"].array)


def test_an_upload_on_a_kept_connection_that_died_is_sent_again_on_a_new_one(site, tmp_path):
    from medview.remote.wire import encode_bundle

    port = int(site["url"].rsplit(":", 1)[1])
    relay = CuttingRelay(port)
    parts = encode_bundle({"chain": GAMMA}, {"image": Volume(
        np.zeros((4, 64, 64), np.int16), (1.0, 1.0, 1.0))}, metadata={"image": {}})
    try:
        # no retries at all: a failed request would raise RemoteUnavailable
        with client_for(site, f"https://127.0.0.1:{relay.port}", retries=0) as c:
            first = c.submit(parts, idempotency_key="kept-conn-1")
            assert relay.connections == 1
            relay.drop_all()  # the connection kept for the next request dies
            second = c.submit(parts, idempotency_key="kept-conn-2")
            assert relay.connections == 2
            assert c.wait(second.id).state == "succeeded"
    finally:
        relay.close()
    assert first.id != second.id


def test_an_upload_over_the_servers_limit_gets_its_413(site, tmp_path):
    root = site["root"]
    folder = root / "small"
    folder.mkdir(exist_ok=True)
    server = start_server(folder, cert=site["cert"], key=site["cert"].with_name("key.pem"),
                          tokens=root / "tokens.json",
                          env=subprocess_env(root / "server-config", root / "server-data"),
                          extra=("--workers", "1", "--max-upload-mb", "1"))
    try:
        for size in (3 << 19, 48 << 20):  # sent whole before the answer / cut off by it
            with client_for(site, server.url, retries=1, backoff_s=0.01) as c, \
                    pytest.raises(RemoteError, match="too large") as err:
                c.submit([b"\0" * size], idempotency_key=f"big-{size}")
            assert err.value.status == 413
    finally:
        stop(server.proc)
