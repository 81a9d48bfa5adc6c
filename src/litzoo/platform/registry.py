"""The config registry: which models and datasets exist, which tasks they serve, how to build them.

Each `conf/model/*.yaml` and `conf/data/*.yaml` is a registry entry. Besides the
arguments of its `_target_`, an entry carries metadata for the platform:

- `name`: the entry's name (used in run directory paths and records),
- `tasks`: the task names it serves (a wrong pairing fails before anything heavy runs),
- `layout`: for datasets read from a user's directory, the on-disk layout to check,
- `check`: for models, a torch-free check of the config (e.g. that `pretrained` weights exist),
  run during validation (`litzoo.platform.validate`),
- `requires`: the optional extra (and its modules) the entry's code needs, e.g.
  `{extra: text, modules: [transformers]}`, checked first (`litzoo.platform.extras`).

Task configs carry `name`, `monitor`, `monitor_mode` (and `requires`) the same way. `build()`
strips these keys before instantiating. Reading the registry needs only OmegaConf.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

META_KEYS = frozenset({"name", "tasks", "layout", "check", "monitor", "monitor_mode", "requires"})


def build(cfg: DictConfig | dict, **kwargs: Any) -> Any:
    """Instantiate a registry entry (`_target_` + arguments), leaving out the platform metadata.

    Its targets are checked against the allowlist first (`litzoo.platform.trust`), also when
    the entry comes from a checkpoint's hyper-parameters rather than a composed config.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from litzoo.errors import LitzooError
    from litzoo.platform.trust import check_targets

    arguments = _plain(cfg)
    check_targets(arguments, resolve=True)
    try:
        return instantiate(arguments, **kwargs, _convert_="all")
    except InstantiationException as error:
        cause: BaseException | None = error
        while isinstance(cause, InstantiationException):  # Hydra wraps the target's own error
            cause = cause.__cause__
        if isinstance(cause, LitzooError):
            raise cause from None  # a user-facing message, shown as it was written
        raise


def _plain(cfg: DictConfig | dict) -> dict[str, Any]:
    """The entry as a plain dict without platform metadata (what `build` instantiates)."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: v for k, v in container.items() if k not in META_KEYS}


def group_entries(group: str, config_dirs: Iterable[Path]) -> dict[str, DictConfig]:
    """All entries of a config group (e.g. "model") found in the given config directories.

    Later directories do not shadow earlier ones: the first directory that has a
    name wins, as in Hydra's search path.
    """
    entries: dict[str, DictConfig] = {}
    for config_dir in config_dirs:
        folder = Path(config_dir) / group
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            if path.stem not in entries:
                try:
                    entries[path.stem] = load_entry(path)
                except Exception:  # a broken user file must not hide the others
                    continue
    return entries


def load_entry(path: Path) -> DictConfig:
    """One entry file with the files its defaults list extends merged under it (`family/_base@_here_`),
    as Hydra would compose it, without Hydra: enough to read its metadata (`tasks`, ...)."""
    entry = OmegaConf.load(path)
    defaults = entry.pop("defaults", None) if isinstance(entry, DictConfig) else None
    bases = []
    for item in defaults or []:
        if isinstance(item, str) and item != "_self_":
            bases.append(load_entry(path.parent / f"{item.split('@')[0]}.yaml"))
    return OmegaConf.merge(*bases, entry) if bases else entry


def entries_serving(task: str, group: str, config_dirs: Iterable[Path]) -> list[str]:
    """Names of the entries of `group` whose `tasks` list contains `task`."""
    found = []
    for option, entry in group_entries(group, config_dirs).items():
        tasks = entry.get("tasks") if isinstance(entry, DictConfig) else None
        if tasks is not None and task in list(tasks):
            found.append(option)
    return sorted(found)
