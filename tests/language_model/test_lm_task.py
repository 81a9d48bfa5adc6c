"""Language modelling through the platform: CPU runs of each model, checkpoint -> evaluation exactly,
perplexity recomputed by hand, strided evaluation, generation from the run directory, bad input."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import compose, run_cli
from conftest import run_in_process as run_platform
from omegaconf import OmegaConf

import litzoo
from litzoo.datamodules.language_model.datamodule import WikiTextDataModule
from litzoo.datamodules.language_model.readers import read_lines

from .conftest import write_wikitext

QUIET = [
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
]
TINY_LSTM = [
    "model.preset=null",
    "model.embed_size=16",
    "model.hidden_size=16",
    "data.batch_size=4",
    "data.bptt=8",
    "data.eval_batch_size=2",
    "data.test_batch_size=1",
]


def lstm_args(root: Path) -> list[str]:
    return [
        "task=language_model",
        "data=wikitext2",
        f"data.root={root}",
        *TINY_LSTM,
        *QUIET,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=12",
    ]


def run_in_process(overrides: list[str], run_dir: Path) -> tuple[int, dict]:
    """The platform in this process, leaving the run directory as train.py would (with .hydra/config.yaml)."""
    code, record = run_platform(overrides, run_dir)
    OmegaConf.save(compose(overrides, run_dir=run_dir), run_dir / ".hydra" / "config.yaml")
    return code, record


def val_ppl_by_epoch(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as handle:
        return [float(row["val/ppl"]) for row in csv.DictReader(handle) if row.get("val/ppl")]


@pytest.fixture(scope="module")
def lstm_run(wikitext_root, tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("lstm") / "run"
    code, record = run_in_process(lstm_args(wikitext_root), run_dir)
    assert code == 0, record.get("error")
    return run_dir, record


def test_lstm_learns_and_logs_whole_split_perplexity(lstm_run):
    run_dir, record = lstm_run
    assert set(record["metrics"]) == {"test/ppl", "test/loss"}
    assert record["metrics"]["test/ppl"] == pytest.approx(math.exp(record["metrics"]["test/loss"]))
    first, second = val_ppl_by_epoch(run_dir)
    assert second < first < 80  # a vocabulary of ~60 words: it learns within two short epochs
    assert (run_dir / "vocab.json").is_file()


def test_test_perplexity_equals_exp_total_nll_over_total_tokens_recomputed_by_hand(lstm_run, wikitext_root):
    run_dir, record = lstm_run
    task = litzoo.load(str(run_dir))
    ids = WikiTextDataModule(root=wikitext_root, tokenizer={"kind": "word"}).prepare()["test"]
    stream = torch.from_numpy(ids.astype(np.int64))[:, None]  # test batch 1: one stream of the whole split
    total, state = 0.0, None
    with torch.no_grad():
        for start in range(0, len(stream) - 1, 8):  # BPTT 8, hidden state carried
            inputs, targets = stream[start : start + 8], stream[start + 1 : start + 9]
            inputs = inputs[: len(targets)]
            out = task.net(inputs, state)
            state = out.state
            total += F.cross_entropy(
                out.logits.reshape(-1, out.logits.shape[-1]), targets.reshape(-1), reduction="sum"
            ).item()
    assert record["metrics"]["test/ppl"] == pytest.approx(math.exp(total / (len(ids) - 1)), rel=1e-5)


def test_evaluating_the_checkpoint_again_reproduces_the_test_metrics_exactly(
    lstm_run, wikitext_root, tmp_path
):
    run_dir, record = lstm_run
    code, again = run_in_process(
        [*lstm_args(wikitext_root), "train=false", f"ckpt_path={record['best_checkpoint']}"],
        tmp_path / "eval",
    )
    assert code == 0, again.get("error")
    assert again["metrics"] == record["metrics"]


def test_generation_from_the_run_directory_is_seeded(lstm_run):
    run_dir, _ = lstm_run
    task = litzoo.load(str(run_dir))
    first = task.predict_inputs(["the company said"], top_k=5)
    assert first == task.predict_inputs(["the company said"], top_k=5)  # generation.seed fixes the draw
    (prediction,) = first
    words = prediction["continuation"].split()
    assert prediction["tokens"] == 30 and words and all(w in task.encoding.vocab for w in words)
    assert task.format_prediction(prediction).startswith("the company said >> ")
    greedy = task.predict_inputs(["the board"], temperature=0.0, max_new_tokens=5)[0]
    assert greedy["tokens"] == 5


@pytest.mark.slow
def test_predict_cli_prints_a_continuation(lstm_run):
    import subprocess
    import sys

    run_dir, _ = lstm_run
    result = subprocess.run(
        [sys.executable, "-m", "litzoo.predict", str(run_dir), "the company said"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("the company said >> ")


def test_gpt2_with_a_trained_bpe_and_strided_evaluation(tmp_path):
    root = write_wikitext(tmp_path / "wikitext-2-raw", raw=True)
    window = 16
    args = [
        "task=language_model",
        "model=gpt2",
        "model.n_layer=1",
        "model.n_embd=16",
        "model.n_head=2",
        "model.n_positions=32",
        f"model.input.bptt={window}",
        "model.tokenizer.vocab_size=300",
        "optim=adamw",
        "optim.lr=3e-3",
        "data=wikitext2",
        f"data.root={tmp_path}",
        "data.raw=true",
        "data.eval_batch_size=32",
        "data.test_batch_size=32",
        *QUIET,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=15",
    ]
    code, record = run_in_process([*args, f"data.eval_stride={window}"], tmp_path / "run")
    assert code == 0, record.get("error")
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").is_file()
    # Non-strided evaluation by hand: consecutive chunks of `window` inputs, every target scored once.
    task = litzoo.load(str(tmp_path / "run"))
    ids = torch.tensor(task.encoding.encode_lines(read_lines(root / "wiki.test.raw")), dtype=torch.long)
    total = 0.0
    with torch.no_grad():
        for begin in range(0, len(ids) - 1, window):
            inputs, targets = ids[begin : begin + window], ids[begin + 1 : begin + window + 1]
            logits = task.net(inputs[: len(targets), None]).logits[:, 0]
            total += F.cross_entropy(logits, targets, reduction="sum").item()
    assert record["metrics"]["test/ppl"] == pytest.approx(math.exp(total / (len(ids) - 1)), rel=1e-5)
    # A smaller stride gives each target more context: a different, lower perplexity, same token count.
    code, strided = run_in_process(
        [*args, "train=false", f"ckpt_path={record['best_checkpoint']}", "data.eval_stride=4"],
        tmp_path / "strided",
    )
    assert code == 0, strided.get("error")
    assert strided["metrics"]["test/ppl"] < record["metrics"]["test/ppl"]
    generated = task.predict_inputs(["the company"], max_new_tokens=8)[0]
    assert generated["tokens"] == 8 and isinstance(generated["continuation"], str)


def test_awd_lstm_with_variable_bptt_ar_tar_and_ntasgd_runs(wikitext_root, tmp_path):
    args = [
        "task=language_model",
        "model=awd_lstm",
        "model.embed_size=12",
        "model.hidden_size=16",
        "model.num_layers=2",
        "data=wikitext2",
        f"data.root={wikitext_root}",
        "data.batch_size=4",
        "data.bptt=10",
        "data.eval_batch_size=2",
        "task.nonmono=1",
        *QUIET,
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=6",
        "trainer.limit_val_batches=4",
        "trainer.limit_test_batches=4",
    ]
    code, record = run_in_process(args, tmp_path / "run")
    assert code == 0, record.get("error")
    assert math.isfinite(record["metrics"]["test/ppl"])
    checkpoint = torch.load(record["best_checkpoint"], weights_only=True)
    assert len(checkpoint["language_model"]["val_history"]) >= 1
    assert any(key.startswith("averaged.") for key in checkpoint["state_dict"])  # NT-ASGD's average is kept


def test_ntasgd_switches_to_the_averaged_weights_when_validation_stops_improving():
    from .test_lm_models import tiny_task

    task = tiny_task(
        {
            "_target_": "litzoo.models.language_model.create_lstm_lm",
            "preset": None,
            "embed_size": 4,
            "hidden_size": 4,
        },
        ntasgd=True,
        nonmono=2,
    )
    for loss in (5.0, 4.0, 3.0, 3.5):  # improving, then 3.5 > min of all but the last 2 (5.0): not yet
        task._after_validation(loss)
    assert not bool(task.asgd_active) and task.eval_net is task.net
    task._after_validation(6.0)  # worse than the best before the last two
    assert bool(task.asgd_active) and task.eval_net is task.averaged.module
    assert all(torch.equal(a, b) for a, b in zip(task.averaged.module.parameters(), task.net.parameters()))


def test_a_corpus_smaller_than_one_bptt_batch_is_refused(tmp_path):
    root = write_wikitext(tmp_path / "wt", lines_per_split=(4, 4, 4))
    code, record = run_in_process(
        [
            "task=language_model",
            "data=wikitext2",
            f"data.root={root}",
            *QUIET,
            "data.batch_size=20",
            "data.bptt=35",
        ],
        tmp_path / "run",
    )
    assert code == 3
    assert "fewer than one BPTT batch" in record["error"] and "data.batch_size" in record["error"]


@pytest.mark.slow
def test_resuming_with_a_changed_corpus_names_the_saved_vocabulary(lstm_run, wikitext_root, tmp_path):
    run_dir, _ = lstm_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    other = write_wikitext(tmp_path / "other", lines_per_split=(300, 40, 40))
    train = other / "wiki.train.tokens"
    train.write_text(train.read_text().replace("company", "firm"))
    result = run_cli([f"resume={copy}", "trainer.max_epochs=3", f"data.root={other}"], timeout=300)
    assert result.returncode == 4, result.stderr[-3000:]
    assert f"{copy / 'vocab.json'} holds a different vocabulary" in result.stderr
    assert "Traceback" not in result.stderr
