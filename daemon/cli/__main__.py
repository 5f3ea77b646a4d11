"""`python -m daemon.cli`: the same as the `dslfailover` entry point."""

import sys

from . import main

sys.exit(main())
