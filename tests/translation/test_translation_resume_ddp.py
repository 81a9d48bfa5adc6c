"""Slow: two CPU processes score the test split to the single-process BLEU (same hypotheses, same order);
a run killed with -9 mid-epoch resumes to exactly the run left alone; averaged checkpoints evaluate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from conftest import read_json, run_cli
from test_resume import ENV, assert_same_run, start, wait_for_step

pytestmark = pytest.mark.slow

# A small Transformer with dropout on, a short warmup, 2 epochs of 8 token-budget batches.
ARGS = [
    "task=translation",
    "data.sizes={train: 1500, valid: 30, test: 30}",
    "data.sampler.max_tokens=1024",
    "model.d_model=64",
    "model.heads=2",
    "model.ffn_dim=128",
    "model.encoder_layers=2",
    "model.decoder_layers=2",
    "sched.warmup_steps=10",
    "task.beam_size=3",
    "task.max_len_b=5",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=8",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.log_every_n_steps=1",
    "callbacks.step_checkpoint.every_n_train_steps=3",
    "callbacks.model_checkpoint.save_top_k=-1",
]


def args(data_dir: Path) -> list[str]:
    return [*ARGS, f"paths.data_dir={data_dir}"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = run_cli([*args(data_dir), f"hydra.run.dir={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(reference, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    process = start([*args(data_dir), f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 6, process)  # mid-epoch 0 (8 steps per epoch): sampler position, dropout RNG
    time.sleep(0.2)
    process.kill()
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(run_dir, reference)
    assert (run_dir / "hypotheses_test.txt").read_bytes() == (reference / "hypotheses_test.txt").read_bytes()
    assert Path(read_json(run_dir / "run.json")["resumes"][0]["checkpoint"]).name.startswith("step")


def test_two_cpu_processes_score_the_test_split_like_one(reference, data_dir, tmp_path):
    checkpoint = read_json(reference / "run.json")["best_checkpoint"]
    evaluate = [*args(data_dir), "train=false", f"ckpt_path={checkpoint}"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    result = run_cli([*evaluate, f"hydra.run.dir={single}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={ddp}"], env=ENV, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = read_json(single / "run.json")["metrics"], read_json(ddp / "run.json")["metrics"]
    assert one["test/bleu"] > 0.0
    assert (two["test/bleu"], two["test/chrf"]) == (one["test/bleu"], one["test/chrf"])
    # Every sentence decoded once, by one rank or the other, written in the test set's order.
    assert (ddp / "hypotheses_test.txt").read_bytes() == (single / "hypotheses_test.txt").read_bytes()
    assert len((ddp / "hypotheses_test.txt").read_text().splitlines()) == 30


def test_the_average_of_the_two_epoch_checkpoints_evaluates(reference, data_dir, tmp_path):
    from litzoo.average_checkpoints import average_checkpoints

    epochs = sorted((reference / "checkpoints").glob("epoch*.ckpt"))
    assert len(epochs) == 2, epochs
    averaged = average_checkpoints(reference, last=2, by="epoch", output=tmp_path / "avg.ckpt")
    states = [torch.load(p, weights_only=True)["state_dict"] for p in epochs]
    mean = torch.load(averaged, weights_only=True)["state_dict"]
    key = "net.decoder.0.ffn.0.weight"
    assert torch.equal(mean[key], ((states[0][key].double() + states[1][key].double()) / 2).float())
    # Evaluated like any checkpoint of the run (its vocabulary is found through data.vocab_from).
    target = reference / "checkpoints" / "averaged-last2-epoch.ckpt"
    target.write_bytes(averaged.read_bytes())
    run_dir = tmp_path / "eval"
    result = run_cli(
        [*args(data_dir), "train=false", f"ckpt_path={target}", f"hydra.run.dir={run_dir}"], env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_json(run_dir / "run.json")["metrics"]
    assert (
        metrics["test/bleu"] != read_json(reference / "run.json")["metrics"]["test/bleu"]
        or metrics["test/loss"] != read_json(reference / "run.json")["metrics"]["test/loss"]
    )
