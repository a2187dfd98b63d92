"""The frozen application's entry point (PyInstaller runs this as ``__main__``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # the header scanner's spawn pool starts this executable again for each worker:
    # freeze_support() turns those starts into workers instead of new medview commands
    multiprocessing.freeze_support()
    from medview.dicom.catalog._walk_split import CHILD_FLAG

    if sys.argv[1:] == [CHILD_FLAG]:  # a re-index's helper walking part of the tree
        from medview.dicom.catalog._walk_split import child_main

        child_main()
        sys.exit(0)
    from medview.cli import main

    sys.exit(main())
