"""Every config combination that should compose does, and validation refuses the ones that should not."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIG_DIR, compose
from omegaconf import OmegaConf

from litzoo.errors import ConfigError, DataError
from litzoo.platform.registry import META_KEYS, entries_serving, group_entries
from litzoo.platform.validate import validate


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def make_imagefolder(root: Path, classes=("cat", "dog"), splits=("train", "val")) -> Path:
    from PIL import Image

    for split in splits:
        for i, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20 + i, 24), color=(40 * i, 100, 200)).save(folder / f"{split}_{i}.png")
    return root


def test_default_config_is_digits_classification():
    cfg = compose([])
    assert (cfg.task.name, cfg.model.name, cfg.data.name) == ("classification", "resnet18", "digits")
    assert cfg.trainer.deterministic is True and cfg.seed == 42
    validate(cfg, [CONFIG_DIR])


@pytest.mark.parametrize("model", options("model"))
def test_every_model_composes_and_serves_its_tasks(model):
    entry = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml")
    assert entry.name == model, "a model entry's name must match its file name"
    for task in entry.tasks:
        cfg = compose([f"task={task}", f"model={model}"])
        assert cfg.model.name == model
        assert cfg.model._target_, "every model entry says what builds it"


@pytest.mark.parametrize("group", ["optim", "sched", "trainer", "logger", "callbacks"])
def test_every_option_of_the_plain_groups_composes(group, tmp_path):
    for option in options(group):
        cfg = compose([f"{group}={option}", f"paths.output_dir={tmp_path}"], run_dir=tmp_path)
        OmegaConf.resolve(cfg)  # every interpolation resolves
        validate(cfg, [CONFIG_DIR])


def test_every_data_option_composes(tmp_path):
    make_imagefolder(tmp_path / "folder")
    roots = {"imagefolder": tmp_path / "folder"}
    for data in options("data"):
        entry = OmegaConf.load(CONFIG_DIR / "data" / f"{data}.yaml")
        overrides = [f"data={data}"]
        if OmegaConf.is_missing(entry, "root") and data in roots:
            overrides.append(f"data.root={roots[data]}")
        cfg = compose([f"task={entry.tasks[0]}", *overrides])
        assert cfg.data.name == data


def test_registry_lists_models_by_task():
    classifiers = entries_serving("classification", "model", [CONFIG_DIR])
    for required in ["resnet18", "resnet50", "resnet101", "resnet50d", "mobilenetv3_large_100",
                     "efficientnet_b0", "vit_tiny_patch16_224"]:
        assert required in classifiers
    assert set(group_entries("model", [CONFIG_DIR])) == set(options("model"))
    assert {"name", "tasks"} <= META_KEYS


def test_model_that_does_not_fit_the_task_is_refused(tmp_path):
    user = tmp_path / "user_conf"
    (user / "model").mkdir(parents=True)
    (user / "model" / "segformer_b0.yaml").write_text(
        "name: segformer_b0\ntasks: [semantic_segmentation]\n_target_: litzoo.models.classification.create_classifier\n"
    )
    cfg = compose(["model=segformer_b0"], config_dirs=[user])
    with pytest.raises(ConfigError) as error:
        validate(cfg, [user, CONFIG_DIR])
    message = str(error.value)
    assert "model=segformer_b0 does not fit task=classification" in message
    assert "serves semantic_segmentation" in message
    assert "resnet18" in message and "vit_tiny_patch16_224" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.batch_size=0"], "data.batch_size=0 must be a positive number"),
        (["optim.lr=-0.1"], "optim.lr=-0.1 must be a positive number"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be a positive number"),
        (["data.num_workers=-2"], "data.num_workers=-2 must be 0 or a positive integer"),
        (["train=false"], "train=false evaluates a checkpoint, but no checkpoint was given"),
        (["ckpt_path=/nonexistent/x.ckpt"], "ckpt_path=/nonexistent/x.ckpt does not exist"),
    ],
)
def test_impossible_values_are_refused(overrides, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        validate(compose(overrides), [CONFIG_DIR])


def test_missing_data_root_names_the_fix():
    with pytest.raises(ConfigError) as error:
        validate(compose(["data=imagefolder"]), [CONFIG_DIR])
    assert "data.root" in str(error.value) and "data.root=<dir>" in str(error.value)


def test_wrong_imagefolder_layout_shows_expected_layout(tmp_path):
    make_imagefolder(tmp_path, splits=("train",))
    with pytest.raises(DataError) as error:
        validate(compose(["data=imagefolder", f"data.root={tmp_path}"]), [CONFIG_DIR])
    message = str(error.value)
    assert "there is no 'val' folder" in message and "<root>/train/<class_a>/xxx.jpg" in message


def test_val_class_unknown_to_train_is_refused(tmp_path):
    make_imagefolder(tmp_path, classes=("cat",), splits=("train",))
    make_imagefolder(tmp_path, classes=("cat", "dog"), splits=("val",))
    with pytest.raises(DataError, match="'val/' has class folders that 'train/' lacks: dog"):
        validate(compose(["data=imagefolder", f"data.root={tmp_path}"]), [CONFIG_DIR])


def test_cifar10_layout_lists_missing_files(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="missing file.*data_batch_1.*test_batch"):
        validate(compose(["data=cifar10", f"data.root={tmp_path}"]), [CONFIG_DIR])


def experiments() -> list[str]:
    return sorted(str(p.relative_to(CONFIG_DIR / "experiment").with_suffix("")) for p in
                  (CONFIG_DIR / "experiment").rglob("*.yaml"))


@pytest.mark.parametrize("experiment", experiments())
def test_every_experiment_composes_and_validates_its_pairing(experiment, tmp_path):
    make_imagefolder(tmp_path)
    cfg = compose([f"experiment={experiment}", f"data.root={tmp_path}"] if "imagenet" in experiment
                  else [f"experiment={experiment}"])
    assert cfg.task.name in cfg.model.tasks and cfg.task.name in cfg.data.tasks
    if not cfg.data.get("layout"):  # datasets on the user's disk are checked in the tests above
        validate(cfg, [CONFIG_DIR])


@pytest.mark.parametrize("debug", options("debug"))
def test_debug_configs_compose(debug):
    cfg = compose([f"debug={debug}"])
    validate(cfg, [CONFIG_DIR])


def test_fast_dev_run_goes_end_to_end(tmp_path):
    from conftest import run_in_process

    code, record = run_in_process(["debug=fdr", "data.image_size=16", "callbacks.progress_bar=null"],
                                  tmp_path / "fdr")
    assert code == 0 and record["status"] == "completed"
    assert set(record["metrics"]) == {"test/acc_top1", "test/acc_top5", "test/loss"}
