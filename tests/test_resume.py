"""Killed, preempted and resumed runs end exactly like runs left alone, and log every step once."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, read_json, run_cli

# 3 epochs x 8 batches, a rolling checkpoint every 2 steps, augmentation on (the default).
ARGS = [
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "data.image_size=16",
    "data.batch_size=32",
    "callbacks.step_checkpoint.every_n_train_steps=2",
    "trainer.log_every_n_steps=1",
    "callbacks.model_summary=null",
]
ENV = {"OMP_NUM_THREADS": "1"}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )


def newest_step(checkpoints: Path) -> int:
    steps = [int(p.stem[4:]) for p in checkpoints.glob("step*.ckpt") if p.stem[4:].isdigit()]
    return max(steps, default=-1)


def wait_for_step(
    root: Path, step: int, process: subprocess.Popen, pattern: str = "checkpoints", timeout: float = 300
) -> Path:
    """Wait until a rolling checkpoint of at least `step` exists under root/pattern; returns its folder."""
    deadline = time.monotonic() + timeout
    while True:
        for folder in root.glob(pattern):
            if newest_step(folder) >= step:
                return folder
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for checkpoints"
        time.sleep(0.02)


def kill_9_and_resume(
    args: list[str], run_dir: Path, step: int, pause: float = 0.0, timeout: float = 300
) -> None:
    """Start `train.py args` in `run_dir`, SIGKILL it `pause` s after a rolling checkpoint of `step` exists
    (no handler runs, nothing is flushed), check the run was left `running`, and resume it to the end."""
    process = start([*args, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, step, process, timeout=timeout)
    time.sleep(pause)
    process.kill()
    process.wait()
    assert read_json(run_dir / "run.json")["status"] == "running"
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]


def rows(run_dir: Path) -> list[tuple]:
    with open(run_dir / "metrics.csv") as f:
        return [tuple(sorted((k, v) for k, v in r.items() if v != "")) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    result = run_cli([*ARGS, f"hydra.run.dir={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def assert_same_run(resumed: Path, reference: Path) -> None:
    record = read_json(resumed / "run.json")
    assert record["status"] == "completed"
    assert record["metrics"] == read_json(reference / "run.json")["metrics"]  # exactly, every digit
    resumed_rows, reference_rows = rows(resumed), rows(reference)
    assert Counter(resumed_rows) == Counter(reference_rows), "metrics.csv must hold each step exactly once"
    assert resumed_rows == reference_rows


@pytest.mark.parametrize("trial", [0, 1, 2])
def test_kill_9_at_a_random_step_then_resume_matches_the_uninterrupted_run(trial, reference, tmp_path):
    rng = random.Random(trial)
    run_dir = tmp_path / "run"
    kill_9_and_resume(ARGS, run_dir, rng.choice([2, 6, 12]), pause=rng.uniform(0.0, 0.4))
    assert_same_run(run_dir, reference)
    resumes = read_json(run_dir / "run.json")["resumes"]
    assert len(resumes) == 1 and resumes[0]["previous_status"] == "running" and resumes[0]["checkpoint"]


def test_sigterm_checkpoints_marks_interrupted_and_resumes_exactly(reference, tmp_path):
    run_dir = tmp_path / "run"
    process = start([*ARGS, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 4, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    record = read_json(run_dir / "run.json")
    assert record["status"] == "interrupted"
    assert record["last_checkpoint"] == str(run_dir / "checkpoints" / "interrupted.ckpt")
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()

    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(run_dir, reference)
    assert read_json(run_dir / "run.json")["resumes"][0]["checkpoint"].endswith("interrupted.ckpt")


def test_resume_auto_finds_the_unfinished_run_and_skips_a_truncated_checkpoint(reference, tmp_path):
    outputs = tmp_path / "outputs"
    process = start([*ARGS, f"paths.log_dir={outputs}"])
    wait_for_step(outputs, 6, process, pattern="classification/resnet18/*/checkpoints")
    process.kill()
    process.wait()
    (run_dir,) = list((outputs / "classification" / "resnet18").iterdir())
    newest = max((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    intact = sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)[-2]
    newest.write_bytes(newest.read_bytes()[:1000])  # as if cut off by a crash mid-save
    os.utime(newest)

    result = run_cli([*ARGS, f"paths.log_dir={outputs}", "resume=auto"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((outputs / "classification" / "resnet18").iterdir()) == [run_dir]  # continued in place
    assert f"{newest.name} is truncated or corrupt" in (run_dir / "train.log").read_text()
    assert read_json(run_dir / "run.json")["resumes"][0]["checkpoint"] == str(intact)
    assert_same_run(run_dir, reference)


def test_a_kill_between_an_epochs_last_batch_and_its_epoch_end_checkpoint_resumes_exactly(
    reference, tmp_path
):
    """The riskiest moment: the epoch's batches are done, its validation and epoch-end checkpoints are not.
    Simulated exactly by removing what the epoch end wrote; no step checkpoint may stand at that point."""
    run_dir = tmp_path / "run"
    process = start([*ARGS, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 10, process)  # epoch 1 has begun: epoch 0 ended at step 8
    process.kill()
    process.wait()
    checkpoints = run_dir / "checkpoints"
    assert not (checkpoints / "step000008.ckpt").exists()  # the last batch of epoch 0
    for path in [
        checkpoints / "last.ckpt",
        *checkpoints.glob("epoch*.ckpt"),
        *checkpoints.glob("step00001*.ckpt"),
    ]:
        path.unlink(missing_ok=True)

    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(run_dir / "run.json")["resumes"][0]["checkpoint"].endswith("step000006.ckpt")
    assert_same_run(run_dir, reference)


@pytest.fixture(scope="module")
def worker_reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ref_workers") / "run"
    result = run_cli([*ARGS, "data.num_workers=2", f"hydra.run.dir={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize("resume_from", ["mid_epoch", "epoch_end"])
def test_a_run_loading_in_worker_processes_resumes_exactly(resume_from, worker_reference, tmp_path):
    """Two persistent worker processes draw the augmentation: a resumed run gets the workers' random
    states back, from a checkpoint in the middle of an epoch or at its end, and ends like the run left alone."""
    run_dir = tmp_path / "run"
    process = start([*ARGS, "data.num_workers=2", f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 10, process)  # epoch 1 has begun
    process.kill()
    process.wait()
    checkpoints = run_dir / "checkpoints"
    newer = [*checkpoints.glob("step00001*.ckpt"), *checkpoints.glob("step00002*.ckpt")]
    if resume_from == "mid_epoch":  # step 6 of 8 in epoch 0
        newer += [
            checkpoints / "last.ckpt",
            *checkpoints.glob("epoch*.ckpt"),
            checkpoints / "step000008.ckpt",
        ]
    for path in newer:
        path.unlink(missing_ok=True)

    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed_from = Path(read_json(run_dir / "run.json")["resumes"][0]["checkpoint"]).name
    assert (
        resumed_from == "step000006.ckpt"
        if resume_from == "mid_epoch"
        else not resumed_from.startswith("step")
    )
    assert_same_run(run_dir, worker_reference)


def test_resuming_a_completed_run_is_refused(reference):
    result = run_cli([f"resume={reference}"])
    assert result.returncode == 2 and "already completed" in result.stderr


@pytest.mark.slow
def test_a_killed_ddp_run_resumes_exactly(tmp_path):
    args = [*ARGS, "trainer=ddp_cpu", "trainer.max_epochs=2"]
    reference = tmp_path / "ref"
    result = run_cli([*args, f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    process = start([*args, f"hydra.run.dir={run_dir}"])
    wait_for_step(run_dir, 4, process)
    process.kill()  # rank 0 dies; its child notices and exits (RankWatchdog)
    process.wait()
    result = run_cli([f"resume={run_dir}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(run_dir / "run.json")["metrics"] == read_json(reference / "run.json")["metrics"]
    assert (run_dir / "train_ddp_process_1.log").is_file()
