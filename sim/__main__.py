"""``python -m sim``: the same as the ``plsim`` console script."""

import sys

from sim.cli import main

sys.exit(main())
