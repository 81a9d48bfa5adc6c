"""Learning-rate schedules (exact values), parameter groups and weight EMA."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from litzoo.tasks import schedules
from litzoo.tasks.base import split_decay_groups


def lrs(make, steps, lr=1.0, **kwargs):
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make(optimizer, **kwargs)
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_cosine_with_linear_warmup_exact_values():
    values = lrs(
        schedules.cosine_with_warmup,
        10,
        lr=0.4,
        total_steps=10,
        steps_per_epoch=2,
        warmup_epochs=1,
        warmup_start_factor=0.1,
        min_lr_ratio=0.0,
    )
    assert values[0] == pytest.approx(0.04)  # 0.1 * lr
    assert values[1] == pytest.approx(0.4 * (0.1 + 0.9 * 0.5))  # halfway up the ramp
    assert values[2] == pytest.approx(0.4)  # warmup over: cosine starts at lr
    for step in range(2, 10):
        progress = (step - 2) / 8
        assert values[step] == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * progress)))


def test_linear_warmup_then_linear_decay():
    values = lrs(
        schedules.linear_with_warmup, 10, lr=1.0, total_steps=10, steps_per_epoch=5, warmup_ratio=0.2
    )
    assert values == pytest.approx([0.0, 0.5, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])


def test_step_schedule_milestones_in_epochs():
    values = lrs(
        schedules.step_with_warmup, 8, lr=1.0, total_steps=8, steps_per_epoch=2, milestones=[1, 3], gamma=0.1
    )
    assert values == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_schedule_state_round_trips():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = schedules.cosine_with_warmup(optimizer, total_steps=20, steps_per_epoch=4, warmup_epochs=1)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    fresh_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    fresh = schedules.cosine_with_warmup(fresh_optimizer, total_steps=20, steps_per_epoch=4, warmup_epochs=1)
    fresh.load_state_dict(state)
    assert fresh.get_last_lr() == scheduler.get_last_lr()


def test_no_weight_decay_on_norms_and_biases():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2))
    decay, no_decay = split_decay_groups(net, weight_decay=0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[4].weight)}
    expected = {
        id(net[0].bias),
        id(net[1].weight),
        id(net[1].bias),
        id(net[3].weight),
        id(net[3].bias),
        id(net[4].bias),
    }
    assert {id(p) for p in no_decay["params"]} == expected


def test_ema_follows_the_exponential_average():
    from litzoo.tasks.classification import ClassificationTask

    task = ClassificationTask(
        model={"_target_": "litzoo.models.classification.create_classifier", "arch": "resnet18"},
        data_info={"num_classes": 3, "in_chans": 1, "image_size": 16},
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        ema_decay=0.5,
    )
    task.train()
    weight = task.net.fc.weight
    start = weight.detach().clone()
    task.on_before_zero_grad(None)  # first update copies the weights
    with torch.no_grad():
        weight.add_(1.0)
    task.on_before_zero_grad(None)
    assert torch.allclose(task.ema.module.fc.weight, 0.5 * start + 0.5 * (start + 1.0))
    assert task.eval_net is task.ema.module


def tiny_classifier(**tricks):
    from litzoo.tasks.classification import ClassificationTask

    torch.manual_seed(0)
    return ClassificationTask(
        model={"_target_": "litzoo.models.classification.create_classifier", "arch": "resnet18"},
        data_info={"num_classes": 3, "in_chans": 1, "image_size": 16},
        optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        **tricks,
    )


def a_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 16, 16, generator=generator), torch.tensor([0, 1, 2, 1])


def test_label_smoothing_changes_the_training_loss():
    import torch.nn.functional as F

    images, labels = a_batch()
    plain, smoothed = tiny_classifier(), tiny_classifier(label_smoothing=0.1)
    smoothed.load_state_dict(plain.state_dict())
    plain.train(), smoothed.train()
    logits = plain.net(images)  # batch-norm in training mode: the same batch gives the same logits
    assert plain.training_step((images, labels), 0).item() == pytest.approx(
        F.cross_entropy(logits, labels).item()
    )
    loss = smoothed.training_step((images, labels), 0)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item(), rel=1e-6)
    assert loss.item() != pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-3)


def test_mixup_trains_on_mixed_images_and_soft_targets():
    import numpy as np

    images, labels = a_batch()
    task = tiny_classifier(mixup_alpha=0.2)
    task.train()
    seen = []
    task.net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    np.random.seed(0)  # timm's Mixup draws lambda from numpy
    loss = task.training_step((images.clone(), labels), 0)
    (mixed,) = seen
    # timm mixes each image with the batch's mirror image: lam * x + (1 - lam) * x.flip(0).
    flipped = images.flip(0)
    lam = float(((mixed - flipped) * (images - flipped)).sum() / ((images - flipped) ** 2).sum())
    assert 0.0 < lam < 1.0 and not torch.allclose(mixed, images)
    assert torch.allclose(mixed, lam * images + (1 - lam) * flipped, atol=1e-5)
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    targets = lam * one_hot + (1 - lam) * one_hot.flip(0)
    logits = task.net(mixed)
    expected = torch.sum(-targets * torch.log_softmax(logits, dim=-1), dim=-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_ema_weights_are_what_validation_uses():
    task = tiny_classifier(ema_decay=0.5)
    task.train()
    task.on_before_zero_grad(None)
    with torch.no_grad():
        task.net.fc.weight.add_(1.0)
    task.on_before_zero_grad(None)
    assert not torch.equal(task.ema.module.fc.weight, task.net.fc.weight)  # the average lags the live weights
    images, _ = a_batch()
    task.eval()
    assert torch.allclose(task(images), task.ema.module(images)) and not torch.allclose(
        task(images), task.net(images)
    )
