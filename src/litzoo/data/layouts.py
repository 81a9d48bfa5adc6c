"""The layout-check protocol: datasets read from a user's directory are checked before torch is imported.

A data config names its check by import path, `layout: <module>.<function>` (e.g.
`litzoo.datamodules.classification.layouts.check_imagefolder`); the function receives the data
config and raises a `DataError` that shows the expected layout. Checks live beside their
family's readers, in modules that import neither torch nor the family's datamodules, so a
wrong `data.root` fails within a second. Adding a format adds a function, not a table entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from litzoo.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def layout_error(name: str, root: Path, problem: str, layout: str) -> DataError:
    """The error of a failed layout check: the problem, the root, and the layout it should have."""
    return DataError(f"data={name}: {problem} (data.root={root}). Expected layout:\n{layout}")


def check_layout(layout: str, data: Mapping[str, Any]) -> None:
    """Run the check a data config names by import path in its `layout` key."""
    from litzoo.platform.trust import check_targets

    module_name, _, function_name = str(layout).rpartition(".")
    check_targets({"_target_": str(layout)})  # same allowlist as any `_target_` in a config
    try:
        check = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError):
        raise DataError(
            f"data.layout={layout!r} does not name a layout-check function; give its import path, "
            "e.g. litzoo.datamodules.classification.layouts.check_imagefolder."
        ) from None
    check(data)
