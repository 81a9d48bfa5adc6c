"""Slow: 2-process CPU DDP evaluation equals 1 process (whole split gathered, scored once); a run
killed with -9 mid-epoch and resumed ends exactly like the uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, read_json, run_cli

from .conftest import qa_overrides

pytestmark = pytest.mark.slow
ENV = {"OMP_NUM_THREADS": "1"}


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


def newest_step(checkpoints: Path) -> int:
    steps = [int(p.stem[4:]) for p in checkpoints.glob("step*.ckpt") if p.stem[4:].isdigit()]
    return max(steps, default=-1)


def rows(run_dir: Path) -> list[str]:
    return (run_dir / "metrics.csv").read_text().splitlines()


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
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    deadline = time.monotonic() + 600
    while newest_step(run_dir / "checkpoints") < 6:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    expected = read_json(reference / "run.json")["metrics"]
    assert record["status"] == "completed" and record["metrics"] == expected
    assert Counter(rows(run_dir)) == Counter(rows(reference)) and rows(run_dir) == rows(reference)
    for name in ("predictions.json", "null_odds.json", "predictions_val.json"):
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), name
