"""The tokens file: expiry parsing, scopes, revocation, the old format, broken files."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime

import pytest

from medview.server.auth import (
    DEFAULT_EXPIRY_S,
    TokenBook,
    add_token,
    parse_expiry,
    read_tokens,
    revoke_token,
)


def test_parse_expiry_durations_dates_and_never():
    now = 1_800_000_000.0
    assert parse_expiry("90d", now=now) == now + 90 * 86400
    assert parse_expiry("12h", now=now) == now + 12 * 3600
    assert parse_expiry("2w", now=now) == now + 14 * 86400
    assert parse_expiry("0.5m", now=now) == now + 30
    assert parse_expiry("", now=now) == now + DEFAULT_EXPIRY_S
    assert parse_expiry("never", now=now) is None
    assert parse_expiry("2030-01-02", now=now) == datetime(2030, 1, 2).timestamp()
    assert parse_expiry("2030-01-02T10:00+00:00", now=now) == 1893578400.0
    with pytest.raises(ValueError, match="in the past"):
        parse_expiry("2020-01-01", now=now)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_expiry("soon", now=now)


def test_scopes_expiry_and_revocation_decide_the_answer(tmp_path):
    path = tmp_path / "t.json"
    a = add_token("a", path)
    admin = add_token("boss", path, scopes=["admin"], expires=time.time() + 100)
    book = TokenBook.load(path)
    who, name, why = book.check(a)
    assert who.scopes == ("submit", "read") and name == "a" and why == ""
    assert book.check(admin)[0].can("admin") and not book.check(admin)[0].can("read")
    assert book.check(admin, now=time.time() + 200)[0] is None
    assert "expired" in book.check(admin, now=time.time() + 200)[2]
    assert book.check("nope") == (None, "-", "unknown token")
    assert book.check(None) == (None, "-", "no token")
    revoke_token("a", path)
    who, name, why = TokenBook.load(path).check(a)
    assert who is None and name == "a" and "revoked" in why
    with pytest.raises(ValueError, match="revoked token named 'a' exists"):
        add_token("a", path)
    with pytest.raises(KeyError, match="tokens: a, boss"):
        revoke_token("zed", path)
    with pytest.raises(ValueError, match="expected one or more of submit, read, admin"):
        add_token("c", path, scopes=["root"])
    assert a not in path.read_text() and admin not in path.read_text()


def test_an_old_file_loads_with_its_old_powers_and_is_upgraded_on_write(tmp_path):
    path = tmp_path / "t.json"
    digest = hashlib.sha256(b"old").hexdigest()
    path.write_text(json.dumps({"tokens": [{"name": "old", "sha256": digest,
                                            "created": 5.0}]}))
    (rec,) = read_tokens(path)
    assert rec.legacy and rec.scopes == ("submit", "read") and rec.expires is None
    assert TokenBook.load(path).who("old") == "old"
    add_token("new", path)
    data = json.loads(path.read_text())
    assert data["version"] == 2
    assert data["tokens"][0] == {"name": "old", "sha256": digest, "created": 5.0,
                                 "expires": None, "scopes": ["submit", "read"],
                                 "revoked": None}


@pytest.mark.parametrize("content, message", [
    ("{", "not a medview tokens file"),
    ('{"tokens": [{"name": "x", "sha256": "abc"}]}', "no valid sha256"),
    ('{"version": 2, "tokens": [{"name": "x", "sha256": "' + "0" * 64 + '", "scopes": '
     '["everything"]}]}', "scopes"),
    ('{"version": 3, "tokens": []}', "newer than this medview"),
    ('{"version": 2, "tokens": [{"name": "x", "sha256": "' + "0" * 64 + '", "scopes": '
     '["read"], "expires": "tomorrow"}]}', "expires must be a number"),
])
def test_a_broken_file_is_an_error_naming_it(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_tokens(path)
    assert str(path) in str(err.value)


def test_the_server_refuses_every_token_while_the_file_is_broken(tmp_path):
    from medview.server.access import TokenFile

    path = tmp_path / "t.json"
    token = add_token("a", path)
    tokens = TokenFile(path)
    assert tokens.book().who(token) == "a"
    path.write_text("{ half written")
    assert tokens.book().who(token) is None  # fails closed
