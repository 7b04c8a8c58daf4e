"""``python -m snakepit_trio cleanup|hardware``: the same as the ``snakepit-trio`` command."""

import sys

from ._cli import main

sys.exit(main())
