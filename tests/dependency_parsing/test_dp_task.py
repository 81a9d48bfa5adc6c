"""Dependency parsing through the platform: configs, a CPU run, exact re-evaluation, predicted CoNLL-U, prediction."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from conftest import compose, run_in_process
from omegaconf import OmegaConf

from litzoo.errors import ConfigError
from litzoo.metrics.dependency_parsing import score_files
from litzoo.text.conllu import read_treebank

from .conftest import FAST, TINY_PARSER, treebank_overrides


def base(root: Path) -> list[str]:
    return ["task=dependency_parsing", *FAST, *TINY_PARSER, *treebank_overrides(root)]


def test_the_task_defaults_to_the_embedded_treebank_and_monitors_las():
    cfg = compose(["task=dependency_parsing"])
    assert (cfg.model.name, cfg.data.name, cfg.task.monitor, cfg.task.monitor_mode) == (
        "biaffine_small",
        "toy_treebank",
        "val/las",
        "max",
    )
    assert cfg.model.decoder == "mst" and cfg.task.punct == "include"
    assert compose(["task=dependency_parsing", "model=biaffine"]).model.lstm_layers == 3  # the paper's size


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.decoder=greedy", "model.decoder='greedy' is unknown"),
        ("model.features=[chars,pos]", "pos unknown"),
        ("task.punct=skip", "punct='skip' must be `include`"),
    ],
)
def test_wrong_parser_settings_are_refused(override, message, treebank_root, tmp_path):
    code, record = run_in_process([*base(treebank_root), override], tmp_path / "run")
    assert code == ConfigError.exit_code and message in record["error"]


def test_the_model_check_runs_in_validation_before_torch(treebank_root):
    from litzoo.platform.validate import validate

    cfg = compose(
        [
            "task=dependency_parsing",
            "model=biaffine",
            "model.decoder=greedy",
            *treebank_overrides(treebank_root),
        ]
    )
    with pytest.raises(ConfigError, match="model.decoder='greedy'"):
        validate(cfg, [Path("conf")])


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_logged(overrides: list[str], run_dir: Path) -> tuple[int, dict, str]:
    """A run in this process, with what it logged to the `litzoo` logger (train.log in a real run)."""
    handler, logger = Messages(), logging.getLogger("litzoo")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        code, record = run_in_process(overrides, run_dir)
        # What Hydra writes in a real run (the in-process runner does not): a run directory is a model.
        OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    return code, record, "\n".join(handler.lines)


@pytest.fixture(scope="module")
def parser_run(treebank_root, tmp_path_factory) -> tuple[Path, dict, str]:
    run_dir = tmp_path_factory.mktemp("parser") / "run"
    code, record, log = run_logged([*base(treebank_root), "trainer.limit_train_batches=8"], run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    return run_dir, record, log


def test_a_cpu_run_logs_attachment_scores_and_the_relation_table(parser_run):
    run_dir, record, log = parser_run
    metrics = record["metrics"]
    assert set(metrics) == {"test/uas", "test/las", "test/ucm", "test/lcm"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values()) and metrics["test/las"] <= metrics["test/uas"]
    assert "Labeled attachment per relation (test, test; punctuation included)" in log
    assert re.search(r"^nsubj\s+\d+\s+\d+", log, re.MULTILINE)


def test_predicted_trees_are_valid_conllu_that_rescore_to_the_logged_numbers(parser_run, treebank_root):
    run_dir, record, _ = parser_run
    gold_path = next(treebank_root.glob("*-ud-test.conllu"))
    predicted = read_treebank(run_dir / "parsed_test.conllu")  # valid CoNLL-U: checked trees, one root each
    gold = read_treebank(gold_path)
    assert len(predicted) == len(gold)
    for ours, theirs in zip(predicted, gold):
        assert sum(h == 0 for h in ours.heads) == 1
        for old, new in zip(theirs.lines, ours.lines):
            old_columns, new_columns = old.split("\t"), new.split("\t")
            assert new_columns[:6] == old_columns[:6] and new_columns[8:] == old_columns[8:]
    scores = score_files(str(gold_path), str(run_dir / "parsed_test.conllu"))
    assert scores.uas == pytest.approx(record["metrics"]["test/uas"], abs=1e-6)
    assert scores.las == pytest.approx(record["metrics"]["test/las"], abs=1e-6)


def test_evaluating_the_checkpoint_reproduces_the_metrics_exactly(parser_run, treebank_root, tmp_path):
    run_dir, record, _ = parser_run
    code, evaluated = run_in_process(
        [*base(treebank_root), "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval"
    )
    assert code == 0, evaluated.get("error")
    assert evaluated["metrics"] == record["metrics"]
    assert (tmp_path / "eval" / "parsed_test.conllu").read_bytes() == (
        run_dir / "parsed_test.conllu"
    ).read_bytes()


def test_eisner_and_excluded_punctuation_are_options(parser_run, treebank_root, tmp_path):
    _, record, _ = parser_run
    code, evaluated, log = run_logged(
        [
            *base(treebank_root),
            "train=false",
            f"ckpt_path={record['best_checkpoint']}",
            "model.decoder=eisner",
            "task.punct=exclude",
        ],
        tmp_path / "eisner",
    )
    assert code == 0, evaluated.get("error")
    assert set(evaluated["metrics"]) == set(record["metrics"]) and evaluated["metrics"] != record["metrics"]
    assert "punctuation excluded" in log


def test_prediction_from_the_run_directory_parses_files_and_raw_sentences(
    parser_run, treebank_root, tmp_path
):
    import litzoo

    run_dir, _, _ = parser_run
    parser = litzoo.load(str(run_dir))
    gold_path = next(treebank_root.glob("*-ud-test.conllu"))
    from_file = parser.predict_inputs([str(gold_path)], batch_size=7)
    assert [p["conllu"] for p in from_file] == [
        b + "\n\n" for b in (run_dir / "parsed_test.conllu").read_text().split("\n\n")[:-1]
    ]
    raw = parser.predict_inputs(["the dog ate the cake with a fork .", "Mary slept"])
    assert [p["words"] for p in raw] == [
        ["the", "dog", "ate", "the", "cake", "with", "a", "fork", "."],
        ["Mary", "slept"],
    ]
    text = "".join(parser.format_prediction(p) + "\n" for p in raw)  # as predict prints them
    written = tmp_path / "parsed.conllu"
    written.write_text(text)
    reread = read_treebank(written)
    assert [s.heads for s in reread] == [p["heads"] for p in raw]
    assert parser.write_predictions(raw, tmp_path / "out.conllu").read_text() == text


def test_the_transformer_encoder_parses_with_first_subword_pooling(
    treebank_root, tiny_bert_parser_checkpoint, tmp_path
):
    import litzoo

    run_dir = tmp_path / "hf"
    code, record, _ = run_logged(
        [
            "task=dependency_parsing",
            *FAST,
            *treebank_overrides(treebank_root),
            "model=biaffine_hf",
            f"model.pretrained={tiny_bert_parser_checkpoint}",
            "model.arc_mlp=16",
            "model.rel_mlp=8",
        ],
        run_dir,
    )
    assert code == 0, record.get("error")
    assert 0 <= record["metrics"]["test/las"] <= record["metrics"]["test/uas"] <= 1
    assert (run_dir / "tokenizer" / "config.json").is_file()
    parser = litzoo.load(str(run_dir))
    (prediction,) = parser.predict_inputs(["the cat slept ."])
    assert len(prediction["heads"]) == 4 and prediction["heads"].count(0) == 1


def test_word_starts_point_at_each_words_first_subword(tiny_bert_parser_checkpoint):
    from transformers import AutoTokenizer

    from litzoo.text.conllu import sentence_from_tokens
    from litzoo.text.parser_inputs import SubwordEncoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_parser_checkpoint)
    encoded = SubwordEncoder(tokenizer).encode(sentence_from_tokens(["the", "zzdog", "ran"]))
    tokens = tokenizer.convert_ids_to_tokens(encoded["subwords"].tolist())
    assert tokens[0] == "[CLS]" and [tokens[i] for i in encoded["word_starts"][1:]][0] == "the"
    assert encoded["word_starts"].tolist()[0] == 0 and len(encoded["word_starts"]) == 4
    assert torch.tensor(encoded["word_starts"]).diff().gt(0).all()


def test_the_ptb_recipe_composes_with_its_published_number_and_the_papers_settings():
    cfg = compose(["experiment=ptb/biaffine", "data.train_file=t", "data.val_file=d", "model.embeddings=g"])
    assert cfg.zoo.reference.value == 0.9408 and cfg.zoo.reference.metric == "test/las"
    # Batches of about 5000 words: the token-budget sampler replaces the family's bucket sampler whole
    # (none of FixedBucketSampler's arguments, which TokenBudgetSampler refuses, are left over).
    assert OmegaConf.to_container(cfg.data.sampler) == {
        "_target_": "litzoo.data.samplers.TokenBudgetSampler",
        "_partial_": True,
        "max_tokens": 5000,
        "max_sentences": None,
    }
    assert (cfg.model.name, cfg.model.lstm_layers, cfg.model.lstm_hidden, cfg.model.decoder) == (
        "biaffine",
        3,
        400,
        "eisner",
    )
    assert cfg.task.punct == "exclude" and list(cfg.optim.betas) == [0.9, 0.9] and cfg.data.format == "conllx"


def test_the_exponential_decay_schedule_follows_dozat_and_manning():
    from litzoo.tasks.dependency_parsing import exponential_decay

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    schedule = exponential_decay(
        optimizer, total_steps=20000, steps_per_epoch=100, decay_rate=0.75, decay_steps=5000
    )
    factors = [schedule.lr_lambdas[0](step) for step in (0, 5000, 10000)]
    assert factors == [1.0, 0.75, 0.75**2]


def test_the_predict_command_prints_and_writes_conllu(parser_run, treebank_root, tmp_path, capsys):
    from litzoo.predict import main

    run_dir, _, _ = parser_run
    gold_path = next(treebank_root.glob("*-ud-test.conllu"))
    output = tmp_path / "parsed.conllu"
    assert main([str(run_dir), str(gold_path), "-o", str(output)]) == 0
    expected = (run_dir / "parsed_test.conllu").read_text()
    assert output.read_text() == expected
    assert capsys.readouterr().out == expected  # the printed blocks make the same CoNLL-U file
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("the dog slept .\nMary ate the cake\n")
    assert main([str(run_dir), "--file", str(sentences), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and '"words": ["the", "dog", "slept", "."]' in lines[0]
