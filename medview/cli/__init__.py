"""The ``medview`` command.

``medview`` alone opens the workstation window; the subcommands work without a screen::

    medview index DIR...                 import folders / DICOMDIRs into the catalog
    medview series PATH [--json]         list the series in a folder, file, DICOMDIR or UID
    medview convert INPUT OUTPUT         DICOM series → NIfTI / NRRD / MHA
    medview steps [--json]               the processing steps and their parameters
    medview run CHAIN INPUT... -o OUT    run a processing chain (--dicom-out FOLDER: DICOM too;
                                         --remote NAME: on an offload endpoint;
                                         --send NODE: the DICOM to a PACS)
    medview export INPUT -o OUT --source DICOM
                                         a label map / volume file → DICOM SEG / series / SC
    medview serve --cert C --key K       the offload server (make-cert, add-token,
                                         list-tokens, revoke-token)
    medview remote add|list|remove       offload endpoints
    medview pacs add|list|remove|echo|find|get|send|listen
                                         PACS nodes, query, retrieve, send, storage SCP
    medview catalog wipe [--yes]         remove what medview keeps about patients here
    medview audit [--json]               the disclosure audit log, newest first
    medview share STUDY… --project P --to FOLDER|ZIP|NODE
                                         a de-identified copy (PS3.15 Annex E)
    medview backup NODE --study UID|--all [--results]
                                         verified backup to a DICOMweb archive
    medview selftest                     check an installation, one line per subsystem
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

from medview import __version__
from medview.cli._common import EXIT_ERROR


def _global_options(*, defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. The subcommands' copy
    has no defaults (SUPPRESS): argparse lets a subparser's default overwrite what was given
    before the subcommand, which made ``medview --db X index DIR`` ignore ``--db``."""
    def default(value):
        return value if defaults else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=default(os.environ.get("MEDVIEW_DB")),
                        help="catalog file (default: $MEDVIEW_DB or the user data folder)")
    common.add_argument("--max-errors", type=int, default=default(20), metavar="N",
                        help="unreadable files to list (default 20)")
    return common


#: every command and the module (medview.cli.NAME) that adds it: a command line builds only
#: the parsers of the commands it names (importing every command module and building every
#: parser cost ``medview index`` a good part of its start-up); tests/cli check this table
#: against the parsers the modules add
COMMANDS = {
    "index": "index", "series": "index", "convert": "index",
    "steps": "run", "run": "run",
    "serve": "serve",
    "remote": "remote",
    "pacs": "pacs",
    "catalog": "privacy", "audit": "privacy",
    "share": "share",
    "backup": "backup",
    "export": "export",
    "selftest": "selftest",
}
#: the command groups in the order of --help
_GROUPS = ("index", "run", "serve", "remote", "pacs", "privacy", "share", "backup", "export",
           "selftest")


def build_parser(groups: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``medview`` parser: the window's options and the commands of ``groups`` (modules
    of medview.cli, see :data:`COMMANDS`; default: every command)."""
    common = _global_options(defaults=False)
    p = argparse.ArgumentParser(
        prog="medview", parents=[_global_options(defaults=True)],
        usage="medview [-h] [--version] [--db PATH] [--demo] [PATH]\n"
              "       medview [--db PATH] COMMAND [ARGS...]",
        description="DICOM viewer and analysis workstation. Without a COMMAND, opens "
                    "the window (importing and opening PATH if given).",
        epilog="Global options (--db, --max-errors) may come before or after the COMMAND.",
    )
    window = p.add_argument_group(
        "the window", "PATH: a DICOM folder, file or DICOMDIR to import and open at start "
        "(medview PATH)")
    window.add_argument("--demo", action="store_true", help="open the bundled demo study")
    p.add_argument("--version", action="version", version=f"medview {__version__}")
    # prog: subcommands say "medview index", not the two-line usage above before their name
    sub = p.add_subparsers(dest="command", metavar="COMMAND", prog="medview")

    import importlib

    # one module per command group, each adding its commands; the order is --help's
    wanted = set(_GROUPS if groups is None else groups)
    for group in _GROUPS:
        if group in wanted:
            importlib.import_module(f"medview.cli.{group}").add_parser(sub, common)
    #: the subcommand names; anything else on the command line opens the window
    p.medview_commands = frozenset(COMMANDS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``medview`` command line ``argv``; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = [a for a in argv if not a.startswith("-") and a in COMMANDS]
    # only the groups of the commands named (an option's value may look like one: its group
    # is built too, harmlessly); --help without a command lists them all
    parser = build_parser({COMMANDS[a] for a in named} if named else
                          (None if {"-h", "--help"} & set(argv) else ()))
    if not named and not ({"-h", "--help", "--version"} & set(argv)):
        # no subcommand: the GUI, optionally on a path
        gui = argparse.ArgumentParser(prog="medview", add_help=False)
        gui.add_argument("--db", default=os.environ.get("MEDVIEW_DB"))
        gui.add_argument("--demo", action="store_true")
        gui.add_argument("--max-errors", type=int, default=20)  # accepted like everywhere
        gui.add_argument("path", nargs="?")
        args, rest = gui.parse_known_args(argv)
        if rest:
            parser.error(f"unknown arguments: {' '.join(rest)}")
        from medview.cli.gui import cmd_gui

        return cmd_gui(args)
    args = parser.parse_args(argv)
    from medview.core.progress import Cancelled
    from medview.dicom.errors import DicomError
    from medview.remote.errors import RemoteError

    # ChainError is a ValueError: importing medview.pipeline.chain here would load the step
    # registry and NumPy into every command (medview index starts in ~0.1 s without them)
    pacs_errors: tuple = ()
    if args.command in ("pacs", "share", "backup") or getattr(args, "send", None):
        from medview.pacs.errors import PacsError

        pacs_errors = (PacsError,)
    try:
        return args.func(args)
    except (DicomError, FileNotFoundError, FileExistsError, ValueError,
            OSError, RemoteError, *pacs_errors) as exc:
        print(f"medview {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyError as exc:  # an unknown endpoint or token: the message says what to do
        print(f"medview {args.command}: error: {exc.args[0]}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        # an extra this installation lacks: the packaged workstation has no server extra
        hint = (" (the offload server: pip install 'medview[server]' on the server)"
                if args.command == "serve" else "")
        print(f"medview {args.command}: error: this installation lacks the Python package "
              f"{exc.name!r}{hint}", file=sys.stderr)
        return EXIT_ERROR
    except Cancelled:
        print(f"medview {args.command}: cancelled", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"medview {args.command}: interrupted", file=sys.stderr)
        return 130
