"""A result is written step by step: the client downloads the early steps' outputs while the
later steps still compute, resumes across a step's boundary, and a chain that fails half-way
leaves nothing it would take for a result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from server_helpers import noise_volume, wait_done, wait_until

from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.errors import RemoteError
from medview.remote.run import collect_job, submit_job
from medview.remote.wire import WireError, bundle_bytes, decode_bundle, encode_bundle

GAMMA = {"step": "enhance.gamma", "params": {"gamma": 0.7}}
#: about 0.5-1 s each on one core: the later steps still compute while the test looks
SLOW = {"step": "smooth.curvature_diffusion", "params": {"iterations": 60,
                                                         "in_plane_only": True}}


def _client(http) -> RemoteClient:
    return RemoteClient("https://testserver", http.headers["Authorization"].split()[1],
                        http=http, name="inproc")


def _submit(http, chain: dict, volume) -> str:
    meta = {"chain": Chain.from_dict(chain).to_dict(), "result_encoding": "raw",
            "result_stream": True}
    r = http.post("/api/v1/jobs", content=bundle_bytes(encode_bundle(meta, {"image": volume})))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _status(http, job_id: str) -> dict:
    return http.get(f"/api/v1/jobs/{job_id}").json()


def _log(tmp_path) -> list[dict]:
    text = (tmp_path / "state" / "requests.log").read_text()
    return [json.loads(x) for x in text.splitlines()]


def test_a_steps_output_is_downloaded_while_the_later_steps_compute(make_client, tmp_path):
    http = make_client()
    vol = noise_volume((8, 128, 128))
    chain = {"steps": [GAMMA, SLOW, SLOW, SLOW]}
    job_id = _submit(http, chain, vol)
    st = wait_until(lambda: (s := _status(http, job_id))["result_ready"] > 0 and s,
                    what="the first output to be announced")
    assert st["state"] == "running" and not st["streaming"]  # its size is not known yet
    url = f"/api/v1/jobs/{job_id}/result"
    assert http.get(url).status_code == 409  # the whole of it needs its size: ask by range
    r = http.get(url, headers={"Range": "bytes=0-"})
    later = _status(http, job_id)
    assert r.status_code == 206 and r.headers["content-range"] == \
        f"bytes 0-{st['result_ready'] - 1}/*"
    # the first step's voxels, as a local run makes them, came before the chain ended
    assert later["state"] == "running" and later["progress"] < 1.0, later
    first = run_chain(Chain.from_dict({"steps": [GAMMA]}), {"image": vol}).result.array
    assert r.content[64:] == np.ascontiguousarray(first).tobytes()
    # nothing past what is written yet: 416, size unknown
    nothing = http.get(url, headers={"Range": f"bytes={len(r.content)}-",
                                     "If-Range": r.headers["etag"]})
    assert nothing.status_code in (206, 416)  # (206 only if step 2 was done meanwhile)
    assert wait_done(http, job_id)["state"] == "succeeded"
    whole = http.get(url).content
    assert whole[:len(r.content)] == r.content
    done = decode_bundle(whole)
    local = run_chain(Chain.from_dict(chain), {"image": vol})
    assert list(done.values) == ["step1", "step2", "step3", "step4"]
    for name in done.values:
        assert np.array_equal(done.values[name].array, local.values[name].array), name


def test_a_download_resumes_by_range_across_a_steps_boundary(make_client, tmp_path):
    http = make_client()
    vol = noise_volume((8, 128, 128))
    job_id = _submit(http, {"steps": [GAMMA, GAMMA, SLOW, SLOW]}, vol)
    url = f"/api/v1/jobs/{job_id}/result"
    one = 64 + vol.array.size * 4  # the prefix and step 1's float32 output
    st = wait_until(lambda: (s := _status(http, job_id))["result_ready"] > one and s,
                    what="step 2's output to be announced")
    assert st["state"] == "running"
    # a first download stopped in the middle of step 1's output
    cut = one // 2
    head = http.get(url, headers={"Range": f"bytes=0-{cut - 1}"})
    assert head.status_code == 206 and len(head.content) == cut
    part = tmp_path / "dl" / "result.part"
    part.parent.mkdir()
    part.write_bytes(head.content)
    part.with_name(part.name + ".etag").write_text(head.headers["etag"])
    client = _client(http)
    assert client.download_ready(job_id, part, chunk_bytes=64 << 10) is None  # more to come
    resumed = [e for e in _log(tmp_path) if e["path"] == url][-2]  # then a 416: nothing yet
    assert resumed["status"] == 206 and resumed["out_bytes"] >= st["result_ready"] - cut
    assert part.stat().st_size >= st["result_ready"] > one  # over the boundary, in one go
    while (size := client.download_ready(job_id, part)) is None:
        client.wait(job_id, ready_above=part.stat().st_size)
    assert wait_done(http, job_id)["state"] == "succeeded"
    assert size == part.stat().st_size and part.read_bytes() == http.get(url).content


def test_a_chain_failing_after_step_two_leaves_nothing_taken_for_a_result(
        make_client, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    http = make_client()
    bad = tmp_path / "broken.model"
    bad.write_bytes(b"not a model")
    chain = Chain.from_dict({"steps": [GAMMA, GAMMA, SLOW, {
        "step": "segment.classifier_apply", "params": {"model_path": str(bad)}}]})
    client = _client(http)
    job = submit_job(client, chain, {"image": noise_volume((8, 128, 128))}, encoding="raw")
    downloads = tmp_path / "downloads"
    with pytest.raises(RemoteError, match="failed") as err:
        collect_job(client, job, download_dir=downloads)
    assert "model" in str(err.value)
    # the first outputs did reach the client before step 4 failed …
    url = f"/api/v1/jobs/{job.status.id}/result"
    got = [e for e in _log(tmp_path) if e["path"] == url and e["status"] == 206]
    assert sum(e["out_bytes"] for e in got) > 2 * 8 * 128 * 128 * 4
    # … and nothing of them stays, on either side: no download, no result to fetch
    assert list(downloads.iterdir()) == []
    assert http.get(url).status_code == 409
    assert client.status(job.status.id).state == "failed"
    assert list((tmp_path / "state" / "jobs").glob(f"{job.status.id}/result*")) == []


def test_a_header_last_bundle_without_its_footer_is_never_decoded():
    from medview.remote.wire import encode_item, stream_footer, stream_prefix

    vol = noise_volume((2, 16, 16))
    item, parts = encode_item("step1", vol)
    body = stream_prefix() + b"".join(bytes(p) for p in parts)
    whole = body + stream_footer({"main": "step1"}, [item])
    assert np.array_equal(decode_bundle(whole).values["step1"].array, vol.array)
    for cut in (len(body), len(whole) - 1, len(whole) - 13):
        with pytest.raises(WireError):
            decode_bundle(whole[:cut])


def test_the_writer_keeps_the_results_order_and_says_how_far_the_file_will_reach(tmp_path):
    from medview.core.table import Table
    from medview.server.result_writer import ResultWriter

    said: list[tuple] = []
    path = tmp_path / "result.1.part"
    writer = ResultWriter(path, announce=lambda ready, size: said.append((ready, size)),
                          skip={"image"})
    a, b = noise_volume((2, 16, 16), seed=1), noise_volume((2, 16, 16), seed=2)
    table = Table(({"label": 1, "voxels": 3},), "stats", {})
    writer.add("image", a)  # an input: never written back
    writer.add("step1", a)
    writer.add("step2", table)  # no blob: in the header, in its place
    writer.add("step3", b)
    size = writer.finish({"main": "step3"}, {"step1": a, "step2": table, "step3": b})
    blob = a.array.nbytes
    assert said == [(64 + blob, None), (64 + 2 * blob, None), (size, size)]
    assert path.stat().st_size == size
    got = decode_bundle(path.read_bytes())
    assert list(got.values) == ["step1", "step2", "step3"]
    assert got.values["step2"].rows == table.rows
    assert np.array_equal(got.values["step3"].array, b.array)
