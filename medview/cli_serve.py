"""``medview serve add-token | list-tokens | revoke-token``: the offload server's tokens.

None of them prints a stored hash; ``add-token`` prints the token itself once, on stdout (the
message about it goes to stderr, so ``medview serve add-token ws > token.txt`` keeps only the
token).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

__all__ = ["add_token_parsers", "check_tokens_at_start"]


def _path(args) -> Path:
    from medview.server.auth import default_tokens_path

    return Path(args.tokens) if args.tokens else default_tokens_path()


def _when(t: float | None, never: str = "never") -> str:
    if t is None:
        return never
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def cmd_add_token(args) -> int:
    from medview.server.auth import DEFAULT_SCOPES, add_token, read_tokens

    path = _path(args)
    token = add_token(args.name, path, scopes=args.scope or DEFAULT_SCOPES,
                      expires=args.expires or "")
    record = next(r for r in read_tokens(path) if r.name == args.name)
    print(token)
    print(f"token {args.name!r} added to {path}: scopes {', '.join(record.scopes)}, expires "
          f"{_when(record.expires)} (only its hash is stored; this is the only time it is "
          "shown)", file=sys.stderr)
    return 0


def cmd_list_tokens(args) -> int:
    from medview.server.auth import read_tokens

    path = _path(args)
    records = read_tokens(path)
    if args.json:
        print(json.dumps([r.public() for r in records], indent=2))
        return 0
    if not records:
        print(f"no tokens in {path} (add one with 'medview serve add-token NAME')")
        return 0
    rows = [("NAME", "SCOPES", "CREATED", "EXPIRES", "STATE")]
    for r in records:
        state = r.state()
        if state == "revoked":
            state = f"revoked {_when(r.revoked)}"
        rows.append((r.name, ",".join(r.scopes), _when(r.created),
                     _when(r.expires, "never"), state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    legacy = [r.name for r in records if r.legacy]
    if legacy:
        print(f"\n{len(legacy)} token(s) from before expiry and scopes ({', '.join(legacy)}) "
              "never expire and may submit and read their own jobs; replace them: "
              "'medview serve add-token NEW-NAME --expires 90d', then "
              "'medview serve revoke-token OLD-NAME'", file=sys.stderr)
    return 0


def cmd_revoke_token(args) -> int:
    from medview.server.auth import revoke_token

    path = _path(args)
    record = revoke_token(args.name, path)
    print(f"token {record.name!r} revoked {_when(record.revoked)} in {path}; a running server "
          "refuses it from its next request")
    return 0


def check_tokens_at_start(path: Path) -> None:
    """Read the tokens file before serving: a broken file is an error now, not a 401 for
    everyone later; say when no token is usable or some never expire."""
    from medview.server.auth import read_tokens

    records = read_tokens(path)
    active = [r for r in records if r.state() == "active"]
    if not active:
        print(f"medview serve: no usable token in {path}: every request will get 401 "
              "(add one with 'medview serve add-token NAME')", file=sys.stderr)
    legacy = [r.name for r in active if r.legacy or r.expires is None]
    if legacy:
        print(f"medview serve: token(s) {', '.join(legacy)} never expire "
              "('medview serve list-tokens' says how to replace them)", file=sys.stderr)


def add_token_parsers(serve_sub) -> None:
    """The token subcommands of ``medview serve``."""
    from medview.server.auth import SCOPES

    tokens_help = "tokens file (default server-tokens.json in the config folder)"
    t = serve_sub.add_parser(
        "add-token", help="make a token, print it once, store its hash",
        description="Make a random token, print it once on stdout and store only its SHA-256. "
                    "Scopes: submit (submit jobs), read (status, cancel and download of the "
                    "jobs this token submitted), admin (every job's status, cancel any job, "
                    "GET /api/v1/admin/status). Default: submit and read, expiring in 90 days.")
    t.add_argument("name", help="who uses it (e.g. the workstation's name)")
    t.add_argument("--scope", action="append", choices=SCOPES,
                   help="what the token may do (repeat; default: submit and read)")
    t.add_argument("--expires", metavar="WHEN",
                   help="a duration (90d, 12h, 2w), a date (2027-03-31) or 'never' "
                        "(default 90d)")
    t.add_argument("--tokens", "--token-file", dest="tokens", metavar="FILE", help=tokens_help)
    t.set_defaults(func=cmd_add_token)
    t = serve_sub.add_parser(
        "list-tokens", help="the tokens: name, scopes, expiry, state (never the secret)")
    t.add_argument("--json", action="store_true", help="as JSON")
    t.add_argument("--tokens", "--token-file", dest="tokens", metavar="FILE", help=tokens_help)
    t.set_defaults(func=cmd_list_tokens)
    t = serve_sub.add_parser(
        "revoke-token", help="revoke a token at once (a running server refuses it)")
    t.add_argument("name")
    t.add_argument("--tokens", "--token-file", dest="tokens", metavar="FILE", help=tokens_help)
    t.set_defaults(func=cmd_revoke_token)
