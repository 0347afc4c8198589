"""``python -m autofuse``: the command line (see ``autofuse._cli``)."""

import sys

from autofuse._cli import main

sys.exit(main())
