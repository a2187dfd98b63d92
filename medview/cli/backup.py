"""``medview backup NODE [--study UID…|--all] [--results]``: verified backup to a DICOMweb
archive (:mod:`medview.pacs.backup`).

Exit status: 0 every selected instance is in the archive and verified; 3 some failed (each
listed with its reason; run the same command again to send and verify only the rest); 1 an
error (nothing done: unknown node or UID, the archive unreachable or refusing).
"""

from __future__ import annotations

import sys

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def cmd_backup(args) -> int:
    import json

    from medview.cli._common import terminal_progress
    from medview.dicom.catalog.db import Catalog
    from medview.pacs.backup import backup
    from medview.pacs.nodes import get_node

    if not (args.study or args.all or args.results):
        raise ValueError("say what to back up: --study UID (repeat it), --all, or --results")
    node = get_node(args.name)
    with (Catalog(args.db) if args.db else Catalog()) as catalog, \
            terminal_progress(f"backing up to {node.name}") as progress:
        report = backup(node, catalog, args.study or (), all_studies=args.all,
                        results=args.results, verify_all=args.verify_all, batch=args.batch,
                        progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        print(report.summary())
    for f in report.failed[:args.max_errors]:
        print(f"  {'not stored' if f.stage != 'verify' else 'not verified'}: {f.sop_uid} "
              f"({f.path}): {f.reason}", file=sys.stderr)
    if len(report.failed) > args.max_errors:
        print(f"  ... and {len(report.failed) - args.max_errors} more", file=sys.stderr)
    if report.unverified:
        print(f"  {len(report.unverified)} instance(s) in the archive not verified yet",
              file=sys.stderr)
    return EXIT_OK if report.complete else EXIT_PARTIAL


def add_parser(sub, common) -> None:
    """The ``backup`` subcommand on ``sub`` (argparse subparsers)."""
    s = sub.add_parser(
        "backup", parents=[common], help="verified backup of studies to a DICOMweb archive",
        description="Send catalog studies (and with --results medview's SEGs, derived series "
                    "and Secondary Captures) to the DICOMweb node NAME by STOW-RS. Only what "
                    "the archive lacks is sent (it is asked by SOP Instance UID); what was "
                    "sent is read back by WADO-RS and compared (decoded pixel values and the "
                    "identifying attributes). After an interruption the same command goes on "
                    "where it stopped, sending nothing twice. Exit status 0 all verified, 3 "
                    "some failed (listed), 1 error.")
    s.add_argument("name", help="the DICOMweb node (medview pacs add NAME URL)")
    s.add_argument("--study", action="append", metavar="UID",
                   help="a study (or series) Instance UID of the catalog; repeat it")
    s.add_argument("--all", action="store_true", help="every study in the catalog")
    s.add_argument("--results", action="store_true",
                   help="include medview's results (alone: every result in the catalog)")
    s.add_argument("--verify-all", action="store_true",
                   help="read back everything, also what an earlier run verified")
    s.add_argument("--batch", type=int, default=100, metavar="N",
                   help="instances per STOW-RS request (default 100, at most 32 MiB)")
    s.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    s.set_defaults(func=cmd_backup)
