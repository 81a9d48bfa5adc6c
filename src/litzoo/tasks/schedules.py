"""Learning-rate schedules, stepped every optimizer step.

Each public function takes the optimizer and the run's length (`total_steps`,
`steps_per_epoch`, computed by the task from the Trainer) and returns a
`torch.optim.lr_scheduler.LambdaLR` whose multiplier is a small picklable object,
so the schedule's state is saved in checkpoints and restored exactly on resume,
and every param group (e.g. layer-wise decayed ones) follows the same shape
relative to its own initial lr. Epoch-denominated settings (warmup_epochs,
milestones) are converted to steps. Configs in `conf/sched/` bind the other
arguments with `_partial_: true`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


@dataclass
class _Warmup:
    warmup_steps: int
    start_factor: float

    def ramp(self, step: int) -> float:
        return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps


@dataclass
class CosineFactor(_Warmup):
    total_steps: int
    min_ratio: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.ramp(step)
        progress = min((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class LinearDecayFactor(_Warmup):
    total_steps: int

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.ramp(step)
        return max(0.0, (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1))


@dataclass
class StepFactor(_Warmup):
    milestones: list[int]
    gamma: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.ramp(step)
        return self.gamma ** bisect.bisect_right(self.milestones, step)


@dataclass
class PolyFactor(_Warmup):
    total_steps: int
    power: float
    min_ratio: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.ramp(step)
        progress = min((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * (1.0 - progress) ** self.power


def _warmup_steps(
    warmup_epochs: float, steps_per_epoch: int, total_steps: int, warmup_ratio: float = 0.0
) -> int:
    steps = max(int(round(warmup_epochs * steps_per_epoch)), int(round(warmup_ratio * total_steps)))
    return min(steps, max(total_steps - 1, 0))


def cosine_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.1,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warmup from `warmup_start_factor * lr`, then cosine decay to `min_lr_ratio * lr`."""
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total_steps)
    return LambdaLR(optimizer, CosineFactor(warmup, warmup_start_factor, total_steps, min_lr_ratio))


def linear_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0,
    warmup_ratio: float = 0.0,
    warmup_start_factor: float = 0.0,
) -> LambdaLR:
    """Linear warmup to lr, then linear decay to zero at the last step (BERT fine-tuning)."""
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total_steps, warmup_ratio)
    return LambdaLR(optimizer, LinearDecayFactor(warmup, warmup_start_factor, total_steps))


def step_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    milestones: list[float],
    gamma: float = 0.1,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.1,
) -> LambdaLR:
    """Multiply lr by `gamma` at each milestone epoch."""
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total_steps)
    steps = sorted(int(round(m * steps_per_epoch)) for m in milestones)
    return LambdaLR(optimizer, StepFactor(warmup, warmup_start_factor, steps, gamma))


def constant_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.1,
) -> LambdaLR:
    """A constant lr after an optional linear warmup."""
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total_steps)
    return LambdaLR(optimizer, StepFactor(warmup, warmup_start_factor, [], 1.0))


def poly_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    power: float = 0.9,
    min_lr_ratio: float = 0.0,
    warmup_epochs: float = 0,
    warmup_start_factor: float = 0.1,
) -> LambdaLR:
    """Linear warmup, then ``min_lr_ratio + (1 - min_lr_ratio) * (1 - progress) ** power`` of lr: the "poly"
    schedule of DeepLab, PSPNet and MMSegmentation (power 0.9)."""
    warmup = _warmup_steps(warmup_epochs, steps_per_epoch, total_steps)
    return LambdaLR(optimizer, PolyFactor(warmup, warmup_start_factor, total_steps, power, min_lr_ratio))
