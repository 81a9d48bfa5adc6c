"""Optional dependencies: a config entry names the extra it needs, the platform checks it first.

`pip install litzoo` installs the core (the platform, classification, detection); each other
family's packages come with an extra (`litzoo[text]`, `litzoo[video]`, `litzoo[export]`,
`litzoo[loggers]`, `litzoo[all]`). A model, data or task config whose code needs one says so::

    requires: {extra: text, modules: [transformers]}

`check_requirements(cfg)` runs first in `validate`, before anything heavy is imported, and
looks each module up without importing it (`importlib.util.find_spec`); a missing one stops
the run with one paragraph that names the pip command, instead of an ImportError traceback
from deep inside the model code, seconds later. `requires` is platform metadata
(`registry.META_KEYS`): `build()` never passes it on. Torch-free.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litzoo.errors import ConfigError, DependencyError

REQUIRES = "requires"


@dataclass(frozen=True)
class Requirement:
    """What one config entry (at `where`, e.g. `model`) needs installed."""

    where: str
    name: str | None  # the entry's `name`, for the message
    extra: str
    modules: tuple[str, ...]


def check_requirements(cfg: DictConfig | Mapping[str, Any]) -> None:
    """Raise `DependencyError` naming `pip install 'litzoo[<extra>]'` for the first entry whose modules are missing."""
    for requirement in requirements(cfg):
        missing = [m for m in requirement.modules if not module_available(m)]
        if missing:
            raise DependencyError(missing_message(requirement, missing))


def requirements(cfg: DictConfig | Mapping[str, Any]) -> list[Requirement]:
    """Every `requires` declaration in the composed config, outermost first."""
    container = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else dict(cfg)
    return list(_walk(container, ""))


def module_available(module: str) -> bool:
    """Whether `module` can be imported here, without importing it (a parent package may be imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken __spec__
        return False


def missing_message(requirement: Requirement, missing: list[str]) -> str:
    entry = requirement.where + (f"={requirement.name}" if requirement.name else "")
    names = ", ".join(missing)
    return (
        f"{entry} needs {names}, which {'is' if len(missing) == 1 else 'are'} not installed. Install "
        f"litzoo's {requirement.extra!r} extra: pip install 'litzoo[{requirement.extra}]' (in a checkout: "
        f"pip install -e '.[{requirement.extra}]'), or pick an option that needs no extra."
    )


def without_requirements(entry: DictConfig) -> dict[str, Any]:
    """`entry` resolved, without its `requires` key: for entries instantiated as they are (loggers), not via
    `registry.build` (which also drops `name`, a real argument of a logger)."""
    container = OmegaConf.to_container(entry, resolve=True)
    return {key: value for key, value in container.items() if key != REQUIRES}


def _walk(node: Any, where: str) -> Iterator[Requirement]:
    if isinstance(node, Mapping):
        declared = node.get(REQUIRES)
        if declared is not None:
            # A group entry (model, data, task) is named by its `name`; a nested one (logger.wandb) by its place.
            yield _requirement(declared, where, node.get("name") if "." not in where else None)
        for key, value in node.items():
            if key != REQUIRES:
                yield from _walk(value, f"{where}.{key}" if where else str(key))


def _requirement(declared: Any, where: str, name: Any) -> Requirement:
    key = f"{where}.{REQUIRES}" if where else REQUIRES
    if not isinstance(declared, Mapping) or not declared.get("extra") or not declared.get("modules"):
        raise ConfigError(
            f"{key}={declared!r} must name an extra and the modules it brings, e.g. "
            f"`{REQUIRES}: {{extra: text, modules: [transformers]}}`."
        )
    modules = declared["modules"]
    modules = (modules,) if isinstance(modules, str) else tuple(str(m) for m in modules)
    return Requirement(
        where=where or "config",
        name=str(name) if isinstance(name, str) else None,
        extra=str(declared["extra"]),
        modules=modules,
    )
