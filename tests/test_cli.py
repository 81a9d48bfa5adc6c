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

    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
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


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["model.pretrained=/nonexistent/resnet18.pth"], 5),
        (["trainer.precision=bf17"], 2),
        (["train=false", f"ckpt_path={ROOT / 'README.md'}"], 4),
    ],
)
def test_what_the_config_decides_is_refused_before_torch_is_imported(args, code, tmp_path):
    """Issue 11: a missing weights file or a bad precision printed ~145 lines (and imported torch,
    Lightning, timm) before failing."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), *args, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == code, result.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "omegaconf" in imported and not imported & set(HEAVY), imported & set(HEAVY)
    shown = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not line.startswith("import time:")
    ]
    assert len(shown) == 2 and shown[0].startswith("Error: "), shown  # the paragraph and the run directory


def test_help_lists_groups_and_options():
    result = run_cli(["--help"])
    assert result.returncode == 0
    out = result.stdout
    assert "== Config groups ==" in out
    assert "model: " in out and "resnet50d" in out and "vit_tiny_patch16_224" in out
    groups = {
        line.split(":", 1)[0]: line.split(":", 1)[1].split(", ")
        for line in out.splitlines()
        if ": " in line and not line.startswith(" ")
    }
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
        (
            ["model=resnt18"],
            ["Could not find 'model/resnt18'", "Did you mean 'model=resnet18'", "resnet50d"],
            1,
        ),
        (["data=digit"], ["Could not find 'data/digit'", "Did you mean 'data=digits'"], 1),
        (["optim.lrr=0.1"], ["Could not override 'optim.lrr'", "Did you mean 'optim.lr'"], 1),
        (["trainer.max_epoch=3"], ["Did you mean 'trainer.max_epochs'"], 1),
        (["modle=resnet50"], ["Did you mean 'model'"], 1),
        (["data.batch_size=0"], ["data.batch_size=0 must be a positive number"], 2),
        (["optim.lr=-1"], ["optim.lr=-1 must be a positive number"], 2),
        (["data=imagefolder"], ["data=imagefolder reads a dataset from your disk: pass data.root=<dir>"], 2),
        (
            ["data=imagefolder", "data.root=/nonexistent/images"],
            ["the directory does not exist", "<root>/train/<class_a>/xxx.jpg"],
            3,
        ),
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


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["model=resnt18"], "Did you mean 'model=resnet18'"),
        (["trainer.max_epoch=1"], "Did you mean 'trainer.max_epochs'"),
    ],
)
def test_typos_lead_with_the_suggestion_in_one_paragraph(args, first_line):
    result = run_cli(args, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[0].startswith(first_line), result.stderr
    assert len(lines) <= 2, result.stderr  # the paragraph, and Hydra's HYDRA_FULL_ERROR hint
    assert "To append to your config use" not in lines[0]


def test_a_model_of_another_task_suggests_that_task(tmp_path):
    result = run_cli(["model=textcnn", f"hydra.run.dir={tmp_path}/run"], timeout=60)
    assert_clean_failure(
        result,
        "model=textcnn does not fit task=classification",
        "`python train.py task=text_classification model=textcnn`",
        code=2,
    )


# -- a checkpoint inside a run directory brings its run's task/model/data ------------------------


def fake_run(run_dir, overrides, choices):
    """A run directory as train.py leaves it: .hydra/{config,hydra,overrides}.yaml and a checkpoint."""
    from conftest import compose
    from omegaconf import OmegaConf

    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose(overrides), run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"runtime": {"choices": choices}}}), run_dir / ".hydra" / "hydra.yaml"
    )
    (run_dir / "checkpoints").mkdir()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 a zip archive as torch.save writes it")
    return ckpt


TEXT_RUN = (
    ["task=text_classification", "model=textcnn", "data.max_length=32", "trainer.max_epochs=1"],
    {
        "task": "text_classification",
        "model": "textcnn",
        "data": "sentiment",
        "experiment": None,
        "optim": "adamw",
    },
)


def test_a_run_checkpoint_brings_its_task_model_and_data(tmp_path, capsys):
    from litzoo.platform.checkpoint_run import checkpoint_argv

    ckpt = fake_run(tmp_path / "run", *TEXT_RUN)
    argv = checkpoint_argv(["train.py", "train=false", f"ckpt_path={ckpt}", "data.batch_size=8"])
    assert argv == [
        "train.py",
        "task=text_classification",
        "model=textcnn",
        "data=sentiment",
        "data.max_length=32",
        "train=false",
        f"ckpt_path={ckpt}",
        "data.batch_size=8",
    ]
    assert "using its task=text_classification model=textcnn data=sentiment" in capsys.readouterr().out
    # A group the user picks replaces the run's (with the run's overrides inside it); a task replaces all.
    assert checkpoint_argv(["train.py", "-m", f"ckpt_path={ckpt}", "data=sst2"]) == [
        "train.py",
        "-m",
        "task=text_classification",
        "model=textcnn",
        f"ckpt_path={ckpt}",
        "data=sst2",
    ]
    for unchanged in (
        ["train.py", f"ckpt_path={ckpt}", "task=classification"],
        ["train.py", f"ckpt_path={tmp_path / 'elsewhere.ckpt'}"],
        ["train.py", "train=false"],
    ):
        assert checkpoint_argv(unchanged) == unchanged


def test_a_checkpoint_of_another_task_or_model_is_refused_naming_the_fit(tmp_path):
    from conftest import CONFIG_DIR, compose

    from litzoo.errors import CheckpointError
    from litzoo.platform.validate import validate

    ckpt = fake_run(tmp_path / "run", *TEXT_RUN)
    for overrides, differs in (
        (["task=classification"], "task=classification (the run's: text_classification)"),
        (["task=text_classification", "model=minilm_l6"], "model=minilm_l6 (the run's: textcnn)"),
    ):
        with pytest.raises(CheckpointError) as error:
            validate(compose([*overrides, "train=false", f"ckpt_path={ckpt}"]), [CONFIG_DIR])
        message = str(error.value)
        assert differs in message, message
        assert "`task=text_classification model=textcnn data=sentiment`" in message
        assert error.value.exit_code == 4
    validate(compose([*TEXT_RUN[0], "train=false", f"ckpt_path={ckpt}"]), [CONFIG_DIR])


@pytest.mark.slow
def test_evaluating_a_text_run_checkpoint_needs_only_its_path(tmp_path):
    """Issue 21, bug 1: the default command line evaluated a textCNN checkpoint with the digits ResNet."""
    import json

    from conftest import FAST_RUN

    train = run_cli(["task=text_classification", "model=textcnn", *FAST_RUN, f"hydra.run.dir={tmp_path}/run"])
    assert train.returncode == 0, train.stderr[-3000:]
    trained = json.loads((tmp_path / "run" / "run.json").read_text())
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = run_cli(["train=false", f"ckpt_path={ckpt}", *FAST_RUN, f"hydra.run.dir={tmp_path}/eval"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "eval" / "run.json").read_text())
    assert (evaluated["task"], evaluated["model"], evaluated["data"]) == (
        "text_classification",
        "textcnn",
        "sentiment",
    )
    assert set(evaluated["metrics"]) == set(trained["metrics"])
    wrong = run_cli(
        ["train=false", f"ckpt_path={ckpt}", "task=classification", f"hydra.run.dir={tmp_path}/wrong"]
    )
    assert_clean_failure(
        wrong, "is a checkpoint of the run in", "task=text_classification model=textcnn", code=4
    )
