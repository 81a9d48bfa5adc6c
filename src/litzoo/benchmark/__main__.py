"""``python -m litzoo.benchmark``: see :mod:`litzoo.benchmark.cli`."""

import sys

from litzoo.benchmark.cli import main

sys.exit(main())
