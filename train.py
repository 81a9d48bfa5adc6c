#!/usr/bin/env python
"""Train, evaluate or sweep any litzoo task. `python train.py --help` lists the options."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

try:
    from litzoo.platform.cli import main
except ModuleNotFoundError:  # running from a checkout that was not pip-installed
    sys.path.insert(0, str(ROOT / "src"))
    from litzoo.platform.cli import main

if __name__ == "__main__":
    main()
