"""Helpers for the server tests: volumes, job bodies, bounded polling."""

from __future__ import annotations

import time

import numpy as np

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.remote.wire import bundle_bytes, encode_bundle

#: about 2 s on one core: long enough to cancel it or kill its worker while it runs
SLOW_CHAIN = {"steps": [{"step": "smooth.curvature_diffusion",
                         "params": {"iterations": 60, "in_plane_only": True}}] * 3}


def noise_volume(shape=(12, 96, 96), seed=0) -> Volume:
    arr = np.random.default_rng(seed).normal(0, 100, shape).astype(np.float32)
    return Volume(arr, (0.8, 0.8, 2.0), (-40.0, -40.0, 10.0))


def job_body(chain: dict, volume: Volume, encoding: str = "raw") -> bytes:
    meta = {"chain": Chain.from_dict(chain).to_dict(), "result_encoding": encoding}
    return bundle_bytes(encode_bundle(meta, {"image": volume}, encoding=encoding))


def wait_until(predicate, timeout_s: float = 60.0, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (bounded)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def wait_done(client, job_id: str, timeout_s: float = 90.0) -> dict:
    def done():
        st = client.get(f"/api/v1/jobs/{job_id}").json()
        return st if st["state"] not in ("queued", "running") else None

    return wait_until(done, timeout_s, f"job {job_id} to end")
