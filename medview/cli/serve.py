"""``medview serve``: the offload server, its certificate (``make-cert``) and its tokens.

``add-token``, ``list-tokens`` and ``revoke-token`` never print a stored hash; ``add-token``
prints the token itself once, on stdout (the message about it goes to stderr, so
``medview serve add-token ws > token.txt`` keeps only the token).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from medview.cli._common import EXIT_OK

__all__ = ["add_parser", "add_token_parsers", "check_tokens_at_start", "cmd_serve",
           "cmd_serve_make_cert"]


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


def cmd_serve(args) -> int:
    from medview.server.app import ServerSettings
    from medview.server.auth import add_token, default_tokens_path
    from medview.server.serve import default_state_dir, serve

    tokens = Path(args.tokens) if args.tokens else default_tokens_path()
    if args.add_token:
        print(add_token(args.add_token, tokens))
    if not args.cert or not args.key:
        raise ValueError("give --cert FILE and --key FILE (TLS is required; "
                         "'medview serve make-cert DIR' makes a self-signed pair)")
    if args.workers < 1 or args.max_upload_mb <= 0 or args.retention_hours <= 0 or (
            args.max_decoded_mb is not None and args.max_decoded_mb <= 0):
        raise ValueError("--workers, --max-upload-mb, --max-decoded-mb and --retention-hours "
                         "must be positive")
    settings = ServerSettings(
        state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
        tokens_path=tokens, max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_decoded_bytes=None if args.max_decoded_mb is None
        else int(args.max_decoded_mb * 2**20),
        public_docs=args.public_docs,
        retention_s=args.retention_hours * 3600.0, workers=args.workers, dask=args.dask,
        dask_fetch=args.dask_fetch_results)

    check_tokens_at_start(tokens)
    serve(settings, host=args.host, port=args.port, cert=args.cert, key=args.key)
    return EXIT_OK


def cmd_serve_make_cert(args) -> int:
    from medview.server.tls import make_self_signed

    cert, key = make_self_signed(args.folder, hosts=tuple(args.host or ("127.0.0.1",
                                                                         "localhost")))
    print(f"wrote {cert} and {key} (self-signed; clients trust it with --ca-bundle {cert})")
    return EXIT_OK


def add_parser(sub, common) -> None:
    """Add ``medview serve`` and its token subcommands to ``sub``."""
    s = sub.add_parser(
        "serve", parents=[common], help="the offload server (HTTPS, tokens, jobs)",
        description="Serve processing jobs over HTTPS to medview clients holding a token. "
                    "Jobs run in a local process pool, or on a Dask cluster with --dask. "
                    "'medview serve make-cert DIR' makes a self-signed TLS pair, "
                    "'medview serve add-token NAME' a token ('list-tokens', "
                    "'revoke-token NAME').")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8443)
    s.add_argument("--cert", help="TLS certificate (PEM)")
    s.add_argument("--key", help="TLS private key (PEM)")
    s.add_argument("--tokens", "--token-file", dest="tokens", metavar="FILE",
                   help="tokens file (hashes; default server-tokens.json in the config folder)")
    s.add_argument("--add-token", metavar="NAME",
                   help="make a token NAME, print it once, then serve")
    s.add_argument("--state-dir", metavar="DIR",
                   help="job store folder (default: the user data folder's 'server')")
    s.add_argument("--dask", metavar="ADDR", help="run jobs on the Dask scheduler at ADDR "
                                                 "(tcp://HOST:PORT) instead of a local pool")
    s.add_argument("--dask-fetch-results", action="store_true",
                   help="fetch each result from its Dask worker in chunks even when the worker "
                        "can write it into the job folder (workers on other machines without "
                        "a shared --state-dir are always fetched from)")
    s.add_argument("--workers", type=int, default=1, help="local pool processes (default 1)")
    s.add_argument("--max-upload-mb", type=float, default=2048.0,
                   help="largest job upload in MiB, larger ones get 413 (default 2048)")
    s.add_argument("--max-decoded-mb", type=float, default=None,
                   help="most a job's arrays may decode to in MiB (shape × dtype, checked "
                        "before decompression), more gets 413 (default: --max-upload-mb)")
    s.add_argument("--public-docs", action="store_true",
                   help="serve /docs, /redoc and /openapi.json without a token")
    s.add_argument("--retention-hours", type=float, default=24.0,
                   help="results not downloaded are deleted after this (default 24)")
    s.set_defaults(func=cmd_serve)
    serve_sub = s.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")
    t = serve_sub.add_parser("make-cert", help="write a self-signed cert.pem + key.pem into DIR")
    t.add_argument("folder", metavar="DIR")
    t.add_argument("--host", action="append",
                   help="name or IP the certificate is for (repeat; default 127.0.0.1 and "
                        "localhost)")
    t.set_defaults(func=cmd_serve_make_cert)
    add_token_parsers(serve_sub)
