"""``python -m litzoo.export <run_dir> --format onnx|torchscript|exported-program [--int8] [-o DIR]``."""

import sys

from litzoo.export.cli import main

sys.exit(main())
