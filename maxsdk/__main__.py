"""``python -m maxsdk``: the command line."""

import sys

from maxsdk.cli import main

sys.exit(main())
