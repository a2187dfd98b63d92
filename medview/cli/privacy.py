"""``medview catalog wipe`` and ``medview audit``: what medview keeps about patients here, and
what it disclosed."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

__all__ = ["add_parser", "format_bytes"]


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_catalog_wipe(args) -> int:
    from medview.wipe import KEPT, plan_wipe, run_wipe

    items = plan_wipe(catalog=args.db, include_audit=args.audit)
    if not items:
        print("nothing to remove: medview keeps no patient data on this account")
        return 0
    print("medview catalog wipe removes:")
    for item in items:
        print(f"  {item.what}: {item.path} ({item.files} file(s), {format_bytes(item.bytes)})")
    print("Not touched: the DICOM folders you imported (medview never deletes them), the "
          "configuration (endpoints, PACS nodes)"
          + ("" if args.audit else f", {KEPT['audit.log']}")
          + "; close the medview window first.")
    if not args.yes:
        if not sys.stdin.isatty():
            print("medview catalog wipe: nothing removed; add --yes to remove the above",
                  file=sys.stderr)
            return 1
        if input("Remove all of the above? Type yes: ").strip().lower() != "yes":
            print("nothing removed")
            return 1
    run_wipe(items)
    files = sum(i.files for i in items)
    print(f"removed {len(items)} item(s): {files} file(s), "
          f"{format_bytes(sum(i.bytes for i in items))}")
    return 0


def cmd_audit(args) -> int:
    from medview.audit import audit_path, read_audit

    entries = read_audit()
    if args.action:
        entries = [e for e in entries if e.action == args.action]
    entries.reverse()  # newest first, as the window shows them
    if args.limit:
        entries = entries[: args.limit]
    if args.json:
        print(json.dumps([asdict(e) for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no disclosures recorded in {audit_path()}")
        return 0
    rows = [("TIME", "USER", "ACTION", "SERIES", "DESTINATION", "PROFILE", "BYTES")]
    rows += [(e.time, e.user, e.action, e.series_uid, e.destination, e.profile or "-",
              format_bytes(e.bytes)) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def add_parser(sub, common) -> None:
    s = sub.add_parser("catalog", parents=[common], help="the catalog: wipe it",
                       description="What medview keeps about patients on this workstation.")
    csub = s.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND", required=True)
    t = csub.add_parser(
        "wipe", parents=[common],
        help="remove the catalog, thumbnails, cache, recovery files, PACS copies and logs",
        description="Remove everything medview keeps about patients on this account: the "
                    "catalog, the thumbnail cache, recovery files, the PACS store (copies "
                    "medview retrieved or received), offload mappings and downloads, logs, "
                    "and the last folder opened. The DICOM folders you imported are NOT "
                    "touched. Lists what it removes, then asks (or --yes).")
    t.add_argument("--yes", action="store_true", help="remove without asking")
    t.add_argument("--audit", action="store_true",
                   help="also remove the disclosure audit log (kept by default: it is the "
                        "record of what left this workstation)")
    t.set_defaults(func=cmd_catalog_wipe)
    s = sub.add_parser(
        "audit", parents=[common], help="the disclosure audit log, newest first",
        description="Every disclosure (offload, PACS send, share, backup): time, OS user, "
                    "action, series, destination, de-identification profile, bytes.")
    s.add_argument("--json", action="store_true", help="as JSON")
    s.add_argument("--action", help="only this action (offload, send, share, backup)")
    s.add_argument("--limit", type=int, default=0, metavar="N", help="the newest N only")
    s.set_defaults(func=cmd_audit)
