"""``python -m otelite``: the command line."""

import sys

from otelite.cli import main

sys.exit(main())
