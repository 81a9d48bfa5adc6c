"""Embedded datasets generated on first use: written once, atomically, reused while their settings match.

A generator writes its files into a temporary folder beside `root`; they move into place and a
marker file (`{"version", "params"}`) is written last, so a folder with a matching marker is
complete. Several processes may generate at once (DDP ranks, test workers): the first to finish
wins, the others keep its files. A folder holding files the generator did not write is refused,
never cleared.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from litzoo.errors import DataError


def ensure_generated(
    root: str | os.PathLike,
    what: str,
    marker_name: str,
    marker: Mapping[str, Any],
    owned: Sequence[str],
    write: Callable[[Path], None],
) -> bool:
    """Make `root` hold the dataset `write(folder)` writes (the names in `owned`); True if written now.

    `marker` identifies the settings (at least `version` and `params`); a folder whose marker
    has the same `version` and `params` is reused as it is.
    """
    root = Path(root).expanduser()
    if _matches(root / marker_name, marker):
        return False
    _clear_stale(root, what, (*owned, marker_name))
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        write(tmp)
        root.mkdir(exist_ok=True)
        if _matches(root / marker_name, marker):  # another process finished first
            return False
        for name in owned:
            os.replace(tmp / name, root / name)
        (tmp / marker_name).write_text(json.dumps(dict(marker)))
        os.replace(tmp / marker_name, root / marker_name)  # last: marks the dataset complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def _matches(marker_file: Path, marker: Mapping[str, Any]) -> bool:
    try:
        found = json.loads(marker_file.read_text())
    except (OSError, ValueError):
        return False
    return found.get("version") == marker.get("version") and found.get("params") == marker.get("params")


def _clear_stale(root: Path, what: str, owned: Sequence[str]) -> None:
    """Remove an older or partial generated dataset, refusing to touch a folder we did not write."""
    if not root.exists():
        return
    foreign = sorted(p.name for p in root.iterdir() if p.name not in owned)
    if foreign:
        raise DataError(
            f"Cannot generate the {what} dataset in {root}: the folder exists and holds files the generator "
            f"did not write ({', '.join(foreign[:5])}). Point its root at an empty or new folder, or remove "
            "those files."
        )
    for name in owned:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
