"""`medview remote` and `medview run --remote` when things go wrong: clear messages, no hang."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from phantoms import write_ct_series


def medview(*args, env, stdin=None):
    return subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, MEDVIEW_CONFIG_DIR=str(tmp_path / "cfg"),
                MEDVIEW_DATA_DIR=str(tmp_path / "data"),
                PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_an_unreachable_endpoint_ends_in_a_clear_message_or_runs_locally(tmp_path, env):
    ct = tmp_path / "ct"
    write_ct_series(ct, shape=(3, 16, 16), seed=2)
    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian"}]}))
    url = f"https://127.0.0.1:{_closed_port()}"
    r = medview("remote", "add", "down", url, env=env, stdin="tok\n")
    assert r.returncode == 0, r.stderr
    r = medview("run", chain, ct, "-o", tmp_path / "a.nii.gz", "--remote", "down",
                "--retries", "1", env=env)
    assert r.returncode == 1
    assert "did not answer" in r.stderr and "2 attempts" in r.stderr
    assert "without --remote" in r.stderr and not (tmp_path / "a.nii.gz").exists()
    r = medview("run", chain, ct, "-o", tmp_path / "b.nii.gz", "--remote", "down",
                "--retries", "0", "--local-fallback", env=env)
    assert r.returncode == 0, r.stderr
    assert "running locally instead" in r.stderr and (tmp_path / "b.nii.gz").exists()


def test_remote_commands_explain_mistakes(tmp_path, env):
    r = medview("run", tmp_path / "x.json", "in", "-o", "out", "--remote", "nowhere", env=env)
    assert r.returncode == 1  # the chain file is checked first
    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian"}]}))
    ct = tmp_path / "ct"
    write_ct_series(ct, shape=(2, 8, 8), seed=1)
    r = medview("run", chain, ct, "-o", tmp_path / "o.nii.gz", "--remote", "nowhere", env=env)
    assert r.returncode == 1 and "no endpoint named 'nowhere'" in r.stderr
    assert "medview remote add" in r.stderr
    r = medview("remote", "add", "plain", "http://127.0.0.1:1", env=env, stdin="t\n")
    assert r.returncode == 1 and "https://" in r.stderr
    assert "no endpoints" in medview("remote", "list", env=env).stdout
    r = medview("serve", "--tokens", tmp_path / "t.json", env=env)
    assert r.returncode == 1 and "--cert" in r.stderr
    r = medview("serve", "add-token", "ws", "--tokens", tmp_path / "t.json", env=env)
    token = r.stdout.strip()
    assert r.returncode == 0 and len(token) >= 40
    stored = (tmp_path / "t.json").read_text()
    assert token not in stored and json.loads(stored)["tokens"][0]["name"] == "ws"
    assert oct(os.stat(tmp_path / "t.json").st_mode & 0o777) == "0o600"


def test_batch_runs_a_one_input_chain_on_each_input(tmp_path, env):
    from medview.formats.volume_io import read_volume

    a, b = tmp_path / "a", tmp_path / "b"
    write_ct_series(a, shape=(3, 16, 16), seed=3)
    write_ct_series(b, shape=(3, 16, 16), seed=4)
    chain = tmp_path / "c.json"
    chain.write_text(json.dumps({"steps": [{"step": "smooth.gaussian"}]}))
    r = medview("run", chain, a, b, "-o", tmp_path / "out", "--batch", env=env)
    assert r.returncode == 0, r.stderr
    one = read_volume(tmp_path / "out" / "a" / "step1.nii.gz")
    two = read_volume(tmp_path / "out" / "b" / "step1.nii.gz")
    assert one.shape == two.shape and not (one.array == two.array).all()
    r = medview("run", chain, a, b, "-o", tmp_path / "out", "--batch", env=env)
    assert r.returncode == 1 and "would overwrite" in r.stderr
    two_inputs = tmp_path / "two.json"
    two_inputs.write_text(json.dumps({"inputs": {"fixed": "volume", "moving": "volume"},
                                      "steps": [{"step": "fuse.average",
                                                 "inputs": {"moving": "moving"}}]}))
    r = medview("run", two_inputs, a, b, "-o", tmp_path / "o2", "--batch", env=env)
    assert r.returncode == 1 and "one input" in r.stderr
