"""The client library against the app in-process: a chain whose parameter names a file."""

from __future__ import annotations

import numpy as np
from server_helpers import noise_volume

from medview.core.classifier import classify_pixels
from medview.core.labelmap import LabelMap
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
