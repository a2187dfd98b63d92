"""A real process pool shared by the module's apps; apps on temporary state folders."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from medview.core.volume import Volume
from medview.pipeline.chain import Chain
from medview.remote.wire import bundle_bytes, encode_bundle
from medview.server.app import ServerSettings, create_app
from medview.server.auth import add_token
from medview.server.executors import PoolExecutor

#: about 2 s on one core: long enough to cancel it or kill its worker while it runs
SLOW_CHAIN = {"steps": [{"step": "smooth.curvature_diffusion",
                         "params": {"iterations": 60, "in_plane_only": True}}] * 3}


@pytest.fixture(scope="module")
def pool():
    executor = PoolExecutor(1)
    yield executor
    executor.close()


@pytest.fixture
def tokens(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "tokens.json"
    return path, add_token("workstation-1", path)


@pytest.fixture
def make_client(tmp_path, tokens, pool):
    """make_client(**settings) → a started TestClient with the token set; closed at the end."""
    opened = []

    def make(state_dir: Path | None = None, **kw) -> TestClient:
        settings = ServerSettings(state_dir=state_dir or tmp_path / "state",
                                  tokens_path=tokens[0], **kw)
        client = TestClient(create_app(settings, executor=pool))
        client.__enter__()
        client.headers["Authorization"] = f"Bearer {tokens[1]}"
        opened.append(client)
        return client

    yield make
    for c in reversed(opened):
        c.__exit__(None, None, None)


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


def wait_done(client: TestClient, job_id: str, timeout_s: float = 90.0) -> dict:
    def done():
        st = client.get(f"/api/v1/jobs/{job_id}").json()
        return st if st["state"] not in ("queued", "running") else None

    return wait_until(done, timeout_s, f"job {job_id} to end")
