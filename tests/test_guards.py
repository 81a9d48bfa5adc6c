"""Guarded training: non-finite losses and gradients stop the run or are skipped, as configured."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from conftest import TINY, run_in_process

from litzoo.platform.guards import NonFiniteError, NonFiniteGuard
from litzoo.random_state import capture_rng_state, restore_rng_state

INJECT = [
    "trust.allow=[fault_injection]",
    "+callbacks.inject._target_=fault_injection.InfGradientAt",
    "+callbacks.inject.step=2",
    "trainer.limit_train_batches=5",
]


@pytest.fixture(autouse=True)
def scripts_on_path(monkeypatch):
    from conftest import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "scripts"))


def test_nonfinite_gradient_stops_the_run_naming_the_step(tmp_path, capsys):
    code, record = run_in_process([*TINY, *INJECT], tmp_path / "run")
    assert code == 6
    assert record["status"] == "failed"
    assert "Non-finite gradients at epoch 0, step 2, batch 2" in record["error"]
    assert "Non-finite gradients at epoch 0, step 2, batch 2" in capsys.readouterr().err


def test_nonfinite_gradient_step_is_skipped_and_counted(tmp_path):
    code, record = run_in_process([*TINY, *INJECT, "nonfinite=skip"], tmp_path / "run")
    assert code == 0 and record["status"] == "completed"
    assert record["nonfinite_skipped_steps"] == [{"epoch": 0, "step": 2, "batch_idx": 2}]
    assert all(v == v for v in record["metrics"].values())  # no NaN reached the weights


def test_guard_checks_the_loss_before_backward():
    class FakeTrainer:
        current_epoch, global_step = 1, 7

        class fit_loop:  # noqa: N801
            class epoch_loop:  # noqa: N801
                batch_idx = 3

    with pytest.raises(NonFiniteError, match="loss \\(nan\\) at epoch 1, step 7, batch 3"):
        NonFiniteGuard("stop").on_before_backward(FakeTrainer(), None, torch.tensor(float("nan")))
    skipping = NonFiniteGuard("skip")
    skipping.on_before_backward(FakeTrainer(), None, torch.tensor(float("inf")))
    param = torch.nn.Parameter(torch.ones(2))
    param.grad = torch.ones(2)
    optimizer = torch.optim.SGD([param], lr=1.0, momentum=0.9)
    skipping.on_before_optimizer_step(FakeTrainer(), None, optimizer)
    optimizer.step()
    assert torch.equal(param.detach(), torch.ones(2)) and skipping.skipped[0]["step"] == 7


def test_random_states_survive_a_weights_only_checkpoint_exactly():
    """What ResumeState and the data workers save: Python, numpy and torch states, each with a
    cached Gaussian pending, round-trip through torch.save / torch.load(weights_only=True)."""
    random.seed(3), np.random.seed(4), torch.manual_seed(5)
    random.gauss(0, 1), np.random.normal(), torch.randn(3)  # leave a second Gaussian cached
    buffer = io.BytesIO()
    torch.save(capture_rng_state(), buffer)

    def draws():
        return (
            random.gauss(0, 1),
            random.random(),
            np.random.normal(),
            np.random.random(),
            torch.rand(2).tolist(),
        )

    expected = draws()
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert draws() == expected


def test_the_fast_nonfinite_check_agrees_with_the_element_wise_one():
    """One sum per gradient clears a healthy step; a sum that overflows falls back to the exact check."""
    from litzoo.platform.guards import _any_nonfinite

    assert not _any_nonfinite([torch.full((10,), 3e38)])  # finite, though its sum overflows to inf
    assert _any_nonfinite([torch.ones(3), torch.tensor([1.0, float("nan")])])
    assert _any_nonfinite([torch.tensor([float("-inf")])])
    assert not _any_nonfinite([])
