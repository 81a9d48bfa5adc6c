"""Prediction from a run directory: same answers as the trained task, from the saved vocabulary/tokenizer only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose, run_in_process
from text_fixtures import SMALL_TEXTCNN, TEXT_TINY

from litzoo.datamodules.text_classification import Vocab, read_glue_split
from litzoo.errors import CheckpointError, DataError
from litzoo.platform.checkpointing import load_checkpoint_file
from litzoo.platform.registry import build
from litzoo.predict import find_checkpoint, load_predictor, main, predict, read_inputs


def trained(overrides: list[str], run_dir: Path) -> tuple[list[str], dict]:
    overrides = ["task=text_classification", *overrides, *TEXT_TINY, "trainer.limit_train_batches=10"]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0, record.get("error")
    return overrides, record


@pytest.fixture(scope="module")
def textcnn_run(corpus_roots, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    sentiment, _ = corpus_roots
    run_dir = tmp_path_factory.mktemp("textcnn") / "run"
    overrides, record = trained([f"data.root={sentiment}", *SMALL_TEXTCNN], run_dir)
    return run_dir, overrides, record


@pytest.fixture(scope="module")
def bert_pair_run(corpus_roots, tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Path, list[str], dict]:
    sentiment, paraphrase = corpus_roots
    bert = tiny_bert
    run_dir = tmp_path_factory.mktemp("bert_pairs") / "run"
    overrides, record = trained(["model=hf_encoder", f"model.pretrained={bert}", "data=paraphrase",
                                 f"data.root={paraphrase}", "optim.lr=1e-3"], run_dir)
    return run_dir, overrides, record


def task_outputs(overrides: list[str], run_dir: Path, checkpoint: str) -> tuple[list, torch.Tensor]:
    """What the platform's own task computes on the test split: examples and probabilities, in split order."""
    cfg = compose(overrides, run_dir=run_dir)
    data = build(cfg.data, seed=cfg.seed)
    info = data.info()
    from omegaconf import OmegaConf

    task = build(cfg.task, _recursive_=False, model=OmegaConf.to_container(cfg.model, resolve=True),
                 data_info=info, optim=OmegaConf.to_container(cfg.optim, resolve=True), sched=None)
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
    got = torch.tensor([[p.probabilities[name] for name in names] for p in predictions])
    assert torch.allclose(got, expected, atol=1e-5)
    assert [p.label for p in predictions] == [names[i] for i in expected.argmax(dim=1).tolist()]
    assert all(p.score == max(p.probabilities.values()) for p in predictions)


def test_pair_prediction_with_a_fine_tuned_encoder_equals_the_task(bert_pair_run) -> None:
    run_dir, overrides, record = bert_pair_run
    examples, expected = task_outputs(overrides, run_dir, record["best_checkpoint"])
    predictor = load_predictor(run_dir)
    predictions = predictor.predict([(e.text_a, e.text_b) for e in examples], batch_size=7)
    got = torch.tensor([[p.probabilities[n] for n in ("not_equivalent", "equivalent")] for p in predictions])
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(DataError, match="classifies sentence pairs"):
        predictor.predict(["only one sentence"])


def test_run_directory_is_self_contained(textcnn_run, bert_pair_run, tmp_path: Path) -> None:
    """A copied run directory predicts alike, without the original checkpoint folder or training data."""
    for (run_dir, _, _), texts in ((textcnn_run, ["a witty film .", "dull ."]),
                                   (bert_pair_run, [("The mayor approved the merger .", "The merger was approved .")])):
        moved = tmp_path / run_dir.parent.name
        shutil.copytree(run_dir, moved)
        assert find_checkpoint(moved).parent == moved / "checkpoints"  # run.json's absolute path is stale there
        assert predict(moved, texts) == predict(run_dir, texts)


def test_vocabulary_of_another_run_is_refused(textcnn_run, tmp_path: Path) -> None:
    run_dir, _, _ = textcnn_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    Vocab(["just", "three", "words"]).save(copy / "vocab.json")
    with pytest.raises(DataError, match="has 6 entries but the checkpoint's model was trained with"):
        load_predictor(copy)
    shutil.rmtree(copy / "checkpoints")
    (copy / "run.json").unlink()
    with pytest.raises(CheckpointError, match="No checkpoint in"):
        load_predictor(copy)


def test_command_line_prints_labels_and_probabilities(textcnn_run, tmp_path: Path) -> None:
    run_dir, _, _ = textcnn_run
    command = [sys.executable, "-m", "litzoo.predict", str(run_dir)]
    result = subprocess.run([*command, "a gripping , witty film .", "--json", "the plot is dull ."],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = predict(run_dir, ["a gripping , witty film .", "the plot is dull ."])
    for row, prediction in zip(rows, expected, strict=True):
        assert row["label"] == prediction.label
        assert row["probabilities"] == pytest.approx(prediction.probabilities, abs=1e-6)


def test_command_line_reads_files_and_reports_bad_input(textcnn_run, tmp_path: Path, capsys) -> None:
    run_dir, _, _ = textcnn_run
    inputs = tmp_path / "texts.txt"
    inputs.write_text("a gripping , witty film .\nthe plot is dull .\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(inputs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = predict(run_dir, ["a gripping , witty film .", "the plot is dull ."])
    assert lines == [f"{p.label}\t{p.score:.4f}\t{p.text}" for p in expected]
    inputs.write_text("a gripping , witty film .\n\nthe plot is dull .\n", encoding="utf-8")
    assert main([str(run_dir), "--file", str(inputs)]) == 3
    assert capsys.readouterr().err.strip() == (f"Error: {inputs}, line 2: empty line. Give one text per line "
                                               "(remove empty lines).")
    assert main([str(tmp_path / "nowhere"), "some text"]) == 4
    assert "does not exist" in capsys.readouterr().err


def test_input_files_hold_one_text_or_pair_per_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("first one\tsecond one\nthird\tfourth\n\n", encoding="utf-8")
    assert read_inputs(path, pairs=True) == [("first one", "second one"), ("third", "fourth")]
    assert read_inputs(path, pairs=False) == ["first one\tsecond one", "third\tfourth"]
    path.write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.tsv, line 1: this model classifies sentence pairs; write each input "
                                        r"as first<TAB>second \(found 1 part"):
        read_inputs(path, pairs=True)


def test_dev_file_predictions_match_the_recorded_test_accuracy(textcnn_run, corpus_roots) -> None:
    """The record's test accuracy (2 batches of dev) equals the predictor's accuracy on those examples."""
    run_dir, overrides, record = textcnn_run
    sentiment, _ = corpus_roots
    dev = read_glue_split(sentiment, "sst2", "dev").examples
    predictions = predict(run_dir, [e.text_a for e in dev])
    correct = [int(p.label == ("positive" if e.label else "negative")) for p, e in zip(predictions, dev)]
    cfg = compose(overrides, run_dir=run_dir)
    data = build(cfg.data, seed=cfg.seed)
    data.setup("test")
    seen = [i for batch in list(data.batch_sampler("test"))[:2] for i in batch]  # limit_test_batches=2
    assert record["metrics"]["test/accuracy"] == pytest.approx(sum(correct[i] for i in seen) / len(seen), abs=1e-6)


def test_evaluating_a_checkpoint_reads_text_with_its_runs_vocabulary(textcnn_run, tmp_path: Path, caplog) -> None:
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
    code, failed = run_in_process([*overrides, "model.tokenizer.max_size=20", "train=false", f"ckpt_path={checkpoint}"],
                                  tmp_path / "eval2")
    assert code == 4 and "The checkpoint's model reads vocab ids from a vocabulary of" in failed["error"]
