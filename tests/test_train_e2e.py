"""End to end: train.py trains, writes a complete run directory, reproduces itself and evaluates checkpoints."""

from __future__ import annotations

import csv
import subprocess

import pytest
import torch
from conftest import TINY, read_json, run_cli, run_in_process


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One real `python train.py` run on a tiny slice, shared by the checks below."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = run_cli(
        [*TINY, "optim.lr=0.05", f"hydra.run.dir={run_dir}"],
        env={"WANDB_API_KEY": "fake-secret-value-123456"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir, result


def test_run_directory_is_a_complete_training_log(cli_run):
    run_dir, result = cli_run
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    assert (record["task"], record["model"], record["data"], record["seed"]) == (
        "classification",
        "resnet18",
        "digits",
        42,
    )
    assert record["started_at"] and record["ended_at"] and record["duration_s"] > 0
    assert set(record["metrics"]) == {"test/acc_top1", "test/acc_top5", "test/loss"}
    assert 0.0 <= record["metrics"]["test/acc_top1"] <= 1.0
    assert record["best_checkpoint"].startswith(str(run_dir / "checkpoints"))
    code = record["code"]
    assert len(code["commit"]) == 40 and isinstance(code["dirty"], bool)
    if code["dirty"]:
        assert (run_dir / "code.diff").is_file()
    env = record["environment"]
    assert env["packages"]["torch"] and env["packages"]["lightning"] and env["packages"]["timm"]
    assert env["packages"]["hydra-core"] and env["python"] and env["platform"] and env["cpu"]
    assert env["device_count"] == 0 and env["gpus"] == []
    assert record["reproduce"].endswith("python train.py " + " ".join(TINY) + " optim.lr=0.05 seed=42")
    assert record["global_batch_size"] == 16
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        assert (run_dir / ".hydra" / name).is_file()
    assert (run_dir / "curves.png").stat().st_size > 1000
    log = (run_dir / "train.log").read_text()
    assert "Batch size: 16 per device" in log
    # What runs at the start (the whole config in train.log) and the results table at the end.
    assert (
        result.stdout.startswith("classification / resnet18 / digits  seed=42") and "model_checkpoint" in log
    )
    assert "test/acc_top1" in result.stdout
    assert "Reproduce:" in result.stdout


def test_metrics_csv_has_step_and_epoch_rows(cli_run):
    run_dir, _ = cli_run
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0])
    assert {
        "epoch",
        "step",
        "train/loss_step",
        "train/loss_epoch",
        "val/acc_top1",
        "test/acc_top1",
    } <= columns
    assert any(r["train/loss_step"] for r in rows) and any(r["val/acc_top1"] for r in rows)


def test_secrets_from_the_environment_never_land_in_the_run_directory(cli_run):
    run_dir, _ = cli_run
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert b"fake-secret-value-123456" not in path.read_bytes(), path


def test_reproduce_command_gives_identical_metrics(cli_run, tmp_path):
    run_dir, _ = cli_run
    record = read_json(run_dir / "run.json")
    again = tmp_path / "again"
    result = subprocess.run(
        f"{record['reproduce']} hydra.run.dir={again}",
        shell=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(again / "run.json")["metrics"] == record["metrics"]


def test_evaluating_a_checkpoint_reproduces_the_test_metrics(cli_run, tmp_path):
    run_dir, _ = cli_run
    record = read_json(run_dir / "run.json")
    code, evaluated = run_in_process(
        [*TINY, "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval"
    )
    assert code == 0
    assert evaluated["status"] == "completed"
    assert evaluated["metrics"] == pytest.approx(record["metrics"], rel=1e-6)
    assert evaluated["best_checkpoint"] == record["best_checkpoint"]


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    metrics = []
    for i, seed in enumerate([7, 7, 8]):
        code, record = run_in_process([*TINY, f"seed={seed}"], tmp_path / f"run{i}")
        assert code == 0, record
        metrics.append(record["metrics"])
    assert metrics[0] == metrics[1]
    assert metrics[0]["test/loss"] != metrics[2]["test/loss"]


def test_bag_of_tricks_switches_train(tmp_path):
    code, record = run_in_process(
        [
            *TINY,
            "task.label_smoothing=0.1",
            "task.mixup_alpha=0.2",
            "task.cutmix_alpha=1.0",
            "task.ema_decay=0.9",
            "sched.warmup_epochs=0.5",
            "optim=adamw",
            "optim.lr=0.001",
        ],
        tmp_path / "tricks",
    )
    assert code == 0 and record["status"] == "completed"
    # Each switch reached the task, and EMA ran: its weights lag the live ones (unit tests in
    # test_schedules_and_tricks.py check the loss with smoothing and the mixed batches exactly).
    checkpoint = torch.load(record["best_checkpoint"], map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert (
        hparams["label_smoothing"],
        hparams["mixup_alpha"],
        hparams["cutmix_alpha"],
        hparams["ema_decay"],
    ) == (0.1, 0.2, 1.0, 0.9)
    state = checkpoint["state_dict"]
    live = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    ema = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    assert live.keys() == ema.keys()
    assert not torch.equal(live["fc.weight"], ema["fc.weight"])
    # Warmup over half an epoch of 3 steps: the first logged learning rate is below the peak.
    rows = list(csv.DictReader((tmp_path / "tricks" / "metrics.csv").open()))
    lrs = [float(r[k]) for r in rows for k in r if k.startswith("lr") and r[k]]
    assert lrs[0] < max(lrs) <= 0.001


@pytest.mark.parametrize("logger", ["tensorboard", "wandb", "many"])
def test_loggers_write_inside_the_run_directory(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "fake-secret-value-654321")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / logger
    code, record = run_in_process([*TINY, f"logger={logger}"], run_dir)
    assert code == 0 and record["status"] == "completed"
    assert (run_dir / "metrics.csv").is_file()
    if logger in ("tensorboard", "many"):
        assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    if logger in ("wandb", "many"):
        offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
        assert len(offline_runs) == 1 and list(offline_runs[0].glob("*.wandb"))
        for path in run_dir.rglob("*"):
            if path.is_file():
                assert b"fake-secret-value-654321" not in path.read_bytes(), path


@pytest.mark.slow
def test_the_default_job_reaches_095_test_accuracy(tmp_path):
    """`python train.py` with no arguments: the README's promise (digits, ResNet-18, test top-1 >= 0.95)."""
    run_dir = tmp_path / "run"
    result = run_cli([f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = read_json(run_dir / "run.json")
    assert record["metrics"]["test/acc_top1"] >= 0.95, record["metrics"]
    assert record["best_checkpoint"] and "epoch" in record["best_checkpoint"]
