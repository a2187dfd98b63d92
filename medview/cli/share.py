"""``medview share``: a de-identified copy of studies as a folder, a ZIP, or sent to a node.

Exit status: 0 done, 1 error (nothing written or sent), 3 partly done (some instances not
stored on the node; they are listed) — as ``medview pacs``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


def _destination(to: str):
    """``("path", Path)`` for a new folder or ZIP, ``("node", Node)`` for a configured node."""
    path = Path(to)
    if path.suffix.lower() == ".zip" or path.exists() or "/" in to or "\\" in to:
        return "path", path
    from medview.pacs.nodes import get_node

    try:
        return "node", get_node(to)
    except KeyError:
        return "path", path   # a new folder of that name


def cmd_share(args) -> int:
    from medview.cli._common import open_catalog, terminal_progress
    from medview.deid.profile import Options
    from medview.deid.share import share

    options = Options(retain_dates_modified=args.retain_dates_modified,
                      retain_patient_characteristics=args.retain_patient_characteristics,
                      clean_descriptors=args.clean_descriptors,
                      retain_device_identity=args.retain_device_identity,
                      retain_institution_identity=args.retain_institution_identity)
    kind, target = _destination(args.to)
    with contextlib.ExitStack() as stack:
        catalog = None
        if any(not Path(i).exists() for i in args.items):   # UIDs: look them up
            catalog = stack.enter_context(open_catalog(args))
        report = _run(args, options, kind, target, catalog, terminal_progress, share)
    return _finish(args, report, kind, target)


def _run(args, options, kind, target, catalog, terminal_progress, share):
    with terminal_progress("share") as progress:
        if kind == "path":
            report = share(args.items, project=args.project, options=options,
                           destination=target, mask_burned_in=args.mask_burned_in,
                           catalog=catalog, progress=progress)
        else:
            from medview.pacs.send import send

            def sender(files):
                return send(target, files, audit=False, progress=progress)  # share's own line

            report = share(args.items, project=args.project, options=options, sender=sender,
                           destination_label=target.describe(),
                           mask_burned_in=args.mask_burned_in, catalog=catalog,
                           progress=progress)
    return report


def _finish(args, report, kind, target) -> int:
    for d in report.not_shared[: args.max_errors]:
        print(f"not shared: {d.get('local_path', d['index'])}: {d['reason']}", file=sys.stderr)
    print(report.text(), end="")
    if kind == "path":
        inside = (f"{target} (SHARE-REPORT.txt inside)" if target.suffix.lower() == ".zip"
                  else str(target / "SHARE-REPORT.txt"))
        print(f"report: {inside}")
    sent = report.sent
    if sent is not None:
        print(sent.summary())
        for path, reason in sent.failed[: args.max_errors]:
            print(f"not stored: {path.name}: {reason}", file=sys.stderr)
        if sent.failed:
            return EXIT_PARTIAL if sent.sent else EXIT_ERROR
    return EXIT_OK


def add_parser(sub, common) -> None:
    """The ``share`` subcommand on ``sub`` (argparse subparsers)."""
    s = sub.add_parser(
        "share", parents=[common], help="a de-identified copy of studies: folder, ZIP or node",
        description="De-identify STUDY_OR_FOLDER... (catalog study or series UIDs, folders, "
                    "files) by DICOM PS3.15 Annex E (Basic Application Level Confidentiality "
                    "Profile, Table E.1-1) with the options chosen, and write the copy to a new "
                    "FOLDER (with a DICOMDIR), a new FILE.zip, or send it to a configured PACS "
                    "NODE. UIDs, the patient pseudonym and date offsets come from the "
                    "project's secret key: the same patient gets the same pseudonym within a "
                    "project, another one in another project. The sources are never modified. "
                    "A share report (SHARE-REPORT.json/.txt) says what was removed, replaced, "
                    "kept and what needs a human look. Exit status 0 done, 1 error (nothing "
                    "written), 3 partly sent.")
    s.add_argument("items", nargs="+", metavar="STUDY_OR_FOLDER")
    s.add_argument("--profile", choices=["basic"], default="basic",
                   help="the PS3.15 profile (basic; add options below)")
    s.add_argument("--retain-dates-modified", action="store_true",
                   help="Retain Longitudinal Temporal Information with Modified Dates: shift "
                        "dates back by a per-patient offset instead of removing them")
    s.add_argument("--retain-patient-characteristics", action="store_true",
                   help="keep sex, age, size, weight and the like")
    s.add_argument("--clean-descriptors", action="store_true",
                   help="keep descriptions and comments, cleaned of the identifying values "
                        "found in each instance (read them: the report lists them)")
    s.add_argument("--retain-device-identity", action="store_true",
                   help="keep device serial numbers, station names and the like")
    s.add_argument("--retain-institution-identity", action="store_true",
                   help="keep institution names and addresses")
    s.add_argument("--project", required=True,
                   help="project name: its key (made on first use, kept in the OS keyring) "
                        "makes pseudonyms, UIDs and date offsets")
    s.add_argument("--mask-burned-in", action="store_true",
                   help="find text in the pixels of flagged images (tesseract) and mask it")
    s.add_argument("--to", required=True, metavar="FOLDER|FILE.zip|NODE",
                   help="a new folder, a new .zip, or a node from 'medview pacs list'")
    s.set_defaults(func=cmd_share)
