"""Endpoints and tokens: https only, tokens in the keyring or a 0600 file, never in remotes.json."""

from __future__ import annotations

import os
import stat
import typing

import pytest

from medview.remote import config


@pytest.fixture
def no_keyring(monkeypatch):
    """The situation of a headless machine: no usable keyring backend."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_without_a_keyring_tokens_go_to_a_private_file(no_keyring, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    config.add_endpoint("cluster", "https://127.0.0.1:8443/", "s3cret-token", ca_bundle=str(ca))
    assert config.token_storage().startswith("file ")
    tokens = config.config_dir() / "remote-tokens.json"
    assert stat.S_IMODE(os.stat(tokens).st_mode) == 0o600
    assert "s3cret-token" not in (config.config_dir() / "remotes.json").read_text()
    assert config.get_token("cluster") == "s3cret-token"
    (ep,) = config.list_endpoints()
    assert (ep.name, ep.url, ep.ca_bundle) == ("cluster", "https://127.0.0.1:8443", str(ca))
    config.remove_endpoint("cluster")
    assert config.list_endpoints() == []
    with pytest.raises(KeyError, match="no token stored"):
        config.get_token("cluster")


def test_a_token_file_readable_by_others_is_refused(no_keyring):
    config.add_endpoint("a", "https://h:1", "t")
    os.chmod(config.config_dir() / "remote-tokens.json", 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        config.get_token("a")


def test_only_https_endpoints_and_real_ca_files(no_keyring, tmp_path):
    with pytest.raises(ValueError, match="https://"):
        config.add_endpoint("a", "http://127.0.0.1:8000", "t")
    with pytest.raises(ValueError, match="no such file"):
        config.add_endpoint("a", "https://127.0.0.1:8000", "t", ca_bundle=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="empty"):
        config.add_endpoint("a", "https://127.0.0.1:8000", " ")
    with pytest.raises(KeyError, match="medview remote add"):
        config.get_endpoint("nowhere")


def test_a_usable_keyring_gets_the_token(monkeypatch):
    """With a keyring backend (a real one from the keyring package, in memory here) the token
    goes there and no token file is written."""
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1
        store: typing.ClassVar[dict] = {}

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def get_password(self, service, username):
            return self.store.get((service, username))

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        config.add_endpoint("k", "https://127.0.0.1:1", "tok")
        assert config.token_storage().startswith("keyring")
        assert MemoryKeyring.store[("medview-remote", "k")] == "tok"
        assert not (config.config_dir() / "remote-tokens.json").exists()
        assert config.get_token("k") == "tok"
        config.remove_endpoint("k")
        assert ("medview-remote", "k") not in MemoryKeyring.store
    finally:
        keyring.set_keyring(previous)
