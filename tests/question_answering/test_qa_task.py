"""Question answering through the platform: a CPU run, logged = official scores of the saved files,
train -> checkpoint -> train=false exact, prediction from the run directory, bad config refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import compose, run_in_process
from omegaconf import OmegaConf

from litzoo.errors import ConfigError
from litzoo.metrics.squad import evaluate_v2, gold_from_squad

from .conftest import qa_overrides


def test_the_task_defaults_to_minilm_on_the_embedded_squad():
    cfg = compose(["task=question_answering"])
    assert (cfg.model.name, cfg.data.name, cfg.task.monitor) == ("minilm_l6", "toy_squad", "val/f1")
    assert cfg.model._target_ == "litzoo.models.question_answering.create_span_model"
    assert compose(["task=question_answering", "model=bert_base"]).model.tasks[-1] == "question_answering"


def test_a_stride_that_cannot_window_is_refused_before_training(toy_root, tiny_qa_bert, tmp_path):
    code, record = run_in_process(
        [*qa_overrides(toy_root, tiny_qa_bert), "data.doc_stride=100"], tmp_path / "r"
    )
    assert code == ConfigError.exit_code and "data.doc_stride=100 is the overlap" in record["error"]


@pytest.fixture(scope="module")
def qa_run(toy_root, tiny_qa_bert, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    run_dir = tmp_path_factory.mktemp("qa") / "run"
    overrides = qa_overrides(toy_root, tiny_qa_bert)
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return run_dir, record, overrides


def test_logged_metrics_are_the_official_scores_of_the_saved_files(qa_run, toy_root):
    run_dir, record, _ = qa_run
    metrics = record["metrics"]
    assert {"test/exact_match", "test/f1", "test/has_ans_f1", "test/no_ans_f1", "test/best_f1"} <= set(
        metrics
    )
    predictions = json.loads((run_dir / "predictions.json").read_text())
    odds = json.loads((run_dir / "null_odds.json").read_text())
    gold = gold_from_squad(json.loads((toy_root / "dev-v2.0.json").read_text()))
    assert set(predictions) == set(gold) == set(odds)  # every dev question, in the official format
    official = evaluate_v2(gold, predictions, odds, metrics["test/null_threshold"])
    for key, name in (
        ("exact", "exact_match"),
        ("f1", "f1"),
        ("HasAns_f1", "has_ans_f1"),
        ("best_f1", "best_f1"),
    ):
        assert metrics[f"test/{name}"] == pytest.approx(official[key], abs=1e-4)


def test_checkpoint_reevaluation_is_exact(qa_run, tmp_path):
    run_dir, record, overrides = qa_run
    code, again = run_in_process(
        [*overrides, "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "e"
    )
    assert code == 0 and again["metrics"] == record["metrics"]
    assert (tmp_path / "e" / "predictions.json").read_bytes() == (run_dir / "predictions.json").read_bytes()


def test_prediction_from_the_run_directory_equals_the_test_predictions(qa_run, toy_root):
    import litzoo

    run_dir, _, _ = qa_run
    task = litzoo.load(run_dir)
    saved = json.loads((run_dir / "predictions.json").read_text())
    rows = task.predict_inputs([str(toy_root / "dev-v2.0.json")], batch_size=7)
    assert task.predictions_file(rows) == saved
    dataset = json.loads((toy_root / "dev-v2.0.json").read_text())
    paragraph = dataset["data"][0]["paragraphs"][0]
    qa = paragraph["qas"][0]
    one = task.predict_inputs(
        [
            json.dumps({"question": qa["question"], "context": paragraph["context"]}),
            f"{qa['question']}\t{paragraph['context']}",
        ],
        top_k=3,
    )
    assert one[0]["answer"] == one[1]["answer"] == saved[qa["id"]] and len(one[0]["nbest"]) == 3
    assert task.format_prediction(one[0]) == (saved[qa["id"]] or "no answer")
    if one[0]["answer"]:
        assert paragraph["context"][one[0]["start"] :].startswith(one[0]["answer"])


def test_the_command_line_answers_question_and_context_options(qa_run, toy_root, capsys):
    from litzoo.predict import main

    run_dir, _, _ = qa_run
    saved = json.loads((run_dir / "predictions.json").read_text())
    paragraph = json.loads((toy_root / "dev-v2.0.json").read_text())["data"][0]["paragraphs"][0]
    first, second = paragraph["qas"][:2]
    argv = [str(run_dir), "--question", first["question"], "--context", paragraph["context"]]
    argv += ["--question", second["question"], "--context", paragraph["context"]]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [saved[first["id"]] or "no answer", saved[second["id"]] or "no answer"]
    assert main([*argv[:5], "--question", "Who?"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Error: 2 --question but 1 --context") and err.count("\n") == 1
    with pytest.raises(SystemExit):  # the options belong to question-answering runs only
        main([str(toy_root), "--question", "Who?", "--context", "Nobody."])
    assert "unrecognized arguments: --question" in capsys.readouterr().err
