"""Where litzoo's config tree lives, and the OmegaConf resolvers it uses.

The tree is package data (`src/litzoo/conf`, shown at the checkout's top level as `conf/`), so
a non-editable `pip install` has every config and `litzoo-train` runs from any directory.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def project_root() -> Path:
    """The checkout holding train.py for a source install, else the working directory.

    Run records name it (the `reproduce` command starts there, git describes its code).
    """
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / "train.py").is_file() else Path.cwd()


def register_resolvers() -> None:
    """Register litzoo's OmegaConf resolvers. None of them can execute code."""
    if not OmegaConf.has_resolver("litzoo_root"):
        OmegaConf.register_new_resolver("litzoo_root", lambda: str(project_root()))
