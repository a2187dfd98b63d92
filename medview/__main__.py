import sys

from medview.cli import main

sys.exit(main())
