"""The zoo's recipes, read from `conf/experiment/<dataset>/<model>.yaml` without Hydra or torch.

A recipe is an experiment file with paper hyper-parameters and a `zoo:` block (metadata for the
zoo; nothing reads it at run time):

```yaml
zoo:
  reference:            # the published number this recipe reproduces (null: none published)
    metric: test/miou   # as litzoo logs it, on litzoo's scale (fractions, except SQuAD's 0-100, ppl)
    value: 0.7617
    source: "<paper or model zoo, table, the figure as published>"
    also: {test/exact_match: 81.0}   # optional further published metrics
  tiny:                 # overrides that make a CPU variant which runs one optimisation step
    - data=digits       # (litzoo.zoo.tiny adds the one-step trainer to these)
  data_info: {num_classes: 1000}    # optional: the recipe's dataset sizes, for params/GFLOPs
  measure: [data.image_size=224]    # optional: overrides restoring the recipe's input size
```

Reading these needs only OmegaConf, so `python -m litzoo.zoo` lists in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

DEFAULT_TASK = "classification"  # what conf/train.yaml runs when a recipe names no task
REFERENCE_KEYS = ("metric", "value", "source")


@dataclass(frozen=True)
class Recipe:
    """One recipe file and what the zoo lists of it."""

    name: str  # "coco/faster_rcnn_resnet50_fpn", as `experiment=` takes it
    path: Path
    task: str
    model: str  # the conf/model entry it starts from
    data: str
    reference: dict[str, Any] | None
    tiny: tuple[str, ...]
    data_info: dict[str, Any] = field(default_factory=dict)
    measure: tuple[str, ...] = ()
    arch: str | None = None  # a model.arch the recipe sets over its entry's (e.g. mobilenetv1_100)

    @property
    def dataset(self) -> str:
        return self.name.split("/")[0]


def recipe_files(config_dirs: Iterable[Path]) -> dict[str, Path]:
    """Every `experiment/**.yaml` under the config directories (the first directory wins a name)."""
    found: dict[str, Path] = {}
    for config_dir in config_dirs:
        folder = Path(config_dir) / "experiment"
        for path in sorted(folder.rglob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(str(path.relative_to(folder).with_suffix("")), path)
    return found


def read_recipe(name: str, files: Mapping[str, Path]) -> Recipe:
    """One recipe with what it inherits from the recipes its defaults list extends."""
    groups, body = _groups_and_body(name, files)
    zoo = body.get("zoo") or {}
    model_cfg = body.get("model") or {}
    return Recipe(
        name=name,
        path=files[name],
        task=groups.get("task", DEFAULT_TASK),
        model=groups.get("model", "resnet18"),
        data=groups.get("data", "digits"),
        reference=_plain(zoo.get("reference")),
        tiny=tuple(str(o) for o in zoo.get("tiny") or ()),
        data_info=_plain(zoo.get("data_info")) or {},
        measure=tuple(str(o) for o in zoo.get("measure") or ()),
        arch=str(model_cfg["arch"]) if isinstance(model_cfg, Mapping) and "arch" in model_cfg else None,
    )


def recipes(config_dirs: Iterable[Path]) -> list[Recipe]:
    """Every recipe of the config directories, sorted by name."""
    files = recipe_files(config_dirs)
    return [read_recipe(name, files) for name in sorted(files)]


def reference_problems(recipe: Recipe) -> list[str]:
    """What is wrong with a recipe's `zoo.reference` block (empty when it follows the convention)."""
    ref = recipe.reference
    if ref is None:
        return []
    problems = [f"reference lacks '{k}'" for k in REFERENCE_KEYS if k not in ref]
    if "metric" in ref and not str(ref["metric"]).startswith(("test/", "val/")):
        problems.append(f"reference metric {ref['metric']!r} is not a logged name (test/... or val/...)")
    if "value" in ref and not isinstance(ref["value"], int | float):
        problems.append(f"reference value {ref['value']!r} is not a number")
    extra = set(ref) - {*REFERENCE_KEYS, "also", "note"}
    if extra:
        problems.append(f"reference has unknown keys {sorted(extra)}")
    return problems


def _groups_and_body(name: str, files: Mapping[str, Path]) -> tuple[dict[str, str], DictConfig]:
    """The `override /group: option` choices and the merged body of a recipe and its parents."""
    raw = OmegaConf.load(files[name])
    defaults = raw.pop("defaults", None) or []
    groups: dict[str, str] = {}
    parents: list[DictConfig] = []
    for item in defaults:
        if isinstance(item, str) and item != "_self_":  # another recipe this one extends
            parent_groups, parent_body = _groups_and_body(item, files)
            groups.update(parent_groups)
            parents.append(parent_body)
        elif isinstance(item, DictConfig):
            for key, value in item.items():
                groups[str(key).replace("override", "").strip().strip("/")] = str(value)
    body = OmegaConf.merge(*parents, raw) if parents else raw
    if isinstance(body.get("zoo"), DictConfig) and parents:
        # a child's reference and tiny variant are its own: a parent's never carry over unnoticed
        own = raw.get("zoo") or {}
        for key in ("reference", "tiny", "data_info", "measure"):
            if key not in own and key in body.zoo:
                body.zoo[key] = None
    return groups, body


def _plain(node: Any) -> Any:
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=False)
    return node
