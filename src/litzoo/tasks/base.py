"""What every task module shares: optimizer groups, the lr schedule, weight EMA.

A task module is a LightningModule that owns the science of one task family
(forward, loss, metrics, decoding). The plumbing it inherits from here:

- `configure_optimizers` builds the optimizer from the `optim` config (a
  `_partial_` target such as `torch.optim.SGD`) over `param_groups()`, and the
  per-step lr schedule from the `sched` config with the run's length;
- `param_groups()` puts normalisation weights and biases in a group without
  weight decay when `no_decay_norm_bias` is set (override for layer-wise decay);
- an exponential moving average of the weights (`ema_decay`), updated after every
  optimizer step and used for validation and testing.

All constructor arguments are plain data (dicts, numbers, strings) and are saved
as hyper-parameters, so checkpoints load with `weights_only=True` and a task can
be rebuilt from its checkpoint alone.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def split_decay_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two param groups: everything else with `weight_decay`, norm weights and biases without."""
    no_decay_ids = set()
    for sub in module.modules():
        if isinstance(sub, _NORM_TYPES) or "norm" in type(sub).__name__.lower():
            no_decay_ids.update(id(p) for p in sub.parameters(recurse=False))
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        if id(param) in no_decay_ids or name.endswith(".bias") or param.ndim <= 1:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class TaskModule(pl.LightningModule):
    """Base class of litzoo's task modules. Subclasses set `self.net` before calling `init_ema()`."""

    def __init__(self, optim: dict, sched: dict | None = None, no_decay_norm_bias: bool = True,
                 ema_decay: float | None = None) -> None:
        super().__init__()
        self.optim_cfg = dict(optim)
        self.sched_cfg = dict(sched) if sched else None
        self.no_decay_norm_bias = no_decay_norm_bias
        self.ema_decay = ema_decay
        self.ema: AveragedModel | None = None

    # --- weights used for evaluation -----------------------------------------------------------
    def init_ema(self) -> None:
        if self.ema_decay:
            self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)

    @property
    def eval_net(self) -> nn.Module:
        """The network to validate and test with: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.net

    def on_before_zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        # Called once per optimizer step (after accumulation), right after the step.
        if self.ema is not None and self.training:
            self.ema.update_parameters(self.net)

    # --- optimization ---------------------------------------------------------------------------
    def param_groups(self) -> list[dict[str, Any]] | Any:
        weight_decay = float(self.optim_cfg.get("weight_decay", 0.0) or 0.0)
        if self.no_decay_norm_bias:
            return split_decay_groups(self.net, weight_decay)
        return [p for p in self.net.parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.optim_cfg, _convert_="all")(self.param_groups())
        if not self.sched_cfg:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)  # also sets num_training_batches
        batches = self.trainer.num_training_batches
        accumulate = self.trainer.accumulate_grad_batches
        steps_per_epoch = math.ceil(batches / accumulate) if math.isfinite(batches) else total_steps
        scheduler = instantiate(self.sched_cfg, _convert_="all")(
            optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
