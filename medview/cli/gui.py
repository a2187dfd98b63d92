"""``medview`` without a command: the window (and what it needs installed)."""

from __future__ import annotations

import sys

from medview.cli._common import EXIT_ERROR

GUI_MODULES = ("PySide6", "pyqtgraph")
GUI_INSTALL_HINT = "pip install 'medview[gui]'"


def missing_gui_modules() -> list[str]:
    """The packages of the ``gui`` extra this installation lacks (found without importing
    them: a missing Qt must be a sentence, not a traceback)."""
    import importlib.util

    return [name for name in GUI_MODULES if importlib.util.find_spec(name) is None]


def cmd_gui(args) -> int:
    missing = missing_gui_modules()
    if missing:
        print(f"medview: the workstation window needs {' and '.join(missing)}, which this "
              f"installation lacks. Install the window with:\n    {GUI_INSTALL_HINT}\n"
              "(the command line works without it: medview --help)", file=sys.stderr)
        return EXIT_ERROR
    try:
        from medview.gui.app import run_gui
    except ImportError as exc:  # a broken Qt install: say what is wrong and how to fix it
        print(f"medview: the workstation window is not available ({exc}); reinstall it "
              f"with {GUI_INSTALL_HINT}", file=sys.stderr)
        return EXIT_ERROR
    return run_gui(path=args.path, demo=args.demo, db=args.db)
