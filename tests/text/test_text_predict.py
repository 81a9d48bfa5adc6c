"""Prediction from a text run directory (`litzoo.load`, `python -m litzoo.predict`): the same answers as the
trained task, from the saved vocabulary/tokenizer only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose, run_in_process
from omegaconf import OmegaConf
from text_fixtures import SMALL_TEXTCNN, TEXT_TINY

import litzoo
from litzoo.datamodules.text_classification import Vocab, read_glue_split
from litzoo.errors import CheckpointError, DataError
from litzoo.platform.checkpointing import load_checkpoint_file
from litzoo.platform.registry import build
from litzoo.platform.run_dir import RunDir
from litzoo.predict import main


def trained(overrides: list[str], run_dir: Path) -> tuple[list[str], dict]:
    overrides = ["task=text_classification", *overrides, *TEXT_TINY, "trainer.limit_train_batches=10"]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0, record.get("error")
    # The composed config, as Hydra's job saves it (it names the task prediction rebuilds).
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return overrides, record


def predict(run_dir: Path, texts: list, **options) -> list[dict]:
    return litzoo.load(str(run_dir)).predict_inputs(texts, **options)


@pytest.fixture(scope="module")
def textcnn_run(corpus_roots, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    sentiment, _ = corpus_roots
    run_dir = tmp_path_factory.mktemp("textcnn") / "run"
    overrides, record = trained([f"data.root={sentiment}", *SMALL_TEXTCNN], run_dir)
    return run_dir, overrides, record


@pytest.fixture(scope="module")
def bert_pair_run(
    corpus_roots, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], dict]:
    sentiment, paraphrase = corpus_roots
    bert = tiny_bert
    run_dir = tmp_path_factory.mktemp("bert_pairs") / "run"
    overrides, record = trained(
        [
            "model=hf_encoder",
            f"model.pretrained={bert}",
            "data=paraphrase",
            f"data.root={paraphrase}",
            "optim.lr=1e-3",
        ],
        run_dir,
    )
    return run_dir, overrides, record


def task_outputs(overrides: list[str], run_dir: Path, checkpoint: str) -> tuple[list, torch.Tensor]:
    """What the platform's own task computes on the test split: examples and probabilities, in split order."""
    cfg = compose(overrides, run_dir=run_dir)
    data = build(cfg.data, seed=cfg.seed)
    info = data.info()
    from omegaconf import OmegaConf

    task = build(
        cfg.task,
        _recursive_=False,
        model=OmegaConf.to_container(cfg.model, resolve=True),
        data_info=info,
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        sched=None,
    )
    task.load_state_dict(load_checkpoint_file(checkpoint)["state_dict"])
    task.eval()
    data.setup("test")
    probabilities = torch.empty(len(data.test_set), info["num_labels"])
    with torch.no_grad():
        # The platform's bucketed batches, in the sampler's order: scatter them back to split order.
        for indices, batch in zip(data.batch_sampler("test"), data.test_dataloader()):
            probabilities[indices] = task.probabilities(task(batch))
    return data.prepare().test[0].examples, probabilities


def test_prediction_equals_the_task_on_the_same_inputs(textcnn_run) -> None:
    run_dir, overrides, record = textcnn_run
    examples, expected = task_outputs(overrides, run_dir, record["best_checkpoint"])
    predictions = predict(run_dir, [e.text_a for e in examples])
    names = ["negative", "positive"]
    got = torch.tensor([[p["probabilities"][name] for name in names] for p in predictions])
    assert torch.allclose(got, expected, atol=1e-5)
    assert [p["label"] for p in predictions] == [names[i] for i in expected.argmax(dim=1).tolist()]
    assert all(p["score"] == max(p["probabilities"].values()) for p in predictions)
    best = predict(run_dir, [e.text_a for e in examples[:3]], top_k=1)
    assert [list(p["probabilities"]) for p in best] == [[p["label"]] for p in predictions[:3]]


def test_pair_prediction_with_a_fine_tuned_encoder_equals_the_task(bert_pair_run) -> None:
    run_dir, overrides, record = bert_pair_run
    examples, expected = task_outputs(overrides, run_dir, record["best_checkpoint"])
    task = litzoo.load(str(run_dir))
    predictions = task.predict_inputs([(e.text_a, e.text_b) for e in examples], batch_size=7)
    got = torch.tensor(
        [[p["probabilities"][n] for n in ("not_equivalent", "equivalent")] for p in predictions]
    )
    assert torch.allclose(got, expected, atol=1e-5)
    # The command line's form of a pair, first<TAB>second, reads the same.
    assert task.predict_inputs([f"{e.text_a}\t{e.text_b}" for e in examples[:5]]) == predictions[:5]
    with pytest.raises(
        DataError,
        match=r"Input 1: this model classifies sentence pairs; write each input as "
        r"first<TAB>second \(found 1 part",
    ):
        task.predict_inputs(["only one sentence"])
    with pytest.raises(DataError, match=r"Input 2: this model classifies sentence pairs.*\(found 3 part"):
        task.predict_inputs(["a\tb", "a\tb\tc"])


def test_run_directory_is_self_contained(textcnn_run, bert_pair_run, tmp_path: Path) -> None:
    """A copied run directory predicts alike, without the original checkpoint folder or training data."""
    for (run_dir, _, _), texts in (
        (textcnn_run, ["a witty film .", "dull ."]),
        (bert_pair_run, [("The mayor approved the merger .", "The merger was approved .")]),
    ):
        moved = tmp_path / run_dir.parent.name
        shutil.copytree(run_dir, moved)
        assert (
            RunDir(moved).checkpoint().parent == moved / "checkpoints"
        )  # run.json's absolute path is stale there
        assert predict(moved, texts) == predict(run_dir, texts)


def test_vocabulary_of_another_run_is_refused(textcnn_run, tmp_path: Path) -> None:
    run_dir, _, _ = textcnn_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    Vocab(["just", "three", "words"]).save(copy / "vocab.json")
    with pytest.raises(DataError, match="has 6 entries but the checkpoint's model was trained with"):
        litzoo.load(str(copy))
    shutil.rmtree(copy / "checkpoints")
    (copy / "run.json").unlink()
    with pytest.raises(CheckpointError, match="No checkpoint in"):
        litzoo.load(str(copy))


def test_command_line_prints_labels_and_probabilities(textcnn_run, tmp_path: Path) -> None:
    run_dir, _, _ = textcnn_run
    command = [sys.executable, "-m", "litzoo.predict", str(run_dir)]
    result = subprocess.run(
        [*command, "a gripping , witty film .", "--json", "the plot is dull ."],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = predict(run_dir, ["a gripping , witty film .", "the plot is dull ."])
    for row, prediction in zip(rows, expected, strict=True):
        assert row["label"] == prediction["label"]
        assert row["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-6)


def test_command_line_reads_files_and_reports_bad_input(textcnn_run, tmp_path: Path, capsys) -> None:
    run_dir, _, _ = textcnn_run
    inputs = tmp_path / "texts.txt"
    inputs.write_text("a gripping , witty film .\nthe plot is dull .\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(inputs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = predict(run_dir, ["a gripping , witty film .", "the plot is dull ."])
    assert lines == [f"{p['label']}\t{p['score']:.4f}\t{p['text']}" for p in expected]
    inputs.write_text("a gripping , witty film .\n\nthe plot is dull .\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(inputs)]) == 3
    assert capsys.readouterr().err.strip() == (
        f"Error: {inputs}, line 2: empty line. Give one input per line (remove empty lines)."
    )
    assert main([str(tmp_path / "nowhere"), "some text"]) == 4
    assert "does not exist" in capsys.readouterr().err
    output = tmp_path / "predictions.json"
    assert main([str(run_dir), "dull .", "--output", str(output)]) == 0
    assert json.loads(output.read_text()) == predict(run_dir, ["dull ."])


def test_pair_files_hold_one_pair_per_line(bert_pair_run, tmp_path: Path, capsys) -> None:
    run_dir, _, _ = bert_pair_run
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "The mayor approved it .\tIt was approved by the mayor .\nno tab here\n", encoding="utf-8"
    )
    assert main([str(run_dir), "--file", str(path)]) == 3
    assert capsys.readouterr().err.strip() == (
        "Error: Input 2: this model classifies sentence pairs; write each input as first<TAB>second (found 1 "
        "part(s)), or give (first, second) tuples in Python."
    )
    path.write_text("The mayor approved it .\tIt was approved by the mayor .\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(path)]) == 0
    (row,) = predict(run_dir, [("The mayor approved it .", "It was approved by the mayor .")])
    assert capsys.readouterr().out == (
        f"{row['label']}\t{row['score']:.4f}\tThe mayor approved it .\tIt was approved by the mayor .\n"
    )


def test_dev_file_predictions_match_the_recorded_test_accuracy(textcnn_run, corpus_roots) -> None:
    """The record's test accuracy (2 batches of dev) equals the predictor's accuracy on those examples."""
    run_dir, overrides, record = textcnn_run
    sentiment, _ = corpus_roots
    dev = read_glue_split(sentiment, "sst2", "dev").examples
    predictions = predict(run_dir, [e.text_a for e in dev])
    correct = [int(p["label"] == ("positive" if e.label else "negative")) for p, e in zip(predictions, dev)]
    cfg = compose(overrides, run_dir=run_dir)
    data = build(cfg.data, seed=cfg.seed)
    data.setup("test")
    seen = [i for batch in list(data.batch_sampler("test"))[:2] for i in batch]  # limit_test_batches=2
    assert record["metrics"]["test/accuracy"] == pytest.approx(
        sum(correct[i] for i in seen) / len(seen), abs=1e-6
    )


def test_evaluating_a_checkpoint_reads_text_with_its_runs_vocabulary(
    textcnn_run, tmp_path: Path, caplog
) -> None:
    import logging

    run_dir, overrides, record = textcnn_run
    evaluate = [*overrides, "train=false", f"ckpt_path={record['best_checkpoint']}"]
    with caplog.at_level(logging.INFO, logger="litzoo"):
        code, evaluated = run_in_process(evaluate, tmp_path / "eval")
    assert code == 0, evaluated.get("error")
    assert f"Using the vocabulary of the checkpoint's run, {run_dir / 'vocab.json'}" in caplog.text
    assert evaluated["metrics"] == record["metrics"]
    # Without the saved vocabulary, one built with other settings is refused by name, not by tensor shapes.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "vocab.json").unlink()
    checkpoint = copy / "checkpoints" / Path(record["best_checkpoint"]).name
    code, failed = run_in_process(
        [*overrides, "model.tokenizer.max_size=20", "train=false", f"ckpt_path={checkpoint}"],
        tmp_path / "eval2",
    )
    assert code == 4 and "The checkpoint's model reads vocab ids from a vocabulary of" in failed["error"]


def test_text_lines_are_label_probability_text() -> None:
    """The printed line of a class, a pair and a regression score (the task's format_prediction reads only the row)."""
    from litzoo.tasks.text_classification import TextClassificationTask

    line = TextClassificationTask.format_prediction
    single = {"text": "dull .", "text_pair": None, "label": "negative", "score": 0.97924, "probabilities": {}}
    assert line(None, single) == "negative\t0.9792\tdull ."
    pair = {**single, "text": "a", "text_pair": "b", "label": "equivalent", "score": 0.5}
    assert line(None, pair) == "equivalent\t0.5000\ta\tb"
    score = {"text": "a", "text_pair": "b", "label": 3.25, "score": 3.25, "probabilities": None}
    assert line(None, score) == "3.2500\ta\tb"
