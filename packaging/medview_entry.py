"""The frozen application's entry point (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # the header scanner's spawn pool starts this executable again for each worker:
    # freeze_support() turns those starts into workers instead of new medview commands
    multiprocessing.freeze_support()
    from medview.cli import main

    sys.exit(main())
