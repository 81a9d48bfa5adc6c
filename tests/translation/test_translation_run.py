"""Translation end to end (slow): train on the embedded pair, re-evaluate the checkpoint exactly, predict."""

from __future__ import annotations

import pytest

from tests.conftest import run_in_process

TINY = [
    "task=translation",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=20",
    "data.sizes={train: 2000, valid: 40, test: 40}",
    "task.beam_size=2",
    "task.max_len_b=5",
]


@pytest.mark.slow
def test_train_then_checkpoint_eval_is_exact_and_predicts(tmp_path):
    code, record = run_in_process([*TINY, f"paths.data_dir={tmp_path / 'data'}"], tmp_path / "run")
    assert code == 0, record
    assert (tmp_path / "run" / "vocab" / "spm.joint.model").is_file()
    assert (tmp_path / "run" / "hypotheses_test.txt").is_file()
    best = record["best_checkpoint"]
    code2, again = run_in_process(
        [*TINY, f"paths.data_dir={tmp_path / 'data'}", "train=false", f"ckpt_path={best}"], tmp_path / "eval"
    )
    assert code2 == 0, again
    for key in ("test/bleu", "test/chrf", "test/loss"):
        assert again["metrics"][key] == record["metrics"][key]
    from omegaconf import OmegaConf

    from litzoo.tasks.translation import TranslationTask
    from tests.conftest import compose

    # run_in_process does not write Hydra's files; from_run_dir reads the task target from them.
    overrides = [*TINY, f"paths.data_dir={tmp_path / 'data'}"]
    OmegaConf.save(compose(overrides, run_dir=tmp_path / "run"), tmp_path / "run" / ".hydra" / "config.yaml")
    task = TranslationTask.from_run_dir(tmp_path / "run")
    out = task.predict_inputs(["The dog sees a cat."])
    assert out[0]["source"] == "The dog sees a cat." and isinstance(out[0]["translation"], str)
