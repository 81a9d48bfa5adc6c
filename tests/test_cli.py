"""The command line: help and config printing stay light; bad input gets one clear paragraph."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT, run_cli

from litzoo.platform.cli import suggestion_for

HEAVY = ("torch", "lightning", "timm", "torchvision", "transformers")


def imported_modules(args: list[str]) -> set[str]:
    """Top-level modules imported by `train.py <args>`, from `python -X importtime`."""
    import subprocess

    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"), *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"]])
def test_help_and_config_printing_do_not_import_heavy_packages(args):
    modules = imported_modules(args)
    assert "hydra" in modules and "omegaconf" in modules  # the measurement itself works
    assert not modules & set(HEAVY), f"heavy imports on the {args} path: {modules & set(HEAVY)}"


def test_help_lists_groups_and_options():
    result = run_cli(["--help"])
    assert result.returncode == 0
    out = result.stdout
    assert "== Config groups ==" in out
    assert "model: " in out and "resnet50d" in out and "vit_tiny_patch16_224" in out
    groups = {line.split(":", 1)[0]: line.split(":", 1)[1].split(", ") for line in out.splitlines()
              if ": " in line and not line.startswith(" ")}
    assert {"cifar10", "digits", "imagefolder"} <= {o.strip() for o in groups["data"]}
    assert [o.strip() for o in groups["logger"]] == ["csv", "many", "tensorboard", "wandb"]


def test_cfg_job_prints_the_composed_config():
    result = run_cli(["--cfg", "job", "model=resnet50", "optim.lr=0.05"])
    assert result.returncode == 0
    assert "name: resnet50" in result.stdout and "lr: 0.05" in result.stdout
    assert "\nhydra:" not in result.stdout  # --cfg job leaves out Hydra's own node


def assert_clean_failure(result, *expected: str, code: int | None = None) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0
    if code is not None:
        assert result.returncode == code, output[-2000:]
    for text in expected:
        assert text in output, f"{text!r} not in output:\n{output[-3000:]}"
    assert "Traceback (most recent call last)" not in output, output[-3000:]


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["model=resnt18"], ["Could not find 'model/resnt18'", "Did you mean 'model=resnet18'", "resnet50d"], 1),
        (["data=digit"], ["Could not find 'data/digit'", "Did you mean 'data=digits'"], 1),
        (["optim.lrr=0.1"], ["Could not override 'optim.lrr'", "Did you mean 'optim.lr'"], 1),
        (["trainer.max_epoch=3"], ["Did you mean 'trainer.max_epochs'"], 1),
        (["modle=resnet50"], ["Did you mean 'model'"], 1),
        (["data.batch_size=0"], ["data.batch_size=0 must be a positive number"], 2),
        (["optim.lr=-1"], ["optim.lr=-1 must be a positive number"], 2),
        (["data=imagefolder"], ["data=imagefolder reads a dataset from your disk: pass data.root=<dir>"], 2),
        (["data=imagefolder", "data.root=/nonexistent/images"],
         ["the directory does not exist", "<root>/train/<class_a>/xxx.jpg"], 3),
        (["train=false"], ["Pass ckpt_path=<run_dir>/checkpoints/<file>.ckpt"], 2),
    ],
)
def test_bad_input_fails_fast_with_one_paragraph(args, expected, code, tmp_path):
    result = run_cli([*args, f"hydra.run.dir={tmp_path}/run"], timeout=60)
    assert_clean_failure(result, *expected, code=code)
    if code != 1:  # validation errors happen inside a run: its record and log keep the details
        record = (tmp_path / "run" / "run.json").read_text()
        assert '"status": "failed"' in record
        assert (tmp_path / "run" / "train.log").read_text().count("Traceback") == 1


def test_suggestions_ignore_unrelated_errors():
    assert suggestion_for(ValueError("boom")) is None
