"""``python -m medview.cli``: the ``medview`` command."""

import sys

from medview.cli import main

sys.exit(main())
