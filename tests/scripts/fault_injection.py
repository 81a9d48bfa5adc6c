"""Test-only callbacks that inject faults into a real training run (selected from the command line)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class InfGradientAt(pl.Callback):
    """Makes one gradient infinite at optimizer step `step` (after backward, before the update)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == self.step:
            param = next(p for p in pl_module.parameters() if p.grad is not None)
            param.grad.view(-1)[0] = torch.inf
