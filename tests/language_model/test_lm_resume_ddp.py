"""Slow: kill -9 mid-epoch + resume ends exactly like the run left alone (stream position and hidden state);
two CPU processes evaluate to the single-process perplexity; DDP training checkpoints every rank's state."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from conftest import read_json, run_cli
from test_resume import ENV, assert_same_run, start, wait_for_step

pytestmark = pytest.mark.slow

# AWD-LSTM with every dropout on and variable BPTT: the resumed run must restore the random
# states, the sampler's position and the hidden state carried into the next window.
ARGS = [
    "task=language_model",
    "model=awd_lstm",
    "model.embed_size=12",
    "model.hidden_size=16",
    "model.num_layers=2",
    "data=wikitext2",
    "data.batch_size=4",
    "data.bptt=10",
    "data.eval_batch_size=2",
    "data.test_batch_size=2",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=10",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.log_every_n_steps=1",
    "callbacks.step_checkpoint.every_n_train_steps=3",
]


def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(wikitext_root, tmp_path):
    args = [*ARGS, f"data.root={wikitext_root}"]
    reference = tmp_path / "reference"
    result = run_cli([*args, f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    process = start([*args, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 6, process)  # mid-epoch 0 (10 steps per epoch)
    time.sleep(0.2)
    process.kill()
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(run_dir, reference)
    resumed_from = read_json(run_dir / "run.json")["resumes"][0]["checkpoint"]
    assert Path(resumed_from).name.startswith("step")
    saved = torch.load(resumed_from, weights_only=True)["language_model"]["train_state"]
    assert saved is not None and saved[0].shape == (1, 1, 4, 16)  # [ranks, layers, streams, hidden]


def test_two_cpu_processes_evaluate_to_the_single_process_perplexity(wikitext_root, tmp_path):
    args = [*ARGS, f"data.root={wikitext_root}", "trainer.max_epochs=1", "data.test_batch_size=3"]
    trained = tmp_path / "trained"
    result = run_cli([*args, f"hydra.run.dir={trained}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = read_json(trained / "run.json")["best_checkpoint"]
    evaluate = [*args, "train=false", f"ckpt_path={checkpoint}"]
    single = run_cli([*evaluate, f"hydra.run.dir={tmp_path / 'single'}"], env=ENV)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}"], env=ENV, timeout=900)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = read_json(tmp_path / "single" / "run.json"), read_json(tmp_path / "ddp" / "run.json")
    assert two["metrics"] == pytest.approx(one["metrics"], rel=1e-6)


def test_ddp_training_checkpoints_the_hidden_state_of_every_rank(wikitext_root, tmp_path):
    run_dir = tmp_path / "ddp"
    result = run_cli(
        [
            *ARGS,
            f"data.root={wikitext_root}",
            "trainer=ddp_cpu",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=4",
            "callbacks.step_checkpoint.every_n_train_steps=2",
            "++callbacks.step_checkpoint.keep_after_fit=true",
            f"hydra.run.dir={run_dir}",
        ],
        env=ENV,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(run_dir / "checkpoints" / "step000002.ckpt", weights_only=True)["language_model"]
    assert state["world_size"] == 2 and state["train_state"][0].shape[0] == 2  # one hidden state per rank
    assert not torch.equal(state["train_state"][0][0], state["train_state"][0][1])  # their own streams
