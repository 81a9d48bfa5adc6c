"""A segmentation run killed with SIGKILL and resumed ends exactly like the run left alone (slow)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, read_json, run_cli

from .seg_fixtures import scenes_overrides

ENV = {"OMP_NUM_THREADS": "1"}


def arguments(scenes_root: Path) -> list[str]:
    # 2 epochs x 4 batches of augmented crops, a rolling checkpoint every 2 steps.
    return [
        "task=semantic_segmentation",
        *scenes_overrides(scenes_root),
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        "trainer.log_every_n_steps=1",
        "callbacks.step_checkpoint.every_n_train_steps=2",
        "trainer.num_sanity_val_steps=0",
    ]


def rows(run_dir: Path) -> list[tuple]:
    with open(run_dir / "metrics.csv") as file:
        return [tuple(sorted((k, v) for k, v in r.items() if v != "")) for r in csv.DictReader(file)]


def newest_step(checkpoints: Path) -> int:
    return max((int(p.stem[4:]) for p in checkpoints.glob("step*.ckpt") if p.stem[4:].isdigit()), default=-1)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_step", [2, 6])
def test_kill_9_then_resume_ends_with_the_metrics_and_log_of_the_uninterrupted_run(
    kill_after_step, scenes_root, tmp_path
):
    reference = tmp_path / "reference"
    result = run_cli([*arguments(scenes_root), f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]

    run_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *arguments(scenes_root), f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    deadline = time.monotonic() + 600
    while newest_step(run_dir / "checkpoints") < kill_after_step:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for a checkpoint"
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"

    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    assert record["metrics"] == read_json(reference / "run.json")["metrics"]  # every digit
    assert rows(run_dir) == rows(reference)  # each step logged once, with the same values
