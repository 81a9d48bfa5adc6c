"""Rough edges of a run's bookkeeping: a batch larger than the split, the end time of a run that
fails validation, and resume=auto with nothing to resume."""

from __future__ import annotations

import logging

import pytest
from conftest import TINY, compose, run_cli, run_in_process

DIGITS_TRAIN = 1257  # 1797 digits, 15% val and 15% test held out (stratified)


def test_a_batch_larger_than_the_train_split_is_the_split(tmp_path, caplog):
    """Issue 21, bug 3: data.batch_size=100000 on 1,257 samples was recorded (and scaled lr) as 100000."""
    overrides = [
        *TINY,
        "data.batch_size=100000",
        "data.eval_batch_size=32",
        "data.image_size=8",
        "optim.lr_scaling=linear",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
    with caplog.at_level(logging.INFO, logger="litzoo"):
        code, record = run_in_process(overrides, tmp_path / "run")
    assert code == 0, record.get("error")
    assert record["global_batch_size"] == DIGITS_TRAIN
    warning = next(r.getMessage() for r in caplog.records if "data.batch_size=100000" in r.getMessage())
    assert warning.startswith(f"data.batch_size=100000 is larger than the {DIGITS_TRAIN} training samples")
    assert f"Linear lr scaling: 0.1 x {DIGITS_TRAIN} / 256 = {0.1 * DIGITS_TRAIN / 256:g}" in caplog.text


def test_the_real_batch_counts_each_devices_share():
    from litzoo.platform.scaling import real_batch_size

    assert real_batch_size(64, train_samples=1257, world_size=1) == 64
    assert real_batch_size(100000, train_samples=1257, world_size=1) == 1257
    assert real_batch_size(1000, train_samples=1257, world_size=2) == 629  # ceil(1257 / 2) per device
    assert real_batch_size(64, train_samples=None, world_size=4) == 64  # size unknown: as configured


def test_a_run_that_fails_validation_records_when_it_ended(tmp_path):
    code, record = run_in_process(["data.batch_size=0"], tmp_path / "run")
    assert code == 2 and record["status"] == "failed"
    assert record["ended_at"] is not None and record["ended_at"] >= record["started_at"]


def test_resume_auto_with_nothing_to_resume_says_so(tmp_path, caplog, monkeypatch):
    from litzoo.platform.resume import NOTHING_TO_RESUME_ENV, resume_argv

    monkeypatch.delenv(NOTHING_TO_RESUME_ENV, raising=False)
    argv = resume_argv(
        ["train.py", "resume=auto", f"paths.log_dir={tmp_path / 'outputs'}"],
        lambda overrides, dirs: compose(overrides),
    )
    assert argv == ["train.py", f"paths.log_dir={tmp_path / 'outputs'}"]
    with caplog.at_level(logging.INFO, logger="litzoo"):
        code, _ = run_in_process(["data.batch_size=0"], tmp_path / "run")  # the note comes before validation
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resume=auto")]
    assert notes == [
        f"resume=auto: no unfinished run with this config under {tmp_path / 'outputs'}; starting a new run"
    ]


@pytest.mark.slow
def test_resume_auto_with_nothing_to_resume_says_so_in_train_log(tmp_path):
    result = run_cli(
        [*TINY, "resume=auto", f"paths.log_dir={tmp_path / 'outputs'}", f"hydra.run.dir={tmp_path}/run"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = "resume=auto: no unfinished run with this config under"
    assert (result.stdout + result.stderr).count(line) == 1
    assert (tmp_path / "run" / "train.log").read_text().count(line) == 1


def test_a_checkpoint_of_another_network_outside_a_run_directory_is_refused_briefly(tmp_path):
    """Without a run directory to name the checkpoint's run, loading it is what finds the misfit: one
    short paragraph (exit 4) instead of torch's thousands of characters of missing and unexpected keys."""
    import torch

    stray = tmp_path / "stray.ckpt"
    weights = {f"net.encoder.layer{i}.weight": torch.zeros(4, 4) for i in range(40)}
    torch.save({"state_dict": weights, "pytorch-lightning_version": "2.6.6"}, stray)
    code, record = run_in_process([*TINY, "train=false", f"ckpt_path={stray}"], tmp_path / "run")
    assert code == 4, record.get("error")
    assert record["error"].startswith(
        f"ckpt_path={stray} does not fit the network this config builds "
        "(task=classification model=resnet18 data=digits): "
    )
    assert "40 unexpected" in record["error"] and len(record["error"]) < 700


def test_paths_output_dir_pointing_away_from_the_run_directory_is_refused(tmp_path):
    """paths.output_dir=X used to put checkpoints and metrics in X and run.json in Hydra's directory."""
    code, record = run_in_process([f"paths.output_dir={tmp_path / 'elsewhere'}"], tmp_path / "run")
    assert code == 2 and record["status"] == "failed"
    assert "Choose the run directory with hydra.run.dir=<dir>" in record["error"]
    assert not (tmp_path / "elsewhere").exists()
