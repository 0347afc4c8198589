"""``python -m autofuse``: the ``autofuse`` command."""

import sys

from autofuse._cli import main

sys.exit(main())
