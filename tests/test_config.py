"""Every config combination that should compose does, and validation refuses the ones that should not."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIG_DIR, compose
from omegaconf import OmegaConf

from litzoo.errors import CheckpointError, ConfigError, DataError, DependencyError
from litzoo.platform.registry import META_KEYS, entries_serving, group_entries, load_entry
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
        entry = load_entry(CONFIG_DIR / "data" / f"{data}.yaml")  # with its family base
        overrides = [f"data={data}"]
        if OmegaConf.is_missing(entry, "root") and data in roots:
            overrides.append(f"data.root={roots[data]}")
        cfg = compose([f"task={entry.tasks[0]}", *overrides])
        assert cfg.data.name == data


def test_registry_lists_models_by_task():
    classifiers = entries_serving("classification", "model", [CONFIG_DIR])
    for required in [
        "resnet18",
        "resnet50",
        "resnet101",
        "resnet50d",
        "mobilenetv3_large_100",
        "efficientnet_b0",
        "vit_tiny_patch16_224",
    ]:
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
        (["data.num_workers=-2"], "data.num_workers=-2 must be 0, a positive integer or auto"),
        (["train=false"], "train=false evaluates a checkpoint, but no checkpoint was given"),
        (
            ["trainer.precision=bf17"],
            "trainer.precision='bf17' is not a precision Lightning knows. "
            "Did you mean trainer.precision=bf16",
        ),
        (["trainer.precision=true"], "trainer.precision=True is not a precision Lightning knows"),
    ],
)
def test_impossible_values_are_refused(overrides, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")):
        validate(compose(overrides), [CONFIG_DIR])


def test_the_precisions_validation_accepts_are_lightnings():
    from typing import get_args

    from lightning.fabric.connector import _PRECISION_INPUT

    from litzoo.platform.validate import PRECISIONS

    lightning = {value for alias in get_args(_PRECISION_INPUT) for value in get_args(alias)}
    assert set(PRECISIONS) == lightning | {"auto"}
    for precision in ("bf16-mixed", "16-mixed", "32-true"):
        validate(compose([f"trainer.precision={precision}"]), [CONFIG_DIR])


def test_a_missing_checkpoint_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match=r"ckpt_path=/nonexistent/x\.ckpt does not exist") as error:
        validate(compose(["train=false", "ckpt_path=/nonexistent/x.ckpt"]), [CONFIG_DIR])
    assert error.value.exit_code == 4


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"epoch 3 val/acc 0.91\n", "it is a text file (it starts with 'epoch 3 val/acc 0.91')"),
        (b"", "the file is empty"),
        (bytes(range(200, 256)), "it starts with the bytes"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_named(content, expected, tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        validate(compose(["train=false", f"ckpt_path={path}"]), [CONFIG_DIR])
    message = str(error.value)
    assert f"ckpt_path={path} is not a checkpoint: {expected}" in message
    assert "<run_dir>/checkpoints/" in message


def test_real_checkpoint_files_pass_the_header_check(tmp_path):
    import torch

    zipped, legacy = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    torch.save({"state_dict": {}}, zipped)
    torch.save({"state_dict": {}}, legacy, _use_new_zipfile_serialization=False)
    for path in (zipped, legacy):
        validate(compose(["train=false", f"ckpt_path={path}"]), [CONFIG_DIR])


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    """Hugging Face and torch hub caches with nothing in them."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf" / "hub"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model.pretrained=/nonexistent/resnet18.safetensors"],
            "model.pretrained=/nonexistent/resnet18.safetensors does not exist",
        ),
        (["model.pretrained=true"], "Pretrained weights for 'resnet18' are not on this machine"),
        (
            ["model=vit_tiny_patch16_224", "model.pretrained=true"],
            "Pretrained weights for 'vit_tiny_patch16_224' are not on this machine",
        ),
        (
            ["task=text_classification", "model=bert_base"],
            "'bert-base-uncased' (model.pretrained=bert_base) is neither a local checkpoint directory nor in the "
            "local Hugging Face cache",
        ),
        (
            ["task=text_classification", "model=hf_encoder", "model.pretrained=/nonexistent/roberta"],
            "Checkpoint directory /nonexistent/roberta does not exist",
        ),
    ],
)
def test_pretrained_weights_not_on_this_machine_are_refused_in_validation(overrides, expected, empty_caches):
    with pytest.raises(DependencyError) as error:
        validate(compose(overrides), [CONFIG_DIR])
    assert expected in str(error.value)


def test_pretrained_weights_in_the_caches_pass(empty_caches, tmp_path):
    timm_repo = empty_caches / "models--timm--resnet18.a1_in1k" / "snapshots" / "0123"
    timm_repo.mkdir(parents=True)
    (timm_repo / "model.safetensors").write_bytes(b"x")
    bert = empty_caches / "models--bert-base-uncased"
    (bert / "snapshots" / "abcd").mkdir(parents=True)
    (bert / "refs").mkdir()
    (bert / "refs" / "main").write_text("abcd")
    (bert / "snapshots" / "abcd" / "config.json").write_text("{}")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    for overrides in (
        ["model.pretrained=true"],
        [f"model.pretrained={weights}"],
        ["model=efficientnet_b0", "model.pretrained=true", "model.allow_download=true"],
        ["task=text_classification", "model=bert_base"],
    ):
        validate(compose(overrides), [CONFIG_DIR])


def test_every_model_check_names_a_function():
    from litzoo.platform.validate import run_named_check

    for model in options("model"):
        check = OmegaConf.load(CONFIG_DIR / "model" / f"{model}.yaml").get("check")
        if check:
            module, _, name = check.rpartition(".")
            assert callable(getattr(__import__(module, fromlist=[name]), name)), model
    with pytest.raises(ConfigError, match="model.check='litzoo.models.nope' does not name a check function"):
        run_named_check("litzoo.models.nope", compose([]).model, "model.check")


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
    return sorted(
        str(p.relative_to(CONFIG_DIR / "experiment").with_suffix(""))
        for p in (CONFIG_DIR / "experiment").rglob("*.yaml")
    )


@pytest.mark.parametrize("experiment", experiments())
def test_every_experiment_composes_and_validates_its_pairing(experiment, tmp_path):
    make_imagefolder(tmp_path)
    cfg = compose(
        [f"experiment={experiment}", f"data.root={tmp_path}"]
        if "imagenet" in experiment
        else [f"experiment={experiment}"]
    )
    assert cfg.task.name in cfg.model.tasks and cfg.task.name in cfg.data.tasks
    if not cfg.data.get("layout"):  # datasets on the user's disk are checked in the tests above
        validate(cfg, [CONFIG_DIR])


def one_batch_per_stage(trainer) -> bool:
    spelled_out = trainer.get("max_epochs") == 1 and all(
        trainer.get(f"limit_{stage}_batches") == 1 for stage in ("train", "val", "test")
    )
    return trainer.get("fast_dev_run") in (True, 1) or spelled_out


# What each debug config promises (its header comment), as a check of the composed trainer.
DEBUG_PROMISES = {
    "fdr": one_batch_per_stage,
    "limit": lambda t: t.max_epochs <= 3 and 0 < t.limit_train_batches <= 10 and t.log_every_n_steps == 1,
    "overfit": lambda t: t.get("overfit_batches") == 1 and t.max_epochs >= 10,
}


def leaves(node, prefix=""):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


@pytest.mark.parametrize("debug", options("debug"))
def test_debug_configs_do_what_they_promise(debug):
    """Each debug config composes, validates, keeps its promise (which the default trainer does not),
    and every value its file sets is in the composed config."""
    default, cfg = compose([]), compose([f"debug={debug}"])
    validate(cfg, [CONFIG_DIR])
    promise = DEBUG_PROMISES[debug]
    assert promise(cfg.trainer) and not promise(default.trainer)
    written = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "debug" / f"{debug}.yaml"))
    for key, value in leaves(written):
        assert OmegaConf.select(cfg, key) == value, key


def test_fast_dev_run_goes_end_to_end(tmp_path):
    from conftest import run_in_process

    code, record = run_in_process(
        ["debug=fdr", "data.image_size=16", "callbacks.progress_bar=null"], tmp_path / "fdr"
    )
    assert code == 0 and record["status"] == "completed"
    assert set(record["metrics"]) == {"test/acc_top1", "test/acc_top5", "test/loss"}
