"""The client library against the app in-process: a chain whose parameter names a file."""

from __future__ import annotations

import numpy as np
from server_helpers import noise_volume

from medview.core.labelmap import LabelMap
from medview.core.segmentation.classifier import classify_pixels
from medview.pipeline.chain import Chain
from medview.pipeline.runner import run_chain
from medview.remote.client import RemoteClient
from medview.remote.run import run_chain_remote


def test_a_saved_model_travels_with_the_job(make_client, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    vol = noise_volume((4, 32, 32))
    arr = vol.array.copy()
    arr[:, :, 16:] += 400.0  # two tissues: left and right half
    vol = vol.with_array(arr)
    scribbles = np.zeros(vol.shape, np.uint8)
    scribbles[:, 4:28, 2:10], scribbles[:, 4:28, 22:30] = 1, 2
    model = classify_pixels(vol, LabelMap.like(vol, scribbles), n_trees=4, max_depth=4)["model"]
    model_path = tmp_path / "two.model"
    model.save(model_path)
    chain = Chain.from_dict({"steps": [{"step": "segment.classifier_apply",
                                        "params": {"model_path": str(model_path)}}]})
    http = make_client()
    token = http.headers["Authorization"].split()[1]
    client = RemoteClient("https://testserver", token, http=http, name="inproc")
    remote = run_chain_remote(chain, {"image": vol}, client=client)
    local = run_chain(chain, {"image": vol})
    assert np.array_equal(remote.result.array, local.result.array)
    assert set(np.unique(remote.result.array)) == {1, 2}
    # the server never saw the local path
    log = (tmp_path / "state" / "requests.log").read_text()
    assert str(tmp_path) not in log


def test_what_the_server_stores_identifies_no_one(make_client, tmp_path, monkeypatch):
    """A slow job keeps the single pool process busy, so the patient's job waits in the store
    with its upload: everything the server holds is inspected while it is there."""
    from server_helpers import SLOW_CHAIN, job_body, wait_done, wait_until

    import medview
    from medview.remote.run import collect_job, submit_job
    from phantoms import write_ct_series

    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    write_ct_series(tmp_path / "ct", shape=(4, 32, 32), patient_name="SMITH^ANNA",
                    patient_id="ID-20391", seed=9)
    ct = medview.load(tmp_path / "ct")
    secrets = [str(ct.metadata[k]) for k in ("PatientName", "PatientID", "StudyInstanceUID",
                                             "SeriesInstanceUID", "FrameOfReferenceUID",
                                             "StudyDate")]
    http = make_client()
    blocker = http.post("/api/v1/jobs", content=job_body(SLOW_CHAIN, noise_volume())).json()
    wait_until(lambda: http.get(f"/api/v1/jobs/{blocker['id']}").json()["state"] == "running",
               what="the slow job to start")
    client = RemoteClient("https://testserver", http.headers["Authorization"].split()[1],
                          http=http, name="inproc")
    chain = Chain.from_dict({"steps": [{"step": "segment.threshold",
                                        "params": {"low": -500.0, "high": 3000.0}}]})
    job = submit_job(client, chain, {"image": ct})
    stored = tmp_path / "state" / "jobs" / job.status.id / "input.bin"
    assert client.status(job.status.id).state == "queued" and stored.exists()
    held = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    for p in held:
        data = p.read_bytes()
        for s in secrets:
            assert s.encode() not in data, (p.name, s)
    result = collect_job(client, job)
    for k in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert result.result.metadata[k] == ct.metadata[k]  # re-attached locally
    wait_done(http, blocker["id"])
