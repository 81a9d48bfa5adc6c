"""Action recognition through the platform (slow: real runs on the tiny moving shapes): the metric keys and
saved scores, train -> checkpoint -> train=false exact, prediction from the run directory equal to the test
protocol's scores, bad videos and labels refused naming the file (or skipped), 2 CPU processes == 1, and
kill -9 + resume identical to the run left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FAST_RUN, compose, read_json, run_cli, run_in_process
from omegaconf import OmegaConf
from test_resume import ENV, assert_same_run, kill_9_and_resume

from .conftest import shapes_overrides

pytestmark = pytest.mark.slow

METRICS = {"acc_top1", "acc_top5", "video_acc_top1", "video_acc_top5", "mean_class_acc", "loss"}
RUN = [
    "task=action_recognition",
    *FAST_RUN,
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=null",
    "trainer.limit_val_batches=null",
    "trainer.limit_test_batches=null",
    "model.widths=[8,8,16,16]",
]


@pytest.fixture(scope="module")
def ar_run(shapes_root, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    run_dir = tmp_path_factory.mktemp("ar") / "run"
    overrides = [*RUN, *shapes_overrides(shapes_root)]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir, record, overrides


def test_a_run_logs_clip_and_video_metrics_and_saves_the_confusion_matrix(ar_run):
    run_dir, record, _ = ar_run
    assert set(record["metrics"]) == {f"test/{m}" for m in METRICS}
    saved = json.loads((run_dir / "scores_test.json").read_text())
    assert saved["videos"] == 6 and saved["clips"] == 12  # 6 test videos x test_clips=2
    assert sum(map(sum, saved["confusion"])) == 6
    assert saved["metrics"]["video_acc_top1"] == pytest.approx(record["metrics"]["test/video_acc_top1"])
    for stage in ("val", "test"):
        assert (run_dir / f"confusion_matrix_{stage}.png").stat().st_size > 1000
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"val/{m}" for m in METRICS} <= set(header)


def test_the_best_checkpoint_evaluates_to_the_same_metrics_exactly(ar_run, tmp_path):
    run_dir, record, overrides = ar_run
    code, evaluated = run_in_process(
        [*overrides, "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "e"
    )
    assert code == 0, evaluated.get("error")
    assert evaluated["metrics"] == record["metrics"]  # every digit
    assert (tmp_path / "e" / "scores_test.json").read_text() == (run_dir / "scores_test.json").read_text()


def test_prediction_from_the_run_directory_is_the_test_protocol_of_the_task(ar_run, shapes_root, capsys):
    from litzoo import load
    from litzoo.predict import main

    run_dir, _, _ = ar_run
    line = (shapes_root / "videos" / "test.txt").read_text().splitlines()[2]
    video = shapes_root / "videos" / line.split()[0]
    assert main([str(run_dir), str(video)]) == 0
    printed = capsys.readouterr().out.strip().split("\t")
    assert printed[0] == str(video) and len(printed) == 6  # the file and the top-5 classes
    task = load(run_dir)
    dataset = _test_dataset(run_dir, shapes_root)
    views = torch.stack([dataset[4][0], dataset[5][0]])  # video 2's two clips (each with its 3 crops)
    with torch.no_grad():
        expected = task.clip_scores(views).mean(0)
    top = task.predict_inputs([str(video)])[0]["top_k"]
    assert [t["index"] for t in top] == expected.topk(5).indices.tolist()
    assert [t["score"] for t in top] == pytest.approx(expected.topk(5).values.tolist(), abs=1e-6)


def _test_dataset(run_dir: Path, shapes_root: Path):
    from hydra.utils import instantiate

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    data = {
        k: v
        for k, v in OmegaConf.to_container(cfg.data, resolve=True).items()
        if k not in ("name", "tasks", "requires", "layout")
    }
    datamodule = instantiate(data)
    datamodule.setup("test")
    return datamodule.test_set


def list_root(tmp_path: Path, shapes_root: Path, extra: str = "") -> Path:
    """A video_list root whose lists name the tiny dataset's videos by absolute path (`extra` lines first in train.txt)."""
    root = tmp_path / "list"
    root.mkdir()
    for split in ("train", "val"):
        lines = (shapes_root / "videos" / f"{split}.txt").read_text().splitlines()
        text = "\n".join(
            f"{shapes_root / 'videos' / p} {label}" for p, label in (line.split() for line in lines)
        )
        (root / f"{split}.txt").write_text((extra if split == "train" else "") + text + "\n")
    (root / "classes.txt").write_text((shapes_root / "videos" / "classes.txt").read_text())
    return root


LIST_RUN = [
    *RUN,
    "data=video_list",
    "data.num_workers=0",
    "data.batch_size=4",
    "data.crop_size=[24,24]",
    "data.train_short_side=24",
    "data.eval_short_side=24",
    "data.clip_len=4",
    "data.test_clips=1",
    "data.test_crops=1",
    "data.shuffle=false",
    "trainer.max_epochs=1",
]


def test_a_zero_length_video_stops_the_run_naming_it_or_is_skipped(shapes_root, tmp_path):
    root = list_root(tmp_path, shapes_root, "empty.mp4 0\n")
    (root / "empty.mp4").write_bytes(b"")
    result = run_cli([*LIST_RUN, f"data.root={root}", f"hydra.run.dir={tmp_path / 'run'}"], env=ENV)
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"The video {root / 'empty.mp4'} cannot be decoded (the file is empty: 0 bytes)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    code, record = run_in_process(
        [*LIST_RUN, f"data.root={root}", "data.bad_samples=skip"], tmp_path / "skip"
    )
    assert code == 0 and record["bad_samples"]["count"] == 1
    assert "empty.mp4" in record["bad_samples"]["samples"][0]["reason"]


def test_a_label_outside_the_class_list_stops_before_training(shapes_root, tmp_path):
    first = (shapes_root / "videos" / "train.txt").read_text().split()[0]
    root = list_root(tmp_path, shapes_root, f"{shapes_root / 'videos' / first} 6\n")
    result = run_cli([*LIST_RUN, f"data.root={root}", f"hydra.run.dir={tmp_path / 'run'}"], env=ENV)
    assert (
        result.returncode == 3 and "has label 6, but" in result.stderr and "lists 6 classes" in result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_two_cpu_processes_evaluate_to_the_single_process_metrics(ar_run, tmp_path):
    _, record, overrides = ar_run
    evaluate = [*overrides, "train=false", f"ckpt_path={record['best_checkpoint']}"]
    code, single = run_in_process(evaluate, tmp_path / "single")
    assert code == 0, single.get("error")
    result = run_cli(
        [*evaluate, "trainer=ddp_cpu", f"hydra.run.dir={tmp_path / 'ddp'}"], env=ENV, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(tmp_path / "ddp" / "run.json")["metrics"] == pytest.approx(single["metrics"], rel=1e-6)
    assert json.loads((tmp_path / "ddp" / "scores_test.json").read_text())["clips"] == 12  # both ranks' clips


def test_kill_9_mid_epoch_then_resume_matches_the_uninterrupted_run(shapes_root, tmp_path):
    args = [
        *RUN,
        *shapes_overrides(shapes_root),
        "data.num_workers=2",
        "data.batch_size=2",
        "trainer.max_epochs=2",
        "callbacks.step_checkpoint.every_n_train_steps=2",
    ]
    reference = tmp_path / "reference"
    result = run_cli([*args, f"hydra.run.dir={reference}"], env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "run"
    kill_9_and_resume(args, run_dir, 4, pause=0.2)  # mid-epoch 0 (6 steps per epoch)
    assert_same_run(run_dir, reference)


def test_the_embedded_default_learns_motion(tmp_path):
    """`python train.py task=action_recognition` as shipped (360 generated videos, 12 epochs, about a minute on
    two quiet cores): measured 1.000 val / 0.972 test video top-1, chance 1/6; TSN (frame averaging) stays at
    chance on the same videos (0.125 test), so what the default learns is the motion."""
    result = run_cli(
        [
            "task=action_recognition",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=ENV,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_json(tmp_path / "run" / "run.json")["metrics"]
    assert metrics["test/video_acc_top1"] >= 0.85, metrics
