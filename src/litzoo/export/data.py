"""Real inputs for an export: batches of the run's own splits, made by the run's own datamodule.

Parity, int8 calibration and int8 accuracy all read the data the run was evaluated on (built
from its ``.hydra/config.yaml`` with the run's seed, eval transforms, in-process loading), never
random tensors: a graph that is right on noise and wrong on images is what this guards against.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import OmegaConf, open_dict

from litzoo.platform.run_dir import RunDir

STAGES = {"train": "fit", "val": "validate", "test": "test"}


def build_datamodule(run: RunDir) -> Any:
    """The run's datamodule, loading in this process (no workers)."""
    from litzoo.platform.configs import register_resolvers
    from litzoo.platform.registry import build

    register_resolvers()
    cfg = run.config()
    with open_dict(cfg):
        if "paths" in cfg:  # `${hydra:runtime.output_dir}` has no Hydra job to ask here
            cfg.paths.output_dir = str(run.path)
        cfg.data.num_workers = 0
        if "persistent_workers" in cfg.data:
            cfg.data.persistent_workers = False
    OmegaConf.resolve(cfg)
    return build(cfg.data, seed=cfg.get("seed"))


def split_batches(datamodule: Any, split: str) -> Iterator[Any]:
    """The collated batches of `split` ("val", "test" or "train", the latter with eval-time order);
    the first loader where a split has several (MNLI's matched/mismatched)."""
    datamodule.setup(STAGES[split])
    loader = getattr(datamodule, f"{'val' if split == 'val' else split}_dataloader")()
    if isinstance(loader, (list, tuple)):
        loader = loader[0]
    yield from loader
