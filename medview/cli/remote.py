"""``medview remote``: offload endpoints (add, list, remove, check)."""

from __future__ import annotations

import sys
from pathlib import Path

from medview.cli._common import EXIT_OK


def _read_token(args) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import getpass

    return getpass.getpass(f"token for {args.name}: ").strip()


def cmd_remote(args) -> int:
    from medview.remote import config

    if args.remote_command == "add":
        ep = config.add_endpoint(args.name, args.url, _read_token(args), ca_bundle=args.ca_bundle)
        print(f"endpoint {ep.name}: {ep.url}" + (f" (CA {ep.ca_bundle})" if ep.ca_bundle else "")
              + f"; token in {config.token_storage()}")
    elif args.remote_command == "remove":
        config.remove_endpoint(args.name)
        print(f"endpoint {args.name} removed (and its token)")
    elif args.remote_command == "check":
        from medview.remote.client import RemoteClient

        with RemoteClient.for_endpoint(args.name, retries=1) as client:
            info = client.info()
        print(f"{args.name}: medview {info.version}, {info.executor}, encodings "
              f"{', '.join(info.encodings)}, uploads up to {info.max_upload_bytes / 2**20:.0f} "
              f"MiB, results kept {info.retention_seconds / 3600:g} h")
    else:
        endpoints = config.list_endpoints()
        if not endpoints:
            print("no endpoints (add one with 'medview remote add NAME https://HOST:PORT')")
        for ep in endpoints:
            print(f"{ep.name}\t{ep.url}" + (f"\tCA {ep.ca_bundle}" if ep.ca_bundle else ""))
    return EXIT_OK


def add_parser(sub, common) -> None:
    """Add this group's commands to ``sub`` (``common``: the global options)."""
    s = sub.add_parser("remote", parents=[common], help="offload endpoints: add, list, remove")
    rsub = s.add_subparsers(dest="remote_command", metavar="SUBCOMMAND")
    s.set_defaults(func=cmd_remote, remote_command="list")
    t = rsub.add_parser("add", help="add or replace an endpoint; reads its token from stdin")
    t.add_argument("name")
    t.add_argument("url", help="https://HOST:PORT")
    t.add_argument("--ca-bundle", metavar="FILE",
                   help="CA certificate(s) to trust for this endpoint (e.g. its self-signed "
                        "cert.pem); TLS verification stays on")
    t.add_argument("--token-file", metavar="FILE",
                   help="read the token from FILE (default: stdin, or a prompt)")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("list", help="the configured endpoints")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("remove", help="forget an endpoint and its token")
    t.add_argument("name")
    t.set_defaults(func=cmd_remote)
    t = rsub.add_parser("check", help="reach an endpoint with its token and describe it")
    t.add_argument("name")
    t.set_defaults(func=cmd_remote)
