"""The poly learning-rate schedule of DeepLab / MMSegmentation (tasks.schedules.poly_with_warmup)."""

from __future__ import annotations

import pytest
import torch

from litzoo.tasks.schedules import poly_with_warmup


def test_poly_decays_from_lr_to_the_floor_with_power_0_9_after_the_warmup():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = poly_with_warmup(
        optimizer,
        total_steps=12,
        steps_per_epoch=4,
        power=0.9,
        min_lr_ratio=0.01,
        warmup_epochs=0.5,
        warmup_start_factor=0.1,
    )
    rates = []
    for _ in range(13):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # 2 warmup steps from 0.1 x lr, then (1 - progress) ** 0.9 over the remaining 10 down to 1e-4.
    assert rates[:3] == pytest.approx([0.001, 0.0055, 0.01])
    assert rates[7] == pytest.approx(0.01 * (0.01 + 0.99 * 0.5**0.9))
    assert rates[12] == pytest.approx(1e-4)
