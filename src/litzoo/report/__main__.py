"""``python -m litzoo.report``: see :mod:`litzoo.report.cli`."""

import sys

from litzoo.report.cli import main

sys.exit(main())
