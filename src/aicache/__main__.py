"""Allow ``python -m aicache``."""

import sys

from aicache.cli import main

sys.exit(main())
