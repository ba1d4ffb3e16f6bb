"""``python -m budgetctl``: the same as the ``budgetctl`` console script."""

import sys

from budgetctl.cli import main

sys.exit(main())
