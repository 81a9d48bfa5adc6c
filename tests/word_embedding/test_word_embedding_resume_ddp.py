"""Slow: kill -9 mid-epoch + resume ends exactly like the run left alone (block order, the per-step
draws of subsampling, windows and negatives, Adagrad's accumulators); two CPU processes evaluate a
checkpoint to the single-process scores and, training, visit every corpus block exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import read_json, run_cli
from test_resume import ENV, assert_same_run, start, wait_for_step

pytestmark = pytest.mark.slow

# Lee (60,005 tokens) in 30 blocks of ~1,900 tokens (an even number, so two ranks share them with no
# block repeated): 30 steps per epoch, a step checkpoint every 3.
ARGS = [
    "task=word_embedding",
    "data=lee",
    "data.block_tokens=1900",
    "model.dim=16",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.log_every_n_steps=1",
    "callbacks.step_checkpoint.every_n_train_steps=3",
]


def corpus_args(lee_corpus: Path) -> list[str]:
    return [*ARGS, f"data.root={lee_corpus.parent}"]


def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(lee_corpus, tmp_path):
    args = corpus_args(lee_corpus)
    reference = tmp_path / "reference"
    result = run_cli([*args, f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    process = start([*args, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 12, process)  # mid-epoch 0 (30 steps per epoch)
    time.sleep(0.2)
    process.kill()  # SIGKILL: no handler runs, nothing is flushed
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(run_dir, reference)  # every metric and every metrics.csv row, to the last digit
    resumed_from = read_json(run_dir / "run.json")["resumes"][0]["checkpoint"]
    assert Path(resumed_from).name.startswith("step")
    assert (run_dir / "vectors.bin").read_bytes() == (reference / "vectors.bin").read_bytes()


def test_two_cpu_processes_score_a_checkpoint_as_one_and_train_on_every_block_once(lee_corpus, tmp_path):
    args = [*corpus_args(lee_corpus), "trainer.max_epochs=1"]
    trained = tmp_path / "trained"
    result = run_cli([*args, f"hydra.run.dir={trained}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    one_process = read_json(trained / "run.json")["metrics"]
    checkpoint = read_json(trained / "run.json")["best_checkpoint"]
    evaluate = [*args, "train=false", f"ckpt_path={checkpoint}"]
    single = run_cli([*evaluate, f"hydra.run.dir={tmp_path / 'single'}"], env=ENV)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}"], env=ENV, timeout=900)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = read_json(tmp_path / "single" / "run.json"), read_json(tmp_path / "ddp" / "run.json")
    assert one["metrics"] == one_process  # train -> checkpoint -> eval is exact
    # Items sharded over two ranks, results gathered, each set scored once: the same numbers.
    assert set(two["metrics"]) == set(one["metrics"]) and len(one["metrics"]) > 10
    assert two["metrics"] == pytest.approx(one["metrics"], rel=1e-6, abs=1e-9)

    run_dir = tmp_path / "ddp_train"
    result = run_cli([*args, "trainer=ddp_cpu", f"hydra.run.dir={run_dir}"], env=ENV, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed" and record["global_batch_size"] == 2
    # The two ranks' blocks cover the corpus exactly once: the tokens trained on, summed over ranks,
    # are the corpus' 60,005 (as in the single-process run), not twice as many or fewer.
    import csv

    def trained_words(folder: Path) -> float:
        with open(folder / "metrics.csv") as handle:
            return [
                float(r["val/trained_words"]) for r in csv.DictReader(handle) if r.get("val/trained_words")
            ][-1]

    assert trained_words(run_dir) == trained_words(trained) == 60005
    assert record["metrics"]["test/wordsim353_scored"] == one["metrics"]["test/wordsim353_scored"]
