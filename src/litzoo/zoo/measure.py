"""Parameters and GFLOPs of the zoo's models and recipes, measured by building them the way a run does.

A model entry is measured as `python train.py task=<its first task> model=<name>` builds it (the
family's embedded default data). A recipe is measured on its tiny variant's data with the recipe's
dataset sizes put back (`zoo.data_info`, e.g. ImageNet's 1000 classes) and its input size restored
(`zoo.measure`, e.g. `data.image_size=224`); params are then those of the recipe's network, and
GFLOPs those of one evaluation sample at that size: `torch.utils.flop_counter.FlopCounterMode`
around Lightning's `validate` over one batch of one sample (whatever the task does to evaluate it:
a classifier's forward, a detector's whole inference, a language model's BPTT window).

Building needs torch and the family's libraries; the listing does not: `python -m litzoo.zoo measure`
writes the numbers to `stats.json` beside this file, and a test rebuilds entries and compares.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from litzoo.zoo.recipes import Recipe
from litzoo.zoo.tiny import tiny_overrides

STATS_FILE = Path(__file__).with_name("stats.json")
# One evaluation sample, no workers, quiet: what the measurement adds to any composition.
MEASURE = ("++data.batch_size=1", "++data.eval_batch_size=1", "++data.num_workers=0")


def model_overrides(name: str, tasks: Sequence[str]) -> list[str]:
    """How a model entry is measured: its first task's default data, one sample per batch."""
    return [f"task={tasks[0]}", f"model={name}", *MEASURE]


def recipe_overrides(recipe: Recipe) -> list[str]:
    """How a recipe is measured: its tiny variant's data at the recipe's input size."""
    return [*tiny_overrides(recipe), *recipe.measure, *MEASURE]


def compose(overrides: Sequence[str], config_dirs: Sequence[Path] = ()) -> Any:
    """The config `python train.py <overrides>` would run (Hydra's runtime info set, `hydra` removed)."""
    import tempfile

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from litzoo.platform.configs import CONFIG_DIR, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    extra = [f"hydra.searchpath=[{','.join('file://' + str(d) for d in config_dirs)}]"] if config_dirs else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*overrides, *extra], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = tempfile.mkdtemp(prefix="litzoo-zoo-")
        cfg.hydra.job.num = 0
        cfg.hydra.job.id = "zoo"
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    GlobalHydra.instance().clear()
    return cfg


def build_task(
    cfg: Any, data_info: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]] | None = None
) -> tuple[Any, Any]:
    """(task, datamodule) built as the runner builds them, with `data_info` (or what it returns for the
    datamodule's info) over the datamodule's info."""
    from omegaconf import OmegaConf

    from litzoo.platform.registry import build

    datamodule = build(cfg.data, seed=0)
    info = datamodule.info()
    info = {**info, **dict((data_info(info) if callable(data_info) else data_info) or {})}
    task = build(
        cfg.task,
        _recursive_=False,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data_info=info,
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        sched=OmegaConf.to_container(cfg.sched, resolve=True) if cfg.get("sched") else None,
    )
    return task, datamodule


def count_params(task: Any) -> int:
    """Parameters of the task's network (`task.net`: what is trained and exported, not EMA copies)."""
    return int(sum(p.numel() for p in task.net.parameters()))


def count_flops(task: Any, datamodule: Any) -> int:
    """FLOPs of evaluating one validation batch (of one sample, with MEASURE), as FlopCounterMode counts them."""
    import lightning.pytorch as pl
    from torch.utils.flop_counter import FlopCounterMode

    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with FlopCounterMode(display=False) as counter:
        trainer.validate(task, datamodule=datamodule, verbose=False)
    return int(counter.get_total_flops())


def measure(
    overrides: Sequence[str], data_info: Mapping[str, Any] | None = None, flops: bool = True
) -> dict[str, Any]:
    """{"params", "gflops"} of what `overrides` build (`gflops` left out when `flops` is false).

    Params come from the network built for `data_info` (the recipe's dataset sizes); FLOPs from the
    one built for the stand-in data it evaluates on, whose labels the metrics understand (only the
    class-count-sized output layer differs, a negligible share of the FLOPs)."""
    with scratch_dir():
        cfg = compose(overrides)
        task, datamodule = build_task(cfg)
        result: dict[str, Any] = {}
        if flops:
            result["gflops"] = round(count_flops(task, datamodule) / 1e9, 3)
        if data_info:
            task, _ = build_task(cfg, lambda info: resized(info, data_info))
        return {"params": count_params(task), **result}


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """Work in a temporary directory: what datamodules and evaluation write beside a run
    (vocab.json, predictions, plots) must not land in the caller's working directory."""
    with tempfile.TemporaryDirectory(prefix="litzoo-zoo-") as folder, contextlib.chdir(folder):
        yield Path(folder)


def resized(info: Mapping[str, Any], sizes: Mapping[str, Any]) -> dict[str, Any]:
    """`sizes` over `info`; a new `num_classes` also resizes the class-name list that some tasks
    count their classes from (the stand-in's names first, placeholders after)."""
    out = {**info, **sizes}
    names = info.get("class_names")
    if "num_classes" in sizes and isinstance(names, list) and len(names) == info.get("num_classes"):
        n = int(sizes["num_classes"])
        out["class_names"] = [*names, *(f"class_{i}" for i in range(len(names), n))][:n]
    return out


def measure_all(
    models: Mapping[str, Sequence[str]], recipes: Sequence[Recipe], only: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Measure every model entry (name -> its tasks) and recipe; a failure is recorded as its reason."""
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    table: dict[str, dict[str, Any]] = {}
    jobs = [(f"model:{n}", model_overrides(n, t), {}, True) for n, t in models.items()]
    jobs += [
        (f"recipe:{r.name}", recipe_overrides(r), r.data_info, bool(r.measure) or not swaps_data(r))
        for r in recipes
    ]
    for key, overrides, info, flops in jobs:
        if only and key.split(":", 1)[1] not in only:
            continue
        reason = unmeasurable(next((r for r in recipes if f"recipe:{r.name}" == key), None))
        if reason:
            table[key] = {"note": reason}
            continue
        try:
            table[key] = measure(overrides, info, flops=flops)
        except Exception as error:  # noqa: BLE001  (one entry that cannot be built offline: say why)
            table[key] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
        print(f"{key}: {table[key]}", flush=True)
    return table


def swaps_data(recipe: Recipe) -> bool:
    """Whether the tiny variant runs on other data than the recipe's own."""
    return any(o.startswith("data=") for o in recipe.tiny)


def unmeasurable(recipe: Recipe | None) -> str | None:
    """Why a recipe's own network cannot be measured from its tiny variant (None: it can)."""
    if recipe is None:
        return None
    if not recipe.tiny:
        return "no zoo.tiny variant yet: nothing to build it from offline"
    if any(o.startswith("model=") for o in recipe.tiny):
        return "the tiny variant swaps the model (the recipe's needs its pretrained checkpoint)"
    if swaps_data(recipe) and not recipe.data_info and not recipe.measure:
        return "its size depends on the recipe's dataset (vocabulary), which is not on this machine"
    return None


def read_stats(path: Path = STATS_FILE) -> dict[str, dict[str, Any]]:
    """The checked-in measurements ({} when none were written yet)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_stats(table: Mapping[str, Mapping[str, Any]], path: Path = STATS_FILE) -> None:
    """Merge `table` into the checked-in measurements."""
    merged = {**read_stats(path), **table}
    path.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
