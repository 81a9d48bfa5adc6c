"""run.json pieces: secrets redaction, the reproduce command, atomic writes, the code version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from litzoo.platform.record import RunRecord, code_version, reproduce_command
from litzoo.platform.run_dir import write_json_atomic
from litzoo.platform.secrets import REDACTED, is_secret_name, redact, redact_override


def test_credential_names_are_recognised():
    for name in ["WANDB_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "logger.wandb.api_key"]:
        assert is_secret_name(name), name
    for name in ["tokenizer", "max_tokens", "num_keypoints", "bucket_keys", "monitor", "lr"]:
        assert not is_secret_name(name), name


def test_redact_nested_structures_urls_and_env_values():
    record = {
        "config": {"logger": {"api_key": "abc", "project": "p"}, "data": {"root": "s3://me:pw@bucket/x"}},
        "overrides": ["logger.wandb.api_key=abc", "optim.lr=0.1"],
        "note": "token is hunter2hunter2",
        "empty_token": None,
    }
    cleaned = redact(record, secrets=["hunter2hunter2"])
    assert cleaned["config"]["logger"] == {"api_key": REDACTED, "project": "p"}
    assert cleaned["config"]["data"]["root"] == f"s3://{REDACTED}@bucket/x"
    assert cleaned["overrides"] == [f"logger.wandb.api_key={REDACTED}", "optim.lr=0.1"]
    assert cleaned["note"] == f"token is {REDACTED}"
    assert cleaned["empty_token"] is None
    assert redact_override("+hf_token=xyz") == f"+hf_token={REDACTED}"


def test_reproduce_command_quotes_and_pins_the_seed(tmp_path):
    command = reproduce_command(
        tmp_path / "my project",
        ["model=resnet50", "data.root=/data/with space", "hydra.run.dir=/x", "seed=3"],
        seed=3,
        config_dirs=["/team/conf"],
    )
    assert command.startswith(f"cd '{tmp_path}/my project' && ")
    assert "--config-dir=/team/conf model=resnet50 'data.root=/data/with space' seed=3" in command
    assert "hydra.run.dir" not in command and command.count("seed=") == 1


def test_atomic_json_write_replaces_whole_file(tmp_path):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary files left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_record_lifecycle_and_rank_gate(tmp_path):
    record = RunRecord(tmp_path)
    record.start(task="classification", seed=1)
    assert json.loads(record.path.read_text())["status"] == "running"
    record.finish("completed", metrics={"test/acc_top1": 0.5})
    data = json.loads(record.path.read_text())
    assert data["status"] == "completed" and data["metrics"] == {"test/acc_top1": 0.5} and data["ended_at"]
    silent = RunRecord(tmp_path / "other", enabled=False)
    silent.start(task="x")
    assert not (tmp_path / "other").exists()


def test_code_version_saves_the_diff_of_a_dirty_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    clean = code_version(repo, run_dir)
    assert clean["dirty"] is False and len(clean["commit"]) == 40 and not (run_dir / "code.diff").exists()
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.py").write_text("y = 1\n")
    dirty = code_version(repo, run_dir)
    assert dirty["dirty"] is True and dirty["untracked"] == ["new.py"]
    assert "+x = 2" in (run_dir / "code.diff").read_text()
    assert code_version(tmp_path / "not_a_repo", run_dir)["commit"] is None


# --- a fresh DDP run is not a resume (the child follows its parent) ------------------------------


def test_a_ddp_child_takes_its_parents_decision_and_does_not_resume_a_fresh_run(
    tmp_path, monkeypatch, caplog
):
    """Lightning's rank-1 child of a fresh trainer=ddp_cpu run finds the run.json its parent has just
    written (status running, same config, a pid that is not its own): no unfinished run to resume."""
    from conftest import compose

    from litzoo.platform import runner
    from litzoo.platform.ranks import JOB_ENV
    from litzoo.platform.resume import config_fingerprint

    for variable in ("RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID", "JSM_NAMESPACE_RANK", "NODE_RANK"):
        monkeypatch.delenv(variable, raising=False)
    cfg = compose(["trainer=ddp_cpu"], run_dir=tmp_path)
    parent = {"status": "running", "config_hash": config_fingerprint(cfg), "pid": 1, "hostname": "elsewhere"}
    monkeypatch.setenv(JOB_ENV, json.dumps({"run_dir": str(tmp_path), "overrides": [], "config_dirs": []}))
    monkeypatch.setenv("LOCAL_RANK", "1")
    with caplog.at_level("INFO", logger="litzoo"):
        assert runner._resumes(cfg, parent) is False
    assert "resuming it in place" not in caplog.text
    cfg.resume = str(tmp_path)  # a parent that resumes passes resume=<run_dir> on: the child resumes too
    assert runner._resumes(cfg, parent) is True
    cfg.resume = None  # and a requeued job's rank 0 still resumes by itself
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert runner._resumes(cfg, parent) is True


# --- debug=fdr, disk use, extending a completed run ---------------------------------------------


def test_debug_fdr_writes_metrics_csv_and_no_checkpoint(tmp_path):
    import csv

    from conftest import run_in_process

    run_dir = tmp_path / "fdr"
    code, record = run_in_process(["debug=fdr", "data.image_size=16", "callbacks.progress_bar=null"], run_dir)
    assert code == 0 and record["status"] == "completed" and record["best_checkpoint"] is None
    assert not list(run_dir.rglob("*.ckpt"))
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r.get("train/loss_step")] == [0]  # one training batch
    assert (
        sum(1 for r in rows if r.get("val/acc_top1")) == 1 and sum(1 for r in rows if r.get("test/loss")) == 1
    )
    assert float(rows[-1]["test/loss"]) == pytest.approx(record["metrics"]["test/loss"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import TINY, run_in_process

    run_dir = tmp_path_factory.mktemp("disk") / "run"
    args = [*TINY, "trainer.max_epochs=2", "callbacks.step_checkpoint.every_n_train_steps=2"]
    code, record = run_in_process(args, run_dir)
    assert code == 0, record.get("error")
    return args, run_dir, record


def test_a_run_keeps_one_full_checkpoint_and_no_step_checkpoints_once_it_completes(trained):
    from litzoo.platform.checkpointing import is_resumable, load_checkpoint_file
    from litzoo.platform.run_dir import RunDir

    _, run_dir, record = trained
    checkpoints = run_dir / "checkpoints"
    best, last = Path(record["best_checkpoint"]), checkpoints / "last.ckpt"
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == sorted({best.name, "last.ckpt"})
    assert is_resumable(load_checkpoint_file(last))
    if best.stat().st_ino != last.stat().st_ino:  # an earlier epoch was the best: its weights only
        assert not is_resumable(load_checkpoint_file(best))
    assert abs(record["disk_bytes"] - RunDir(run_dir).size_bytes()) < 100


@pytest.mark.slow
def test_evaluating_the_best_checkpoint_gives_the_recorded_metrics(trained, tmp_path):
    from conftest import run_in_process

    args, _, record = trained
    code, evaluated = run_in_process(
        [*args, "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval"
    )
    assert code == 0 and evaluated["metrics"] == record["metrics"]


@pytest.mark.slow
def test_a_completed_run_extends_from_its_last_checkpoint(trained, tmp_path):
    import csv
    import shutil

    from conftest import run_in_process

    args, run_dir, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    json_record = json.loads((copy / "run.json").read_text())
    json_record["run_dir"] = str(copy)
    (copy / "run.json").write_text(json.dumps(json_record))
    code, record = run_in_process([*args, "trainer.max_epochs=3", f"resume={copy}"], copy)
    assert code == 0, record.get("error")
    assert record["status"] == "completed"
    (resume,) = record["resumes"]
    assert resume["previous_status"] == "completed" and resume["checkpoint"].endswith("last.ckpt")
    assert resume["overrides"] == ["trainer.max_epochs=3"] and "trainer.max_epochs=3" in record["overrides"]
    rows = list(csv.DictReader((copy / "metrics.csv").open()))
    assert sorted({int(float(r["epoch"])) for r in rows if r.get("val/acc_top1")}) == [0, 1, 2]
    assert sum(1 for r in rows if r.get("test/loss")) == 1  # the first test's row is replaced, not repeated

    code, refused = run_in_process([*args, "trainer.max_epochs=3", f"resume={copy}"], copy)
    assert code == 2 and "the run completed 3 epochs" in refused["error"]


def test_resume_argv_extends_a_completed_run_only_when_asked_to_train_longer(tmp_path):
    from litzoo.errors import ConfigError
    from litzoo.platform.resume import resume_argv

    (tmp_path / "run.json").write_text(
        json.dumps({"status": "completed", "overrides": ["trainer.max_epochs=2"]})
    )
    with pytest.raises(ConfigError, match="already completed.*trainer.max_epochs=<more>"):
        resume_argv(["train.py", f"resume={tmp_path}"], compose=None)
    argv = resume_argv(["train.py", f"resume={tmp_path}", "trainer.max_epochs=5"], compose=None)
    assert argv == [
        "train.py",
        "trainer.max_epochs=2",
        "trainer.max_epochs=5",
        f"hydra.run.dir={tmp_path}",
        f"resume={tmp_path}",
    ]


def test_merge_overrides_replaces_by_key():
    from litzoo.platform.record import merge_overrides

    assert merge_overrides(
        ["model=resnet50", "trainer.max_epochs=2", "+x=1"], ["trainer.max_epochs=5", "x=2"]
    ) == ["model=resnet50", "trainer.max_epochs=5", "x=2"]


# --- curves -------------------------------------------------------------------------------------


def test_a_short_run_logs_dense_steps_and_its_curves_have_lines_and_a_learning_rate_panel(tmp_path):
    import csv

    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    from litzoo.platform.loggers import DenseLoggingForShortRuns, RunCSVLogger
    from litzoo.platform.plots import build_figure, epoch_starts, read_metrics

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def training_step(self, batch, batch_idx):
            loss = (self.weight * 10).pow(2).sum() + 0.01
            self.log("train/loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val/acc_top1", 0.5 + 0.1 * self.current_epoch)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.001)

    trainer = pl.Trainer(
        max_epochs=2,
        log_every_n_steps=10,
        logger=RunCSVLogger(tmp_path),
        callbacks=[DenseLoggingForShortRuns(min_points=50), pl.callbacks.LearningRateMonitor()],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    data = DataLoader(torch.zeros(8, 1), batch_size=1)  # 8 steps per epoch, 16 in all
    trainer.fit(Module(), data, DataLoader(torch.zeros(1, 1)))
    assert trainer.log_every_n_steps == 1  # 16 steps // 50 points, at least 1
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows if r.get("train/loss_step")] == list(range(16))

    series = read_metrics(tmp_path / "metrics.csv")
    assert epoch_starts(tmp_path / "metrics.csv") == [8]
    fig = build_figure(series, [8])
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(by_title) == {"loss", "acc_top1", "learning rate"}
    assert by_title["loss"].get_yscale() == "log"
    step_line = next(line for line in by_title["loss"].get_lines() if line.get_label() == "train/loss_step")
    assert len(step_line.get_xdata()) == 16 and step_line.get_linestyle() == "-"
