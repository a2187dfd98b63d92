"""A real process pool shared by the module's apps; apps on temporary state folders.

(Helpers live in ``server_helpers.py``: every conftest imports as ``conftest``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from medview.server.app import ServerSettings, create_app
from medview.server.auth import add_token
from medview.server.executors import PoolExecutor


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
