"""Slow: 2-process CPU DDP evaluation equals 1 process (whole split gathered, scored once); a run
killed with -9 mid-epoch and resumed ends exactly like the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_json, run_cli
from test_resume import ENV, assert_same_run, kill_9_and_resume

from .conftest import qa_overrides

pytestmark = pytest.mark.slow


def test_two_cpu_ranks_score_the_whole_split_like_one_process(toy_root, tiny_qa_bert, tmp_path):
    base = qa_overrides(toy_root, tiny_qa_bert)
    trained = tmp_path / "trained"
    assert run_cli([*base, f"hydra.run.dir={trained}"], env=ENV).returncode == 0
    checkpoint = read_json(trained / "run.json")["best_checkpoint"]
    evaluate = [*base, "train=false", f"ckpt_path={checkpoint}"]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert run_cli([*evaluate, f"hydra.run.dir={single}"], env=ENV).returncode == 0
    result = run_cli([*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={ddp}"], env=ENV, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(ddp / "run.json")["metrics"] == read_json(single / "run.json")["metrics"]
    assert (ddp / "predictions.json").read_bytes() == (single / "predictions.json").read_bytes()
    assert Path(ddp / "null_odds.json").is_file()


def test_kill_9_then_resume_ends_like_the_uninterrupted_run(toy_root, tiny_qa_bert, tmp_path):
    # Three epochs of 4 steps, a step checkpoint every 2: killed after step 6 (mid-epoch 2, after
    # a validation that tuned the null threshold), resumed from the newest step checkpoint.
    args = [
        *qa_overrides(toy_root, tiny_qa_bert),
        "trainer.max_epochs=3",
        "callbacks.step_checkpoint.every_n_train_steps=2",
    ]
    reference = tmp_path / "reference"
    result = run_cli([*args, f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "killed"
    kill_9_and_resume(args, run_dir, 6, timeout=600)
    assert_same_run(run_dir, reference)
    for name in ("predictions.json", "null_odds.json", "predictions_val.json"):
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), name
