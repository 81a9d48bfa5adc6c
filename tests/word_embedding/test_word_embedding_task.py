"""task=word_embedding through the platform: a CPU run on the Lee corpus, exact re-evaluation of its
checkpoint, vectors gensim loads, nearest neighbours from the run directory, bad input refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIG_DIR, FAST_RUN, compose, run_in_process

from litzoo.errors import DataError
from litzoo.platform.validate import validate

SMALL = [
    *[o for o in FAST_RUN if "limit_train" not in o],
    "task=word_embedding",
    "data=lee",
    "model.dim=20",
    "trainer.limit_val_batches=null",
    "trainer.limit_test_batches=null",
]


def lee(root: Path) -> list[str]:
    return [f"data.root={root.parent}"]


@pytest.fixture(scope="module")
def lee_run(lee_corpus, tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("we") / "run"
    from omegaconf import OmegaConf

    overrides = [*SMALL, *lee(lee_corpus)]
    code, record = run_in_process(overrides, run_dir)
    assert code == 0 and record["status"] == "completed", record.get("error")
    OmegaConf.save(compose(overrides), run_dir / ".hydra" / "config.yaml")  # what Hydra writes for a real run
    return run_dir, record


@pytest.mark.slow
def test_cpu_run_logs_similarity_and_analogy_scores(lee_run):
    run_dir, record = lee_run
    metrics = record["metrics"]
    assert {
        "test/wordsim353_spearman",
        "test/simlex999_spearman",
        "test/analogy_acc",
        "test/analogy_oov",
        "test/wordsim353_oov",
        "test/analogy_3cosmul_acc",
    } <= set(metrics)
    assert (
        metrics["test/wordsim353_oov"] == 294 and metrics["test/wordsim353_scored"] == 59
    )  # 1799-word vocabulary
    assert metrics["test/analogy_searched_words"] == 1799
    assert (run_dir / "vocab.txt").read_text().splitlines()[0].split()[0] == "the"


@pytest.mark.slow
def test_exported_vectors_load_in_gensim_and_the_checkpoint_reevaluates_exactly(
    lee_run, lee_corpus, tmp_path
):
    from gensim.models import KeyedVectors

    import litzoo

    run_dir, record = lee_run
    kv = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    task = litzoo.load(run_dir)
    assert kv.index_to_key == task.words
    assert np.array_equal(kv.vectors, task.net.word_vectors().numpy())
    code, again = run_in_process(
        [*SMALL, *lee(lee_corpus), "train=false", f"ckpt_path={record['best_checkpoint']}"], tmp_path / "eval"
    )
    assert code == 0 and again["metrics"] == record["metrics"]


@pytest.mark.slow
def test_nearest_neighbours_from_the_run_directory(lee_run, capsys):
    from litzoo.predict import main

    run_dir, _ = lee_run
    assert main([str(run_dir), "fire", "police - man + woman"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("fire\t") and len(lines[0].split("\t")) == 11
    assert main([str(run_dir), "qwertyuiop"]) == 3
    assert "not among the 1799 words" in capsys.readouterr().err


def test_a_corpus_without_frequent_words_is_refused(tmp_path):
    from litzoo.datamodules.word_embedding import WordCounts, corpus_files, index_corpus

    corpus = tmp_path / "tiny.txt"
    corpus.write_text("a b c\nd e f\n")
    with pytest.raises(DataError, match=r"No token of .*tiny\.txt occurs at least data\.min_count=5 times"):
        WordCounts.from_counts(index_corpus(corpus_files(corpus)).counts, min_count=5, source=str(corpus))


def test_unknown_evaluation_format_and_missing_corpus_fail_in_validation(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\n")
    bad = tmp_path / "scores.txt"
    bad.write_text("cat dog\nfoo bar\n")
    with pytest.raises(DataError, match="Accepted formats"):
        validate(
            compose(
                ["task=word_embedding", "data=text_corpus", f"data.path={corpus}", f"data.eval_files=[{bad}]"]
            ),
            [CONFIG_DIR],
        )
    with pytest.raises(DataError, match="does not exist"):
        validate(
            compose(["task=word_embedding", "data=text_corpus", f"data.path={tmp_path / 'none'}"]),
            [CONFIG_DIR],
        )


def test_optimizers_without_sparse_gradients_are_refused_in_validation():
    from litzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="sparse gradients"):
        validate(compose(["task=word_embedding", "optim=adamw"]), [CONFIG_DIR])
    with pytest.raises(ConfigError, match="without momentum"):
        validate(compose(["task=word_embedding", "optim=sgd"]), [CONFIG_DIR])
    validate(compose(["task=word_embedding", "optim=sgd_plain", "optim.lr=0.025"]), [CONFIG_DIR])
