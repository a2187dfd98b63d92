"""``medview selftest``: check an installation without a screen."""

from __future__ import annotations

from medview.cli._common import EXIT_ERROR, EXIT_OK


def cmd_selftest(args) -> int:
    from medview.selftest import run_selftest

    checks = run_selftest(gui=not args.no_gui, keep=args.keep, verbose=args.verbose)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_ERROR


def add_parser(sub, common) -> None:
    """Add this group's commands to ``sub`` (``common``: the global options)."""
    s = sub.add_parser(
        "selftest", parents=[common], help="check this installation (no screen needed)",
        description="Open every subsystem without a screen: the resources, each compressed "
                    "transfer syntax's decoder, the catalog, the header scanner's worker "
                    "processes, a processing chain, NIfTI and DICOM SEG writing, and the Qt "
                    "stack offscreen. One line per check, OK or FAIL with the reason; exit "
                    "status 1 when any check failed.",
    )
    s.add_argument("--no-gui", action="store_true",
                   help="skip the Qt check (an installation without the window)")
    s.add_argument("--keep", metavar="DIR", help="keep the files the self-test writes in DIR")
    s.add_argument("--verbose", action="store_true", help="tracebacks of failed checks")
    s.set_defaults(func=cmd_selftest)
