"""``python -m app.cli`` (what torchrun runs): the ``fhn`` command line."""

import sys

from app.cli import main

sys.exit(main())
