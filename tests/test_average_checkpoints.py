"""Checkpoint averaging (litzoo.average_checkpoints): exact means, which files count, clear refusals."""

from __future__ import annotations

import os

import pytest
import torch

from litzoo.average_checkpoints import average_checkpoints, main, select
from litzoo.errors import CheckpointError


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "net.weight": torch.randn(7, 5, generator=g),
        "net.half": torch.randn(3, generator=g).half(),
        "net.bn.num_batches_tracked": torch.tensor(10 * seed + 1),
        "net.mask": torch.tensor([seed % 2 == 0, True]),
    }


def _save(folder, name, step, epoch, seed, **extra):
    checkpoint = {
        "state_dict": _state(seed),
        "global_step": step,
        "epoch": epoch,
        "hyper_parameters": {"lr": 0.1},
        "optimizer_states": [{"state": {}}],
        "loops": {},
        **extra,
    }
    torch.save(checkpoint, folder / name)
    return checkpoint


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    _save(folder, "epoch000-step000010.ckpt", 10, 0, 1)
    _save(folder, "epoch001-step000020.ckpt", 20, 1, 2)
    _save(folder, "step000025.ckpt", 25, 2, 3)
    _save(folder, "epoch002-step000030.ckpt", 30, 2, 4)
    os.link(folder / "epoch002-step000030.ckpt", folder / "last.ckpt")  # the best is last.ckpt
    return tmp_path


def test_epoch_average_is_the_exact_mean_of_the_last_n_distinct_epoch_checkpoints(run_dir):
    path = average_checkpoints(run_dir, last=3, by="epoch")
    out = torch.load(path, weights_only=True)
    states = [_state(s) for s in (1, 2, 4)]  # not the step checkpoint, last.ckpt counted once
    stacked = torch.stack([s["net.weight"] for s in states]).double()
    assert torch.equal(out["state_dict"]["net.weight"], stacked.mean(0).float())
    half = torch.stack([s["net.half"].double() for s in states]).mean(0).half()
    assert out["state_dict"]["net.half"].dtype == torch.float16
    assert torch.equal(out["state_dict"]["net.half"], half)
    assert int(out["state_dict"]["net.bn.num_batches_tracked"]) == (11 + 21 + 41) // 3  # fairseq's floor
    assert torch.equal(out["state_dict"]["net.mask"], _state(4)["net.mask"])
    assert [s["global_step"] for s in out["averaged_from"]] == [10, 20, 30]
    assert (
        "optimizer_states" not in out and out["global_step"] == 30 and out["hyper_parameters"] == {"lr": 0.1}
    )
    # An averaged file is never a source of the next average.
    again = torch.load(average_checkpoints(run_dir, last=3, by="epoch"), weights_only=True)
    assert torch.equal(again["state_dict"]["net.weight"], out["state_dict"]["net.weight"])


def test_step_average_counts_every_kind_by_training_step(run_dir):
    chosen = select(run_dir / "checkpoints", 2, "step")
    assert [c.path.name for c in chosen] == ["step000025.ckpt", "epoch002-step000030.ckpt"]
    out = torch.load(average_checkpoints(run_dir, last=2, by="step"), weights_only=True)
    expected = (_state(3)["net.weight"].double() + _state(4)["net.weight"].double()) / 2
    assert torch.equal(out["state_dict"]["net.weight"], expected.float())


def test_too_few_checkpoints_say_how_to_keep_more(run_dir, capsys):
    with pytest.raises(CheckpointError, match="save_top_k=-1"):
        select(run_dir / "checkpoints", 4, "epoch")
    assert main([str(run_dir), "--last", "9"]) == 4
    assert "holds only 3 such checkpoint(s)" in capsys.readouterr().err
    assert main([str(run_dir), "--last", "2"]) == 0
    assert "Averaged 2 checkpoints: epoch001-step000020.ckpt (step 20)" in capsys.readouterr().out


def test_checkpoints_of_different_models_are_refused(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    _save(folder, "epoch000-step000010.ckpt", 10, 0, 1)
    other = _save(folder, "epoch001-step000020.ckpt", 20, 1, 2)
    other["state_dict"]["net.extra"] = torch.zeros(1)
    torch.save(other, folder / "epoch001-step000020.ckpt")
    with pytest.raises(CheckpointError, match="hold different parameters .*net.extra"):
        average_checkpoints(tmp_path, last=2)
    (folder / "broken.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.ckpt"):
        average_checkpoints(tmp_path, last=2)
