"""Config sharing: a run exported as one experiment file runs elsewhere with the same result."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, TINY, compose, read_json, run_cli, run_in_process
from omegaconf import OmegaConf

from litzoo.errors import ConfigError
from litzoo.platform.export_config import export_run, main, write_export

# Not identity: how a run is started (trust, resume) and Hydra's own node.
NOT_COMPARED = ("resume", "trust", "trust_config")


def composed(overrides: list[str], config_dirs: list[Path] = ()) -> dict:
    """The composed config as a plain, unresolved dict (what a run is made of)."""
    cfg = compose(overrides, config_dirs=config_dirs)
    container = OmegaConf.to_container(cfg, resolve=False)
    return {k: v for k, v in container.items() if k not in NOT_COMPARED}


def body(text: str) -> str:
    """The YAML of an exported file without its comment header."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def write_hydra_files(run_dir: Path, overrides: list[str], config_dirs: list[Path] = ()) -> None:
    """The .hydra/ files train.py writes into a run directory (composed by Hydra's own API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    search = (
        [f"hydra.searchpath=[{','.join('file://' + str(d) for d in config_dirs)}]"] if config_dirs else []
    )
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*overrides, *search], return_hydra_config=True)
    GlobalHydra.instance().clear()
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    container = OmegaConf.to_container(cfg, resolve=False)
    hydra_node = container.pop("hydra")
    OmegaConf.save(OmegaConf.create(container), run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_node}), run_dir / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")


def fake_run_dir(run_dir: Path, overrides: list[str], config_dirs: list[Path] = (), seed: int = 3) -> Path:
    """A run directory as train.py leaves it (.hydra/ files and run.json), without training."""
    write_hydra_files(run_dir, overrides, config_dirs)
    container = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "status": "completed",
                "task": "classification",
                "model": container.model.name,
                "data": container.data.name,
                "seed": seed,
                "overrides": overrides,
                "user_config_dirs": [str(d) for d in config_dirs],
                "metrics": {"test/acc_top1": 0.5},
            }
        )
    )
    return run_dir


EXPORTED_RUN = [
    *TINY,
    "optim=adamw",
    "optim.lr=0.003",
    "task.label_smoothing=0.1",
    "sched=constant",
    "~callbacks.lr_monitor",
    "seed=7",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real tiny run with overrides of several kinds (in this process, with Hydra's .hydra/ files)."""
    run_dir = tmp_path_factory.mktemp("export") / "run"
    write_hydra_files(run_dir, EXPORTED_RUN)
    code, record = run_in_process(EXPORTED_RUN, run_dir)
    assert code == 0 and record["status"] == "completed", record
    return run_dir, EXPORTED_RUN


def test_exported_run_composes_and_trains_to_the_same_metrics_elsewhere(trained_run, tmp_path):
    from litzoo.platform.runner import RunContext, run

    run_dir, overrides = trained_run
    export = export_run(run_dir, name="shared_run")
    other = tmp_path / "elsewhere"  # another user's config directory
    write_export(export, other / "experiment" / "shared_run.yaml")
    text = (other / "experiment" / "shared_run.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert "python train.py --config-dir <dir> experiment=shared_run" in text
    assert str(run_dir.parent) not in body(text)  # nothing of the original machine in the config itself
    exported = OmegaConf.create(body(text))
    assert {"override /optim": "adamw"} in exported.defaults and {
        "override /sched": "constant"
    } in exported.defaults
    assert (
        exported.seed == 7 and exported.optim == {"lr": 0.003} and exported.task == {"label_smoothing": 0.1}
    )
    assert exported.callbacks.lr_monitor is None  # removed in the original run
    assert not export.machine_specific and not export.dropped

    # The same config as the original command line (up to the removed callback, which is null here) ...
    original = composed(overrides)
    again = composed(["experiment=shared_run"], config_dirs=[other])
    assert again.pop("callbacks") == {**original.pop("callbacks"), "lr_monitor": None}
    assert again == original

    # ... and the same test metrics when trained again.
    again_dir = tmp_path / "again"
    (again_dir / ".hydra").mkdir(parents=True)
    cfg = compose(["experiment=shared_run"], run_dir=again_dir, config_dirs=[other])
    run(
        cfg,
        RunContext(
            run_dir=again_dir,
            config_dirs=[other, CONFIG_DIR],
            overrides=["experiment=shared_run"],
            user_config_dirs=[str(other)],
        ),
    )
    assert read_json(again_dir / "run.json")["metrics"] == read_json(run_dir / "run.json")["metrics"]


def test_machine_specific_values_become_keys_to_set(tmp_path):
    run_dir = fake_run_dir(
        tmp_path / "run",
        [
            "data=imagefolder",
            "data.root=/data/imagenet",
            "model=resnet50",
            "model.pretrained=/weights/r50.safetensors",
            "paths.data_dir=/scratch/cache",
            "data.batch_size=128",
            "trainer.max_epochs=90",
        ],
    )
    export = export_run(run_dir, name="imagenet_r50")
    assert export.machine_specific == {
        "data.root": "/data/imagenet",
        "model.pretrained": "/weights/r50.safetensors",
    }
    assert export.required == ["data.root"]  # required by data=imagefolder itself
    assert export.dropped == {"paths.data_dir": "/scratch/cache"}
    assert "#   data.root   (was /data/imagenet)" in export.text
    assert "#   model.pretrained   (was /weights/r50.safetensors)" in export.text
    assert "#   paths.data_dir   (was /scratch/cache)" in export.text
    assert "experiment=imagenet_r50 data.root=... model.pretrained=..." in export.text
    exported = OmegaConf.create(body(export.text))
    assert OmegaConf.is_missing(exported.data, "root")
    # `???` would not make model.pretrained required again (merging ??? keeps resnet50's null, i.e.
    # random init): the original path stays, and fails loudly where that file does not exist.
    assert exported.model.pretrained == "/weights/r50.safetensors"
    assert exported.data.batch_size == 128 and exported.trainer.max_epochs == 90 and exported.seed == 3
    assert "paths" not in exported and "/scratch" not in body(export.text)

    shared = tmp_path / "shared"
    write_export(export, shared / "experiment" / "imagenet_r50.yaml")
    # Without data.root the run stops with a message naming it ...
    from litzoo.platform.validate import validate

    with pytest.raises(ConfigError, match=r"Missing required value\(s\): data.root\. data=imagefolder"):
        validate(compose(["experiment=imagenet_r50"], config_dirs=[shared]), [shared, CONFIG_DIR])
    # ... with this machine's values it is the original config (paths at this machine's defaults).
    mine = ["data.root=/mnt/imagenet", "model.pretrained=/mnt/r50.safetensors"]
    again = composed(["experiment=imagenet_r50", *mine], config_dirs=[shared])
    original = composed(
        [
            "data=imagefolder",
            "model=resnet50",
            "data.batch_size=128",
            "trainer.max_epochs=90",
            "seed=3",
            *mine,
        ]
    )
    assert again == original


def test_options_from_a_team_config_dir_are_inlined(tmp_path):
    team = tmp_path / "team"
    (team / "model").mkdir(parents=True)
    model = OmegaConf.load(CONFIG_DIR / "model" / "resnet18.yaml")
    model.name, model.drop_rate = "team_net", 0.25
    OmegaConf.save(model, team / "model" / "team_net.yaml")
    run_dir = fake_run_dir(tmp_path / "run", ["model=team_net", "optim.lr=0.05"], config_dirs=[team])
    export = export_run(run_dir, name="team_run")
    assert export.inlined_groups == ["model"]
    exported = OmegaConf.create(body(export.text))
    assert {"override /model": None} in exported.defaults
    shared = tmp_path / "shared"
    write_export(export, shared / "experiment" / "team_run.yaml")
    # The recipient does not have the team's config directory: the file is enough.
    again = composed(["experiment=team_run"], config_dirs=[shared])
    original = composed(["model=team_net", "optim.lr=0.05", "seed=3"], config_dirs=[team])
    assert again == original and again["model"]["drop_rate"] == 0.25


def test_export_command_line(tmp_path, capsys):
    run_dir = fake_run_dir(tmp_path / "run", ["optim.lr=0.05"])
    out = tmp_path / "team" / "experiment" / "lr005.yaml"
    assert main([str(run_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out}" in printed
    assert f"python train.py --config-dir {tmp_path / 'team'} experiment=lr005" in printed
    assert OmegaConf.create(body(out.read_text())).optim.lr == 0.05
    assert main([str(tmp_path / "not_a_run")]) == 2
    assert "is not a litzoo run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_exported_file_runs_with_config_dir_from_another_directory(tmp_path):
    """The whole path a user takes, as commands: train, export, copy, `--config-dir` elsewhere."""
    run_dir = tmp_path / "run"
    result = run_cli([*EXPORTED_RUN, f"hydra.run.dir={run_dir}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    team = tmp_path / "team"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litzoo.platform.export_config",
            str(run_dir),
            "-o",
            str(team / "experiment" / "from_a_colleague.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(team, elsewhere / "configs")
    again = elsewhere / "run"
    result = run_cli(
        ["--config-dir", str(elsewhere / "configs"), "experiment=from_a_colleague", f"hydra.run.dir={again}"],
        cwd=elsewhere,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert read_json(again / "run.json")["metrics"] == read_json(run_dir / "run.json")["metrics"]
    assert read_json(again / "run.json")["user_config_dirs"] == [str(elsewhere / "configs")]
